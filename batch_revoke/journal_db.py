"""The journal's SQLite file: its schema, a connection that survives kill -9 (WAL,
synchronous=FULL), one commit as a StorageError when the disk refuses it, and the lock that
keeps two processes off one run."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.model import Endpoint, RowOutcome, Status

# 2: pending rows, and whether their request may have been applied; 3: customer lookups,
# and the id each row was revoked as; 4: the X-Cap-Requestid of the answer that decided each
# row and lookup (a new format, so that an earlier version, which writes a lookup's columns by
# position, refuses the journal instead)
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
"""

# The run over time, for the HTML report: added after format 2 without changing it, so a
# journal written before has neither table (its report says its timings are unavailable) and
# a resume of it adds them (IF NOT EXISTS). Written in the commits that record outcomes: no
# fsync of their own. Counts are the session's own, from 0 when it began.
TIMELINE_SCHEMA = """
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


@dataclass(frozen=True, slots=True)
class Moment:
    """Where a session stands when outcomes are recorded: its calls so far and its pace."""

    http_calls: int = 0
    retries: int = 0
    throttled: int = 0
    read_backs: int = 0
    pauses: int = 0
    paused_seconds: float = 0.0
    pace: int | None = None  # calls per `window` seconds; None: no pace needed
    window: float | None = None


class Transaction:
    """One commit; a failed write (disk full, folder gone) becomes a StorageError."""

    def __init__(self, db: sqlite3.Connection, path: Path | None) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            if kind is None:
                self._db.commit()
                return
            self._db.rollback()
        except sqlite3.Error as failure:
            raise StorageError(self._path or Path(":memory:"), str(failure)) from failure
        if isinstance(exc, sqlite3.Error):
            raise StorageError(self._path or Path(":memory:"), str(exc)) from exc


def connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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


def open_to_read(path: Path) -> sqlite3.Connection:
    """A connection that only reads the journal at `path`. Read-write all the same: the last
    connection to close checkpoints the write-ahead log and removes the -wal and -shm files,
    which a read-only one leaves beside the journal. Raises sqlite3.Error."""
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
    except sqlite3.OperationalError:  # a read-only folder or file
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


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


# An outcome's columns as outcome_of reads them: named, since in a journal upgraded from an
# earlier format the columns added since stand in the order they were added.
OUTCOME_COLUMNS = (
    "row, status, endpoint, error_code, error_message, issued_ids, http_status, attempts, "
    "duplicate_of, settled, resolved_customer_id, request_id"
)


def outcome_of(values: tuple[Any, ...]) -> RowOutcome:
    """An outcome from its OUTCOME_COLUMNS."""
    row, status, endpoint, code, message, ids, http_status, attempts, duplicate_of = values[:9]
    return RowOutcome(
        row,
        Status(status),
        Endpoint(endpoint) if endpoint else None,
        code,
        message,
        tuple(ids.split(";")) if ids else (),
        http_status,
        attempts,
        duplicate_of,
        values[10],
        values[11],
    )


def upgrade(db: sqlite3.Connection, path: Path | None) -> None:
    """A journal of an earlier format, brought to this one: format 1's unanswered requests'
    rows, less those settled since, are pending and may have been applied (what that format
    meant); format 2 gains the lookups and the resolved ids, format 3 the request ids; any
    format, the count of each request's attempts (1 where it was not counted: each was sent at
    least once)."""
    _count_sends(db, path)
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") == "1":
        db.executescript(SCHEMA)  # IF NOT EXISTS: adds the pending table
        unanswered = db.execute("SELECT id, rows FROM requests WHERE answered = 0")
        pending = {row: request for request, listed in unanswered for row in json.loads(listed)}
        settled = _settled(db, pending)
        with Transaction(db, path):
            db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, 1)",
                [(row, request) for row, request in pending.items() if row not in settled],
            )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format', '2')")
        meta["format"] = "2"
    if meta.get("format") not in ("2", "3"):
        return
    db.executescript(SCHEMA)  # IF NOT EXISTS: adds the lookups table (format 2 had none)
    added = (
        ("outcomes", "resolved_customer_id"),  # format 3
        ("outcomes", "request_id"),  # format 4
        ("lookups", "request_id"),
    )
    with Transaction(db, path):
        for table, column in added:
            if column not in {name for _, name, *_ in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?)", (FORMAT,))


def _count_sends(db: sqlite3.Connection, path: Path | None) -> None:
    columns = {name for _, name, *_ in db.execute("PRAGMA table_info(requests)")}
    if "sends" not in columns:
        with Transaction(db, path):
            db.execute("ALTER TABLE requests ADD COLUMN sends INTEGER NOT NULL DEFAULT 1")


def _settled(db: sqlite3.Connection, rows: Iterable[int]) -> set[int]:
    wanted = list(rows)
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        query = f"SELECT row FROM outcomes WHERE settled = 1 AND row IN ({marks})"
        found.update(row for (row,) in db.execute(query, part))
    return found
