"""The journal's SQLite file, and the one door to it: no other module opens it (or imports
sqlite3 for it). Its schema and format; a connection that survives kill -9 (WAL,
synchronous=FULL) for the run that holds it, opened new or to resume; one commit as a
StorageError when the disk refuses it; the lock that keeps two processes off one run; and
reads for those that only look (the folder of runs, the report)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.model import Counts, Endpoint, RowOutcome, Status

# The connection a Journal writes through, and what a read of it raises: named here, so that
# no caller imports sqlite3.
Connection = sqlite3.Connection
ReadError = sqlite3.Error

# The one format this version reads and writes. A journal of another is refused (`refusal`):
# 0.1.0 is the first release, and what came before it is not carried along.
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


# The pace a session keeps to when outcomes are recorded: calls per `window` seconds (None: it
# needs none), kept with its Counts in the journal's timeline.
Pace = tuple[int, float] | None

# One point of a session's timeline: when, the session's counts then (its calls so far, and
# the rows revoked and not revoked these outcomes settled) and its pace (calls per second).
Point = tuple[float, Counts, float | None]


@contextlib.contextmanager
def transaction(db: Connection, path: Path) -> Iterator[None]:
    """One commit; a failed write (disk full, folder gone) becomes a StorageError."""
    db.execute("BEGIN IMMEDIATE")
    try:
        try:
            yield
        except BaseException:
            db.rollback()
            raise
        db.commit()
    except sqlite3.Error as exc:
        raise StorageError(path, str(exc)) from exc


def open_new(path: Path) -> tuple[Connection, int]:
    """A new journal at `path`, locked; one that exists (--overwrite) is emptied in place, so
    a run still holding it keeps its lock and this one is refused."""
    lock = take_lock(path)
    try:
        db = connect(path)
        tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)
        db.executescript("".join(f"DROP TABLE IF EXISTS {table};" for table in tables))
        db.executescript(SCHEMA)
        return db, lock
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


def open_to_resume(path: Path) -> tuple[Connection, int]:
    """The journal at `path`, locked; one another version wrote is refused before anything
    is written to it, so that version can still finish it."""
    lock = take_lock(path)
    try:
        if (why := refusal(path, read_meta(path))) is not None:
            raise ConfigError(
                why,
                "finish that run with the version that wrote it, or start again with --overwrite",
            )
        return connect(path), lock
    except BaseException as exc:
        os.close(lock)
        if isinstance(exc, sqlite3.DatabaseError | OSError):
            raise ConfigError(
                f"{path} is not a batch-revoke journal ({exc})", "start a new run without --resume"
            ) from exc
        raise


def copy_to(db: Connection, path: Path) -> None:
    """The open journal written whole to `path` (its folder was deleted or moved)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as target:
            db.backup(target)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(path, str(exc)) from exc


def connect(path: Path) -> Connection:
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


def written_by() -> str:
    """This version, as a journal records who wrote it: so that a later version that cannot
    read it can say which one can ("" when run from a source tree never installed)."""
    try:
        return version("batch-revoke")
    except PackageNotFoundError:
        return ""


def refusal(path: Path, meta: dict[str, str]) -> str | None:
    """Why the journal at `path` cannot be read by this version (None: it can, or it records
    no format, so it is no journal of ours): which version wrote it, and its format."""
    if meta.get("format", FORMAT) == FORMAT:
        return None
    writer = meta.get("version")
    by = f"batch-revoke {writer}" if writer else "an earlier batch-revoke"
    return f"{path} was written by {by} (journal format {meta['format']})"


def _open_to_read(path: Path) -> Connection:
    """A connection that only reads the journal at `path`. Read-write all the same: the last
    connection to close checkpoints the write-ahead log and removes the -wal and -shm files,
    which a read-only one leaves beside the journal. Raises sqlite3.Error."""
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
    except sqlite3.OperationalError:  # a read-only folder or file
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def meta_of(db: Connection) -> dict[str, str]:
    """The journal's meta: what run it is, its format, its state, its calls."""
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def read_meta(path: Path) -> dict[str, str]:
    """The journal's meta, read only. Raises ReadError when the file is no SQLite file, or one
    without meta."""
    with contextlib.closing(_open_to_read(path)) as db:
        return meta_of(db)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What the report reads of a journal: its meta, the run's calls and requests, and each
    session's start with its timeline, in order."""

    meta: dict[str, str]
    counts: Counts
    sessions: list[tuple[float, list[Point]]]


def read_run(path: Path) -> RunRecord:
    """The run as the journal at `path` records it, read only. Raises ValueError when the
    file is not a journal this version reads."""
    try:
        with contextlib.closing(_open_to_read(path)) as db:
            meta = meta_of(db)
            if "input_sha256" not in meta:
                raise ValueError("no run recorded in it")
            if (why := refusal(path, meta)) is not None:
                raise ValueError(why)
            started = db.execute("SELECT id, started FROM sessions ORDER BY id").fetchall()
            sessions = [
                (at, [_point(*row) for row in db.execute(_POINTS, (number,))])
                for number, at in started
            ]
            return RunRecord(meta, counts_of(db, meta), sessions)
    except sqlite3.Error as exc:
        raise ValueError(str(exc)) from exc


# The calls the meta keeps for the whole run (its "counts").
STORED_CALLS = ("http_calls", "lookups", "read_backs", "retries", "throttled")


def counts_of(db: Connection, meta: dict[str, str]) -> Counts:
    """The whole run's calls, as the meta last recorded them, and its requests per endpoint,
    every session's."""
    stored = json.loads(meta.get("counts") or "{}")
    calls: dict[str, Any] = {name: int(stored.get(name, 0)) for name in STORED_CALLS}
    query = "SELECT endpoint, COUNT(*) FROM requests GROUP BY endpoint ORDER BY endpoint"
    requests = {Endpoint(endpoint): int(count) for endpoint, count in db.execute(query)}
    return Counts(requests=requests, **calls)


def stored_calls(calls: Counts) -> str:
    """The whole run's calls, as the meta keeps them."""
    return json.dumps({name: getattr(calls, name) for name in STORED_CALLS}, sort_keys=True)


# The calls a point of the timeline keeps: the session's so far.
TIMELINE_CALLS = ("http_calls", "retries", "throttled", "read_backs", "pauses", "paused_seconds")
_POINTS = (
    f"SELECT at, revoked, not_revoked, {', '.join(TIMELINE_CALLS)}, pace, window "
    "FROM timeline WHERE session = ? ORDER BY at"
)


def _point(at: float, revoked: int, not_revoked: int, *rest: Any) -> Point:
    """A row of the timeline. It tells revoked rows from the rest answered, counted failed."""
    *calls, pace, window = rest
    rows = {Status.REVOKED: revoked, Status.FAILED: not_revoked}
    counts = Counts(rows, **dict(zip(TIMELINE_CALLS, calls, strict=True)))
    return at, counts, pace / window if pace and window else None


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


def take_lock(path: Path) -> int:
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


# An outcome's columns, as outcome_values writes them and outcome_of reads them.
OUTCOME_COLUMNS = (
    "row, status, endpoint, error_code, error_message, issued_ids, http_status, attempts, "
    "duplicate_of, settled, resolved_customer_id, request_id"
)


def outcome_values(o: RowOutcome) -> tuple[Any, ...]:
    """An outcome as its OUTCOME_COLUMNS."""
    endpoint = o.endpoint.value if o.endpoint else ""
    return (
        o.row,
        o.status.value,
        endpoint,
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


def outcome_of(values: tuple[Any, ...]) -> RowOutcome:
    """An outcome from its OUTCOME_COLUMNS (`settled` is the outcome's own, not read)."""
    row, status, endpoint, code, message, ids = values[:6]
    return RowOutcome(
        row,
        Status(status),
        Endpoint(endpoint) if endpoint else None,
        code,
        message,
        tuple(ids.split(";")) if ids else (),
        *values[6:9],
        *values[10:],
    )
