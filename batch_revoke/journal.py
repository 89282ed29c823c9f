"""The durable record of a run, and the one door to its SQLite file: every request's rows
before it is sent, every outcome as soon as it is known. WAL with synchronous=FULL, so
`kill -9` loses at most the answers of the requests in flight.

What `--resume` reads back: a settled outcome is done; a row pending in a request that may
have been applied (an attempt was on the wire, or its answer was lost) is read back; one
pending in a request whose every answer said nothing was done (429, 503, 521, a connection
refused), or whose outcome is not settled, is sent again (or read back); any other row was
never sent. A row is pending from its request's intent until an outcome is recorded for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.model import ANSWERED, Batch, Counts, Endpoint, LookupAnswer, RowOutcome, Status

# So that no caller imports sqlite3.
ReadError = sqlite3.Error

# The one format this version reads and writes: 0.1.0 is the first release, and what came
# before it is not carried along.
FORMAT = "4"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    badge TEXT NOT NULL,
    rows TEXT NOT NULL,          -- JSON list of row numbers
    sent_at REAL NOT NULL,       -- wall-clock seconds, compared with the API's revokedOn
    answered INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 1  -- attempts that left, retries included
);
CREATE TABLE IF NOT EXISTS outcomes (
    row INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    error_code TEXT NOT NULL,
    error_message TEXT NOT NULL,
    issued_ids TEXT NOT NULL,
    http_status INTEGER,
    attempts INTEGER NOT NULL,
    duplicate_of INTEGER,
    settled INTEGER NOT NULL,
    resolved_customer_id TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pending (
    row INTEGER PRIMARY KEY,
    request INTEGER NOT NULL,
    maybe_applied INTEGER NOT NULL  -- 0: every answer so far said nothing was done
);
CREATE INDEX IF NOT EXISTS pending_request ON pending (request);
CREATE TABLE IF NOT EXISTS lookups (
    key TEXT PRIMARY KEY,        -- identifier type and identifier_key: one per customer
    customer_id TEXT NOT NULL,   -- '' when the API gave none (not found, fraud)
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    http_status INTEGER,
    at REAL NOT NULL,
    request_id TEXT NOT NULL DEFAULT ''
);
-- The run over time, for the HTML report. Written in the commits that record outcomes: no
-- fsync of their own. Counts are the session's own, from 0 when it began.
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL        -- wall-clock seconds: a new run, or a resume
);
CREATE TABLE IF NOT EXISTS timeline (
    at REAL NOT NULL,            -- wall-clock seconds when these outcomes were recorded
    session INTEGER NOT NULL,
    revoked INTEGER NOT NULL,    -- rows of these outcomes revoked
    not_revoked INTEGER NOT NULL, -- rows of these outcomes answered but not revoked
    http_calls INTEGER NOT NULL, -- the rest: the session's totals so far
    retries INTEGER NOT NULL,
    throttled INTEGER NOT NULL,
    read_backs INTEGER NOT NULL,
    pauses INTEGER NOT NULL,
    paused_seconds REAL NOT NULL,
    pace INTEGER,                -- calls per `window` seconds the run kept to; NULL: none
    window REAL
);
CREATE TABLE IF NOT EXISTS counted (
    row INTEGER PRIMARY KEY,     -- a row the timeline counts: once, at its latest outcome
    point INTEGER NOT NULL,      -- the timeline's rowid that counts it
    revoked INTEGER NOT NULL     -- 1: counted revoked; 0: answered and not revoked
);
"""

# The pace a session keeps to: calls per `window` seconds (None: it needs none).
Pace = tuple[int, float] | None

# A point of a session's timeline: when, its counts then, its pace (calls per second).
Point = tuple[float, Counts, float | None]

# The calls the meta keeps for the whole run, and those a point of the timeline keeps.
STORED_CALLS = ("http_calls", "lookups", "read_backs", "retries", "throttled")
TIMELINE_CALLS = ("http_calls", "retries", "throttled", "read_backs", "pauses", "paused_seconds")

OUTCOME_COLUMNS = (
    "row, status, endpoint, error_code, error_message, issued_ids, http_status, attempts, "
    "duplicate_of, settled, resolved_customer_id, request_id"
)


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
    """A run's journal, open and locked: `create` or `resume` it."""

    def __init__(self, connection: sqlite3.Connection, lock: int, path: Path, **meta: str) -> None:
        """This process's session begun, of a new run (with its `meta`) or a resumed one."""
        self._db = connection
        self._lock: int | None = lock  # an flock on the journal file: one run at a time
        self.path = path
        self._requests: dict[int, int] = {}  # batch number -> request id, this process only
        try:
            with self._commit():
                self._set_meta(meta)
                cursor = self._db.execute(
                    "INSERT INTO sessions (started) VALUES (?)", (time.time(),)
                )
                # Whoever was stopping the run has let go of it: this session holds it now.
                self._db.execute(
                    "UPDATE meta SET value = 'running' WHERE key = 'state' AND value = 'stopping'"
                )
            self._session = cursor.lastrowid  # this process's row of `sessions`
            self.earlier = self.counts()  # the earlier sessions' calls and requests
        except BaseException:
            self.close()
            raise

    @classmethod
    def create(cls, path: Path, identity: JournalIdentity, **meta: str) -> Journal:
        """A new journal, with `meta`; one that exists (--overwrite) is emptied in place, so a
        run still holding it keeps its lock."""
        lock = _take_lock(path)
        try:
            db = _connect(path)
            tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)
            db.executescript("".join(f"DROP TABLE IF EXISTS {table};" for table in tables))
            db.executescript(SCHEMA)
        except BaseException as exc:
            os.close(lock)
            if isinstance(exc, sqlite3.OperationalError):  # disk full, I/O error
                raise StorageError(path, str(exc)) from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise ConfigError(
                    f"{path} exists and is not a batch-revoke journal ({exc})",
                    "pass another --output, or move that file away",
                ) from exc
            raise
        try:  # who wrote it, so a later version that cannot read it can say which can
            written_by = version("batch-revoke")
        except PackageNotFoundError:  # a source tree never installed
            written_by = ""
        return cls(
            db,
            lock,
            path,
            format=FORMAT,
            version=written_by,
            input_sha256=identity.input_sha256,
            options=json.dumps(identity.options, sort_keys=True),
            state="running",
            created=str(time.time()),
            **meta,
        )

    @classmethod
    def resume(cls, path: Path, identity: JournalIdentity) -> Journal:
        """The run's journal, to go on with; refused (before anything is written) if another
        run's, or another version's, so that version can still finish it."""
        if not path.is_file():
            raise ConfigError(
                f"no journal at {path}, so there is nothing to resume",
                "pass the --output of the run to resume, or start a new run without --resume",
            )
        lock = _take_lock(path)
        try:
            meta = read_meta(path)
            if (why := _refusal(path, meta)) is not None:
                raise ConfigError(
                    why,
                    "finish that run with the version that wrote it, or start again with "
                    "--overwrite",
                )
            if meta.get("format") != FORMAT:
                raise ValueError(f"journal format {meta.get('format')!r}, expected {FORMAT}")
            stored = JournalIdentity(meta["input_sha256"], json.loads(meta["options"]))
            if (problem := stored.mismatch(identity, path)) is not None:
                raise problem
            db = _connect(path)
        except BaseException as exc:
            os.close(lock)
            if isinstance(exc, sqlite3.Error | OSError | KeyError | ValueError):
                raise ConfigError(
                    f"{path} is not a batch-revoke journal ({exc})",
                    "start a new run without --resume",
                ) from exc
            raise
        return cls(db, lock, path)

    @contextlib.contextmanager
    def _commit(self) -> Iterator[None]:
        """One commit; a failed write (disk full, folder gone) is a StorageError."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
        except sqlite3.Error as exc:
            raise StorageError(self.path, str(exc)) from exc

    def meta(self) -> dict[str, str]:
        return _meta(self._db)

    def set_meta(self, **values: str) -> None:
        with self._commit():
            self._set_meta(values)

    def mark_stopping(self) -> None:
        """No new request starts, and the run lets go of the journal once those in flight are
        settled. A finished run stays so."""
        with self._commit():
            self._db.execute(
                "UPDATE meta SET value = 'stopping' WHERE key = 'state' AND value = 'running'"
            )

    def close(self) -> None:
        with contextlib.suppress(ReadError):
            self._db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def restore(self) -> None:
        """The journal written back where it belongs (deleted or moved), from the open file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(self.path)) as target:
                self._db.backup(target)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(self.path, str(exc)) from exc

    def sending(self, batch: Batch) -> None:
        """The intent, durable before the request first leaves: its rows are pending, and
        what an earlier attempt said of them (an unsettled outcome) is superseded."""
        rows = [row.row for row in batch.rows]
        with self._commit():
            cursor = self._db.execute(
                "INSERT INTO requests (endpoint, badge, rows, sent_at) VALUES (?, ?, ?, ?)",
                (batch.mode.endpoint.value, batch.badge_meta_id, json.dumps(rows), time.time()),
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

    def attempt(self, batch: Batch, may_be_applied: bool) -> None:
        """Another attempt about to leave (counted: a row read back after a kill shows how
        often it was sent), or not: every answer so far said nothing was done, so a resume
        sends the rows again."""
        request = self._requests.get(batch.number)
        if request is not None:
            with self._commit():
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
        """The request is over, with its outcomes (none: abandoned before anything could have
        been applied), and `session`'s calls in the same commit, so a resume counts them."""
        listed = list(outcomes)
        with self._commit():
            request = self._requests.pop(batch.number, None)
            if request is not None:
                self._db.execute("UPDATE requests SET answered = 1 WHERE id = ?", (request,))
                self._db.execute("DELETE FROM pending WHERE request = ?", (request,))
            self._put(listed, session, pace)

    def record(self, outcomes: Iterable[RowOutcome], session: Counts, pace: Pace) -> None:
        """Outcomes decided without a request of their own (invalid, duplicate, read-back)."""
        listed = list(outcomes)
        with self._commit():
            self._db.executemany("DELETE FROM pending WHERE row = ?", [(o.row,) for o in listed])
            self._put(listed, session, pace)

    def counted(self, session: Counts) -> None:
        self.set_meta(counts=_stored_calls(self.earlier + session))

    def _put(self, outcomes: list[RowOutcome], session: Counts | None, pace: Pace) -> None:
        """The outcomes; with `session`, a point of the run over time. A row is counted once,
        at its latest outcome: one recorded again leaves the point that counted it, so the
        chart adds up to the summary."""
        self._db.executemany(
            f"INSERT OR REPLACE INTO outcomes ({OUTCOME_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            map(_outcome_values, outcomes),
        )
        if session is None:
            return
        self._set_meta({"counts": _stored_calls(self.earlier + session)})
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
                *(getattr(session, name) for name in TIMELINE_CALLS),
                *(pace or (None, None)),
            ),
        ).lastrowid
        self._db.executemany("DELETE FROM counted WHERE row = ?", [(row,) for row in earlier])
        self._db.executemany(
            "INSERT INTO counted VALUES (?, ?, ?)",
            [(o.row, point, int(o.status is Status.REVOKED)) for o in counted],
        )

    def looked_up(self, key: str, answer: LookupAnswer, session: Counts, pace: Pace) -> None:
        """A lookup's definite answer, durable before any row is sent by it."""
        with self._commit():
            self._put([], session, pace)
            self._db.execute(
                "INSERT OR REPLACE INTO lookups VALUES "
                "(:key, :customer_id, :code, :message, :http_status, :at, :request_id)",
                {"key": key, "at": time.time(), **dataclasses.asdict(answer)},
            )

    def lookups(self, keys: Iterable[str]) -> dict[str, LookupAnswer]:
        query = (
            "SELECT key, customer_id, code, message, http_status, request_id FROM lookups "
            "WHERE key IN ({})"
        )
        return {key: LookupAnswer(*answer) for key, *answer in self._where_in(query, list(keys))}

    def outcomes(self) -> Iterator[RowOutcome]:
        return self._outcomes("ORDER BY row")

    def outcomes_between(self, first: int, last: int) -> dict[int, RowOutcome]:
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
        return _counts(self._db, self.meta())

    def outcomes_past(self, rows: int) -> tuple[int, int | None]:
        """How many outcomes are of rows past `rows`, and the first: rows an earlier session
        read from a longer (changed) input."""
        query = "SELECT COUNT(*), MIN(row) FROM outcomes WHERE row > ?"
        count, first = self._db.execute(query, (rows,)).fetchone()
        return int(count), first

    def in_flight(self) -> set[int]:
        """Rows pending in a request that may have been applied."""
        query = "SELECT row FROM pending WHERE maybe_applied = 1"
        return {row for (row,) in self._db.execute(query)}

    def last_requests(self, rows: Iterable[int]) -> dict[int, tuple[float, int]]:
        """When each sent row's latest request left, and how many times it was sent."""
        wanted = set(rows)
        found: dict[int, tuple[float, int]] = {}
        query = "SELECT rows, sent_at, sends FROM requests ORDER BY id"
        for listed, sent_at, sends in self._db.execute(query):
            for row in json.loads(listed):
                if row in wanted:
                    found[row] = (sent_at, sends)
        return found

    def _outcomes(self, clause: str, *values: object) -> Iterator[RowOutcome]:
        query = f"SELECT {OUTCOME_COLUMNS} FROM outcomes {clause}"
        for row, status, endpoint, code, message, ids, *rest in self._db.execute(query, values):
            yield RowOutcome(
                row,
                Status(status),
                Endpoint(endpoint) if endpoint else None,
                code,
                message,
                tuple(ids.split(";")) if ids else (),
                *rest[:3],
                *rest[4:],  # `settled` is the outcome's own, not read
            )

    def _where_in(self, query: str, keys: list[Any]) -> Iterator[Any]:
        """`query`, its `{}` a mark per key, 500 keys at a time: under SQLite's limit."""
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            yield from self._db.execute(query.format(",".join("?" * len(part))), part)

    def _set_meta(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )


def _outcome_values(o: RowOutcome) -> tuple[Any, ...]:
    return (
        o.row,
        o.status.value,
        o.endpoint.value if o.endpoint else "",
        o.error_code,
        o.error_message,
        ";".join(o.issued_ids),
        o.http_status,
        o.attempts,
        o.duplicate_of,
        int(o.final),
        o.resolved_customer_id,
        o.request_id,
    )


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsynced before it returns, so an intent is on disk before its
        # request leaves, whatever kills the process afterwards.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        # Checkpoint often and keep the write-ahead log small, so a resume on a nearly full
        # disk needs little more room than the journal itself.
        db.execute("PRAGMA wal_autocheckpoint=256")
        db.execute("PRAGMA journal_size_limit=1048576")
    except (OSError, sqlite3.OperationalError) as exc:
        raise StorageError(path, str(exc)) from exc
    return db


def _take_lock(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(path, exc.strerror or str(exc)) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise ConfigError(
            f"another batch-revoke run is using {path}",
            "wait for it to finish (or stop it), then --resume; or pass another --output",
        ) from None
    return handle


def in_use(path: Path) -> bool:
    """Whether another process is running the run of this journal (it holds its lock)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # closing releases a lock taken here
    return False


def _refusal(path: Path, meta: dict[str, str]) -> str | None:
    """Why this version cannot read the journal (None: it can, or it is none of ours)."""
    if meta.get("format", FORMAT) == FORMAT:
        return None
    writer = meta.get("version")
    by = f"batch-revoke {writer}" if writer else "an earlier batch-revoke"
    return f"{path} was written by {by} (journal format {meta['format']})"


# --- reading a journal no run holds: the folder of runs, retry, the report --------------


def _open_to_read(path: Path) -> sqlite3.Connection:
    """Read-write all the same: the last connection to close checkpoints the write-ahead log
    and removes the -wal and -shm files, which a read-only one leaves beside the journal."""
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
    except sqlite3.OperationalError:  # a read-only folder or file
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def read_meta(path: Path) -> dict[str, str]:
    """What run it is, its format, state and calls. Raises ReadError (not a journal)."""
    with contextlib.closing(_open_to_read(path)) as db:
        return _meta(db)


def options_of(meta: dict[str, str]) -> dict[str, str]:
    """The options a resume checks, as the meta keeps them."""
    return dict(json.loads(meta.get("options") or "{}"))


@dataclasses.dataclass(frozen=True, slots=True)
class RunRecord:
    """The meta, the run's calls and requests, and each session's start and timeline."""

    meta: dict[str, str]
    counts: Counts
    sessions: list[tuple[float, list[Point]]]


def read_run(path: Path) -> RunRecord:
    """The run as its journal records it. Raises ValueError (not one this version reads)."""
    points = (
        f"SELECT at, revoked, not_revoked, {', '.join(TIMELINE_CALLS)}, pace, window "
        "FROM timeline WHERE session = ? ORDER BY at"
    )
    try:
        with contextlib.closing(_open_to_read(path)) as db:
            meta = _meta(db)
            if "input_sha256" not in meta:
                raise ValueError("no run recorded in it")
            if (why := _refusal(path, meta)) is not None:
                raise ValueError(why)
            started = db.execute("SELECT id, started FROM sessions ORDER BY id").fetchall()
            sessions = [
                (at, [_point(*row) for row in db.execute(points, (number,))])
                for number, at in started
            ]
            return RunRecord(meta, _counts(db, meta), sessions)
    except sqlite3.Error as exc:
        raise ValueError(str(exc)) from exc


def _point(at: float, revoked: int, not_revoked: int, *rest: Any) -> Point:
    """A row of the timeline: rows answered but not revoked are counted failed."""
    *calls, pace, window = rest
    rows = {Status.REVOKED: revoked, Status.FAILED: not_revoked}
    counts = Counts(rows, **dict(zip(TIMELINE_CALLS, calls, strict=True)))
    return at, counts, pace / window if pace and window else None


def _counts(db: sqlite3.Connection, meta: dict[str, str]) -> Counts:
    """The whole run's calls, as last recorded, and its requests per endpoint."""
    stored = json.loads(meta.get("counts") or "{}")
    calls: dict[str, Any] = {name: int(stored.get(name, 0)) for name in STORED_CALLS}
    query = "SELECT endpoint, COUNT(*) FROM requests GROUP BY endpoint ORDER BY endpoint"
    requests = {Endpoint(endpoint): int(count) for endpoint, count in db.execute(query)}
    return Counts(requests=requests, **calls)


def _stored_calls(calls: Counts) -> str:
    return json.dumps({name: getattr(calls, name) for name in STORED_CALLS}, sort_keys=True)
