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

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from batch_revoke import journal_db
from batch_revoke.errors import ConfigError
from batch_revoke.journal_db import Connection, Pace, ReadError, transaction
from batch_revoke.model import ANSWERED, Batch, Counts, LookupAnswer, RowOutcome, Status


@dataclasses.dataclass(frozen=True, slots=True)
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
    """A run's journal, open and locked: made by `create` or `resume`, which begin this
    process's session of the run."""

    def __init__(self, connection: Connection, lock: int, path: Path) -> None:
        self._db = connection
        self._lock: int | None = lock  # an flock on the journal file: one run at a time
        self.path = path
        self._requests: dict[int, int] = {}  # batch number -> request id, this process only
        self._session: int | None = None  # this process's row of `sessions`
        # The calls of the run's earlier sessions, as last recorded, and their requests.
        self.earlier = Counts()

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, identity: JournalIdentity) -> Journal:
        """A new journal (one that exists, --overwrite, is emptied in place: open_new)."""
        journal = cls(*journal_db.open_new(path), path)
        with journal._closed_on_error():
            journal.set_meta(
                format=journal_db.FORMAT,
                version=journal_db.written_by(),
                input_sha256=identity.input_sha256,
                options=json.dumps(identity.options, sort_keys=True),
                state="running",
                created=str(time.time()),
            )
            journal._begin_session()
        return journal

    @classmethod
    def resume(cls, path: Path, identity: JournalIdentity) -> Journal:
        """The journal of the run `identity` is, to go on with; refused if another run's."""
        if not path.is_file():
            raise ConfigError(
                f"no journal at {path}, so there is nothing to resume",
                "pass the --output of the run to resume, or start a new run without --resume",
            )
        journal = cls(*journal_db.open_to_resume(path), path)
        with journal._closed_on_error():
            try:
                stored = journal.identity()
            except (ReadError, KeyError, ValueError) as exc:
                raise ConfigError(
                    f"{path} is not a batch-revoke journal ({exc})",
                    "start a new run without --resume",
                ) from exc
            problem = stored.mismatch(identity, path)
            if problem is not None:
                raise problem
            journal._begin_session()
        return journal

    @contextlib.contextmanager
    def _closed_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.close()
            raise

    def _begin_session(self) -> None:
        """This process's session of the run: a new run, or a resume."""
        with transaction(self._db, self.path):
            cursor = self._db.execute("INSERT INTO sessions (started) VALUES (?)", (time.time(),))
            # Whoever was stopping the run has let go of it: this session holds it now.
            self._db.execute(
                "UPDATE meta SET value = 'running' WHERE key = 'state' AND value = 'stopping'"
            )
        self._session = cursor.lastrowid
        self.earlier = self.counts()

    def identity(self) -> JournalIdentity:
        meta = self.meta()
        if meta.get("format") != journal_db.FORMAT:
            raise ValueError(f"journal format {meta.get('format')!r}, expected {journal_db.FORMAT}")
        return JournalIdentity(meta["input_sha256"], json.loads(meta["options"]))

    def meta(self) -> dict[str, str]:
        return journal_db.meta_of(self._db)

    def set_meta(self, **values: str) -> None:
        with transaction(self._db, self.path):
            self._set_meta(values)

    def mark_stopping(self) -> None:
        """The run is stopping (interrupted, or stopped by itself): no new request starts, and
        it lets go of the journal once those in flight are settled. A finished run stays so."""
        with transaction(self._db, self.path):
            self._db.execute(
                "UPDATE meta SET value = 'stopping' WHERE key = 'state' AND value = 'running'"
            )

    def close(self) -> None:
        with contextlib.suppress(ReadError):
            self._db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def missing(self) -> bool:
        """The file is gone from its folder (deleted or moved) while we still write to it."""
        return not self.path.exists()

    def restore(self) -> None:
        """Write the journal back where it belongs, from the open connection."""
        journal_db.copy_to(self._db, self.path)

    # --- recording ---------------------------------------------------------------------

    def sending(self, batch: Batch) -> None:
        """The intent, durable before the request first leaves: its rows are pending, and
        what an earlier attempt said of them (an unsettled outcome) is superseded."""
        rows = [row.row for row in batch.rows]
        with transaction(self._db, self.path):
            cursor = self._db.execute(
                "INSERT INTO requests (endpoint, badge, rows, sent_at) VALUES (?, ?, ?, ?)",
                (batch.endpoint.value, batch.badge_meta_id, json.dumps(rows), time.time()),
            )
            request = cursor.lastrowid
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, 1)", [(row, request) for row in rows]
            )
            self._db.executemany(
                "DELETE FROM outcomes WHERE row = ? AND settled = 0", [(row,) for row in rows]
            )
        assert request is not None
        self._requests[batch.number] = request

    def nothing_done(self, batch: Batch) -> None:
        """Every answer to the request so far said nothing was done: a resume sends its rows
        again."""
        self._attempt(batch, may_be_applied=False)

    def sending_again(self, batch: Batch) -> None:
        """Another attempt of the request is about to leave: it may be applied from here on,
        and it is counted, so a row whose answer a kill lost shows how often it was sent once
        it is read back."""
        self._attempt(batch, may_be_applied=True)

    def _attempt(self, batch: Batch, may_be_applied: bool) -> None:
        request = self._requests.get(batch.number)
        if request is not None:
            with transaction(self._db, self.path):
                self._db.execute(
                    "UPDATE pending SET maybe_applied = ? WHERE request = ?",
                    (int(may_be_applied), request),
                )
                self._db.execute(
                    "UPDATE requests SET sends = sends + ? WHERE id = ?",
                    (int(may_be_applied), request),
                )

    def answered(
        self,
        batch: Batch,
        outcomes: Iterable[RowOutcome] = (),
        session: Counts | None = None,
        pace: Pace = None,
    ) -> None:
        """The request is over, with its outcomes (none: it was abandoned before anything could
        have been applied, and its rows are simply not sent). With `session`, this session's
        calls so far are kept in the same commit (so a resume after a kill -9 counts the whole
        run) as a point of the run over time, with its `pace`."""
        listed = list(outcomes)
        with transaction(self._db, self.path):
            request = self._requests.pop(batch.number, None)
            if request is not None:
                self._db.execute("UPDATE requests SET answered = 1 WHERE id = ?", (request,))
                self._db.execute("DELETE FROM pending WHERE request = ?", (request,))
            self._put(listed, session, pace)

    def record(self, outcomes: Iterable[RowOutcome], session: Counts, pace: Pace) -> None:
        """Outcomes decided without a request of their own (invalid, duplicate, read-back):
        the latest word on their rows, which are no longer pending. `session`, `pace`: as
        for `answered`."""
        listed = list(outcomes)
        with transaction(self._db, self.path):
            self._db.executemany("DELETE FROM pending WHERE row = ?", [(o.row,) for o in listed])
            self._put(listed, session, pace)

    def counted(self, session: Counts) -> None:
        """This session's calls so far, with the earlier sessions'."""
        self.set_meta(counts=journal_db.stored_calls(self.earlier + session))

    def _put(self, outcomes: list[RowOutcome], session: Counts | None, pace: Pace) -> None:
        """The outcomes; with `session`, a point of the run over time: the session's calls,
        the rows these outcomes revoked, and those answered without being revoked. A row is
        counted once, at its latest outcome: one recorded again (read back after a lost
        answer, sent again by a resume) leaves the point that counted it, so the chart adds
        up to the summary."""
        self._db.executemany(
            f"INSERT OR REPLACE INTO outcomes ({journal_db.OUTCOME_COLUMNS}) "
            f"VALUES ({', '.join('?' * 12)})",
            map(journal_db.outcome_values, outcomes),
        )
        if session is None:
            return
        self._set_meta({"counts": journal_db.stored_calls(self.earlier + session)})
        query = "SELECT row, point, revoked FROM counted WHERE row IN ({})"
        rows = [o.row for o in outcomes]
        earlier = {row: (point, revoked) for row, point, revoked in self._where_in(query, rows)}
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
                *(getattr(session, name) for name in journal_db.TIMELINE_CALLS),
                *(pace or (None, None)),
            ),
        ).lastrowid
        self._db.executemany("DELETE FROM counted WHERE row = ?", [(row,) for row in earlier])
        self._db.executemany(
            "INSERT INTO counted VALUES (?, ?, ?)",
            [(o.row, point, int(o.status is Status.REVOKED)) for o in counted],
        )

    def looked_up(self, key: str, answer: LookupAnswer, session: Counts, pace: Pace) -> None:
        """A customer lookup's definite answer, durable before any row is sent by it, so a
        resume never asks again. `session`, `pace`: as for `answered`."""
        with transaction(self._db, self.path):
            self._put([], session, pace)
            self._db.execute(
                "INSERT OR REPLACE INTO lookups VALUES "
                "(:key, :customer_id, :code, :message, :http_status, :at, :request_id)",
                {"key": key, "at": time.time(), **dataclasses.asdict(answer)},
            )

    # --- reading -----------------------------------------------------------------------

    def lookups(self, keys: Iterable[str]) -> dict[str, LookupAnswer]:
        """The recorded answers to lookups of these keys (those that have one)."""
        query = (
            "SELECT key, customer_id, code, message, http_status, request_id FROM lookups "
            "WHERE key IN ({})"
        )
        return {key: LookupAnswer(*answer) for key, *answer in self._where_in(query, list(keys))}

    def outcomes(self) -> Iterator[RowOutcome]:
        """Every recorded outcome, in row order, streamed."""
        return self._outcomes("ORDER BY row")

    def outcomes_between(self, first: int, last: int) -> dict[int, RowOutcome]:
        """The recorded outcomes of rows first..last (a chunk of the input)."""
        return {o.row: o for o in self._outcomes("WHERE row BETWEEN ? AND ?", first, last)}

    def outcome(self, row: int) -> RowOutcome | None:
        return next(self._outcomes("WHERE row = ?", row), None)

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
        return journal_db.counts_of(self._db, self.meta())

    def outcomes_past(self, rows: int) -> tuple[int, int | None]:
        """How many recorded outcomes are of rows past `rows`, and the first of them: rows an
        earlier session read from a longer (changed) input."""
        query = "SELECT COUNT(*), MIN(row) FROM outcomes WHERE row > ?"
        count, first = self._db.execute(query, (rows,)).fetchone()
        return int(count), first

    def in_flight(self) -> dict[int, float]:
        """Rows pending in a request that may have been applied, with when it was sent."""
        query = (
            "SELECT pending.row, requests.sent_at FROM pending JOIN requests "
            "ON requests.id = pending.request WHERE pending.maybe_applied = 1"
        )
        return dict(self._db.execute(query).fetchall())

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

    def _outcomes(self, clause: str, *values: object) -> Iterator[RowOutcome]:
        query = f"SELECT {journal_db.OUTCOME_COLUMNS} FROM outcomes {clause}"
        for row in self._db.execute(query, values):
            yield journal_db.outcome_of(row)

    def _where_in(self, query: str, keys: list[Any]) -> Iterator[Any]:
        """The rows `query` gives for these keys, its `{}` filled with one mark per key: 500
        at a time, under SQLite's limit on bound values."""
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            yield from self._db.execute(query.format(",".join("?" * len(part))), part)

    def _set_meta(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )
