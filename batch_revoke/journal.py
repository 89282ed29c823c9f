"""The durable record of a run: every request's rows before it is sent, every outcome as soon
as it is known. SQLite in WAL mode with synchronous=FULL, so each commit is on disk before the
next request leaves and `kill -9` loses at most the answers of the requests in flight.

What `--resume` reads back:
- a row with a settled outcome is done and keeps it;
- a row pending in a request that may have been applied (an attempt was on the wire, or its
  answer was lost) was in flight: it is read back before anything is sent again;
- a row pending in a request whose every answer said nothing was done (429, 503, 521, a
  connection refused) was not applied: it is sent again;
- a row whose outcome is not settled (`unconfirmed`, or `failed` on an answer that did nothing)
  is read back or sent again;
- any other row was never sent.
A row is pending from its request's intent until an outcome is recorded for it, so what the
journal says of a row is always its latest word.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from batch_revoke.errors import ConfigError
from batch_revoke.journal_db import (
    FORMAT,
    OUTCOME_COLUMNS,
    REQUESTS,
    TIMELINE_CALLS,
    Connection,
    Pace,
    ReadError,
    Transaction,
    calls_of,
    close,
    copy_to,
    open_new,
    open_to_resume,
    outcome_of,
    stored_calls,
    written_by,
)

# Where callers have always found them.
from batch_revoke.journal_db import in_use as in_use
from batch_revoke.model import (
    ANSWERED,
    Batch,
    Counts,
    Endpoint,
    LookupAnswer,
    RowOutcome,
    Status,
)


@dataclass(frozen=True, slots=True)
class JournalIdentity:
    """What a journal belongs to: a resume must match it, or it would mix two runs."""

    input_sha256: str
    options: dict[str, str]  # only options that change what is sent, and where

    def mismatch(self, other: JournalIdentity, journal: Path) -> ConfigError | None:
        if self.input_sha256 != other.input_sha256:
            return ConfigError(
                f"{journal} belongs to a run of another input (the file's content changed)",
                "resume with the exact file the run started with, or start a new run without "
                "--resume",
            )
        changed = [
            f"{key} {other.options.get(key, '')!r} (was {value!r})"
            for key, value in self.options.items()
            if other.options.get(key, "") != value
        ]
        if changed:
            return ConfigError(
                f"{journal} was started with other options: {', '.join(changed)}",
                "resume with the options the run started with",
            )
        return None


class Journal:
    def __init__(self, connection: Connection, path: Path | None, lock: int | None = None) -> None:
        self._db = connection
        self.path = path
        self._lock = lock  # an flock on the journal file: one run at a time
        self._requests: dict[int, int] = {}  # batch number -> request id, this process only
        self._session: int | None = None  # this process's row of `sessions`
        # The calls of the run's earlier sessions, as last recorded, and their requests.
        self.earlier = Counts()

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, identity: JournalIdentity) -> Journal:
        """A new journal; one that exists (--overwrite) is emptied in place, so a run still
        holding it keeps its lock and this one is refused."""
        db, lock = open_new(path)
        journal = cls(db, path, lock)
        try:
            with journal._write():
                journal._set_many(
                    {
                        "format": FORMAT,
                        "version": written_by(),
                        "input_sha256": identity.input_sha256,
                        "options": json.dumps(identity.options, sort_keys=True),
                        "state": "running",
                        "created": str(time.time()),
                    }
                )
            journal._begin_session()
        except BaseException:
            journal.close()
            raise
        return journal

    @classmethod
    def resume(cls, path: Path, identity: JournalIdentity) -> Journal:
        if not path.is_file():
            raise ConfigError(
                f"no journal at {path}, so there is nothing to resume",
                "pass the --output of the run to resume, or start a new run without --resume",
            )
        db, lock = open_to_resume(path)
        journal = cls(db, path, lock)
        try:
            stored = journal.identity()
        except (ReadError, KeyError, ValueError) as exc:
            journal.close()
            raise ConfigError(
                f"{path} is not a batch-revoke journal ({exc})", "start a new run without --resume"
            ) from exc
        problem = stored.mismatch(identity, path)
        if problem is not None:
            raise problem
        try:
            journal._begin_session()
        except BaseException:
            journal.close()
            raise
        return journal

    def _begin_session(self) -> None:
        """This process's session of the run: a new run, or a resume."""
        with self._write():
            cursor = self._db.execute("INSERT INTO sessions (started) VALUES (?)", (time.time(),))
            # Whoever was stopping the run has let go of it: this session holds it now.
            self._db.execute(
                "UPDATE meta SET value = 'running' WHERE key = 'state' AND value = 'stopping'"
            )
        self._session = cursor.lastrowid
        self.earlier = self.counts()

    def identity(self) -> JournalIdentity:
        meta = self.meta()
        if meta.get("format") != FORMAT:
            raise ValueError(f"journal format {meta.get('format')!r}, expected {FORMAT}")
        return JournalIdentity(meta["input_sha256"], json.loads(meta["options"]))

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **values: str) -> None:
        with self._write():
            self._set_many(values)

    def mark_stopping(self) -> None:
        """The run is stopping (interrupted, or stopped by itself): no new request starts, and
        it lets go of the journal once those in flight are settled. A finished run stays so."""
        with self._write():
            self._db.execute(
                "UPDATE meta SET value = 'stopping' WHERE key = 'state' AND value = 'running'"
            )

    def close(self) -> None:
        close(self._db)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def missing(self) -> bool:
        """The file is gone from its folder (deleted or moved) while we still write to it."""
        return self.path is not None and not self.path.exists()

    def restore(self) -> None:
        """Write the journal back where it belongs, from the open connection."""
        assert self.path is not None
        copy_to(self._db, self.path)

    # --- recording ---------------------------------------------------------------------

    def sending(self, batch: Batch) -> None:
        """The intent, durable before the request first leaves: its rows are pending, and
        what an earlier attempt said of them (an unsettled outcome) is superseded."""
        rows = [row.row for row in batch.rows]
        with self._write():
            cursor = self._db.execute(
                "INSERT INTO requests (endpoint, badge, rows, sent_at) VALUES (?, ?, ?, ?)",
                (batch.endpoint.value, batch.badge_meta_id, json.dumps(rows), time.time()),
            )
            assert cursor.lastrowid is not None
            request = cursor.lastrowid
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, 1)", [(row, request) for row in rows]
            )
            self._db.executemany(
                "DELETE FROM outcomes WHERE row = ? AND settled = 0", [(row,) for row in rows]
            )
        self._requests[batch.number] = request

    def nothing_done(self, batch: Batch) -> None:
        """Every answer to the request so far said nothing was done: a resume sends its rows
        again."""
        self._may_be_applied(batch, False)

    def sending_again(self, batch: Batch) -> None:
        """Another attempt of the request is about to leave: it may be applied from here on,
        and it is counted, so a row whose answer a kill lost shows how often it was sent once
        it is read back."""
        self._may_be_applied(batch, True)

    def _may_be_applied(self, batch: Batch, maybe: bool) -> None:
        request = self._requests.get(batch.number)
        if request is not None:
            with self._write():
                self._db.execute(
                    "UPDATE pending SET maybe_applied = ? WHERE request = ?", (int(maybe), request)
                )
                if maybe:
                    self._sent_again(request)

    def _sent_again(self, request: int) -> None:
        self._db.execute("UPDATE requests SET sends = sends + 1 WHERE id = ?", (request,))

    def answered(
        self,
        batch: Batch,
        outcomes: Iterable[RowOutcome],
        session: Counts | None = None,
        pace: Pace = None,
    ) -> None:
        """The request's outcomes; with `session`, this session's calls so far, kept in the
        same commit (so a resume after a kill -9 counts the whole run) as a point of the run
        over time, with its `pace`."""
        listed = list(outcomes)
        with self._write():
            self._close_request(batch)
            self._put(listed)
            self._mark(listed, session, pace)

    def abandoned(self, batch: Batch) -> None:
        """Stopped before anything could have been applied: its rows are simply not sent."""
        with self._write():
            self._close_request(batch)

    def record(
        self, outcomes: Iterable[RowOutcome], session: Counts | None = None, pace: Pace = None
    ) -> None:
        """Outcomes decided without a request of their own (invalid, duplicate, read-back):
        the latest word on their rows, which are no longer pending. `session`, `pace`: as
        for `answered`."""
        listed = list(outcomes)
        with self._write():
            self._put(listed)
            self._db.executemany("DELETE FROM pending WHERE row = ?", [(o.row,) for o in listed])
            self._mark(listed, session, pace)

    def counted(self, session: Counts) -> None:
        """This session's calls so far, with the earlier sessions' (`counts()`)."""
        with self._write():
            self._set_many({"counts": stored_calls(self.earlier + session)})

    def _mark(self, outcomes: list[RowOutcome], session: Counts | None, pace: Pace) -> None:
        """A point of the run over time: the session's calls, the rows these outcomes revoked,
        and those answered without being revoked. A row is counted once, at its latest
        outcome: one recorded again (read back after a lost answer, sent again by a resume)
        leaves the point that counted it, so the chart adds up to the summary."""
        if session is None:
            return
        self._set_many({"counts": stored_calls(self.earlier + session)})
        if self._session is None:
            return
        earlier = self._counted_at([o.row for o in outcomes])
        self._db.executemany(
            "UPDATE timeline SET revoked = revoked - ?, not_revoked = not_revoked - ? "
            "WHERE rowid = ?",
            [(revoked, 1 - revoked, point) for point, revoked in earlier.values()],
        )
        counted = [o for o in outcomes if o.status in ANSWERED]
        revoked = sum(o.status is Status.REVOKED for o in counted)
        point = self._db.execute(
            "INSERT INTO timeline VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                self._session,
                revoked,
                len(counted) - revoked,
                *(getattr(session, name) for name in TIMELINE_CALLS),
                *(pace or (None, None)),
            ),
        ).lastrowid
        self._db.executemany("DELETE FROM counted WHERE row = ?", [(row,) for row in earlier])
        self._db.executemany(
            "INSERT INTO counted VALUES (?, ?, ?)",
            [(o.row, point, int(o.status is Status.REVOKED)) for o in counted],
        )

    def _counted_at(self, rows: list[int]) -> dict[int, tuple[int, int]]:
        """The rows the timeline counts already: row -> (its point, 1 if counted revoked)."""
        found: dict[int, tuple[int, int]] = {}
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT row, point, revoked FROM counted WHERE row IN ({marks})"
            found.update(
                (row, (point, revoked)) for row, point, revoked in self._db.execute(query, part)
            )
        return found

    def _close_request(self, batch: Batch) -> None:
        request = self._requests.pop(batch.number, None)
        if request is not None:
            self._db.execute("UPDATE requests SET answered = 1 WHERE id = ?", (request,))
            self._db.execute("DELETE FROM pending WHERE request = ?", (request,))

    def _put(self, outcomes: Iterable[RowOutcome]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO outcomes (row, status, endpoint, error_code, error_message, "
            "issued_ids, http_status, attempts, duplicate_of, settled, resolved_customer_id, "
            "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    o.row,
                    o.status.value,
                    o.endpoint.value if o.endpoint else "",
                    o.error_code,
                    o.error_message,
                    ";".join(o.issued_ids),
                    o.http_status,
                    o.attempts,
                    o.duplicate_of,
                    int(o.settled),
                    o.resolved_customer_id,
                    o.request_id,
                )
                for o in outcomes
            ),
        )

    def looked_up(
        self, key: str, answer: LookupAnswer, session: Counts | None = None, pace: Pace = None
    ) -> None:
        """A customer lookup's definite answer, durable before any row is sent by it, so a
        resume never asks again. `session`, `pace`: as for `answered`."""
        with self._write():
            self._mark([], session, pace)
            self._db.execute(
                "INSERT OR REPLACE INTO lookups (key, customer_id, code, message, http_status, "
                "at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    answer.customer_id,
                    answer.code,
                    answer.message,
                    answer.http_status,
                    time.time(),
                    answer.request_id,
                ),
            )

    # --- reading -----------------------------------------------------------------------

    def lookups(self, keys: Iterable[str]) -> dict[str, LookupAnswer]:
        """The recorded answers to lookups of these keys (those that have one)."""
        wanted = list(keys)
        found: dict[str, LookupAnswer] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            query = (
                "SELECT key, customer_id, code, message, http_status, request_id FROM lookups "
                f"WHERE key IN ({marks})"
            )
            for key, *answer in self._db.execute(query, part):
                found[key] = LookupAnswer(*answer)
        return found

    def outcomes(self) -> Iterator[RowOutcome]:
        """Every recorded outcome, in row order, streamed."""
        for values in self._db.execute(f"SELECT {OUTCOME_COLUMNS} FROM outcomes ORDER BY row"):
            yield outcome_of(values)

    def outcomes_between(self, first: int, last: int) -> dict[int, RowOutcome]:
        """The recorded outcomes of rows first..last (a chunk of the input)."""
        query = f"SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE row BETWEEN ? AND ?"
        return {values[0]: outcome_of(values) for values in self._db.execute(query, (first, last))}

    def duplicates_not_revoked(self) -> int:
        """Duplicate rows whose original row is not revoked: the run did not do all it asked."""
        query = (
            "SELECT COUNT(*) FROM outcomes AS d LEFT JOIN outcomes AS o ON o.row = d.duplicate_of "
            "WHERE d.status = 'duplicate' AND (o.status IS NULL OR o.status != 'revoked')"
        )
        (count,) = self._db.execute(query).fetchone()
        return int(count)

    def counts(self) -> Counts:
        """The run's calls, as last recorded, and its requests per endpoint."""
        return calls_of(self.meta()) + Counts(requests=self.requests_by_endpoint())

    def requests_by_endpoint(self) -> dict[Endpoint, int]:
        """Requests of the whole run, every session's, per endpoint."""
        return {Endpoint(endpoint): count for endpoint, count in self._db.execute(REQUESTS)}

    def outcomes_past(self, rows: int) -> tuple[int, int | None]:
        """How many recorded outcomes are of rows past `rows`, and the first of them: rows an
        earlier session read from a longer (changed) input."""
        query = "SELECT COUNT(*), MIN(row) FROM outcomes WHERE row > ?"
        count, first = self._db.execute(query, (rows,)).fetchone()
        return int(count), first

    def outcome(self, row: int) -> RowOutcome | None:
        query = f"SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE row = ?"
        values = self._db.execute(query, (row,)).fetchone()
        return None if values is None else outcome_of(values)

    def in_flight(self) -> dict[int, float]:
        """Rows pending in a request that may have been applied, with when it was sent."""
        query = (
            "SELECT pending.row, requests.sent_at FROM pending JOIN requests "
            "ON requests.id = pending.request WHERE pending.maybe_applied = 1"
        )
        return dict(self._db.execute(query).fetchall())

    def not_applied(self) -> set[int]:
        """Rows pending in a request whose every answer said nothing was done."""
        query = "SELECT row FROM pending WHERE maybe_applied = 0"
        return {row for (row,) in self._db.execute(query)}

    def last_requests(self, rows: Iterable[int]) -> dict[int, tuple[float, int]]:
        """When each row's latest request left, and how many times it was sent (retries
        included), for rows that were sent."""
        wanted = set(rows)
        found: dict[int, tuple[float, int]] = {}
        query = "SELECT rows, sent_at, sends FROM requests ORDER BY id"
        for listed, sent_at, sends in self._db.execute(query):
            for row in json.loads(listed):
                if row in wanted:
                    found[row] = (sent_at, sends)
        return found

    # --- plumbing ----------------------------------------------------------------------

    def _set_many(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )

    def _write(self) -> Transaction:
        return Transaction(self._db, self.path)
