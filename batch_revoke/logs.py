"""stderr, for people or for log collectors: log records as text or as one JSON object a
line, and the lines that are not log records (a refusal, the summary) in the same format."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import UTC, datetime


class JsonLines(logging.Formatter):
    """One JSON object per line. Only the message and the fields the code attaches are
    written: credentials are never in either."""

    # request_id: the answer's X-Cap-Requestid, what the vendor's support asks for.
    FIELDS = ("event", "request", "request_id", "attempt", "wait_seconds", "summary", "exit_status")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "run_id": Stderr.run_id,
            "event": "log",
            "message": record.getMessage(),
        }
        entry.update(
            (name, value)
            for name in self.FIELDS
            if (value := record.__dict__.get(name)) is not None
        )
        return json.dumps(entry)


class Stderr:
    """Where stderr lines go, and in which format (--log-format), for the process."""

    json = False
    level = logging.INFO
    traceback = False  # --traceback: the Python stack of an error is shown
    run_id = uuid.uuid4().hex[:12]  # the command draws one of its own (exits.ExitingGroup.main)

    @classmethod
    def setup(cls, *, json_lines: bool, level: int, traceback: bool) -> None:
        """Log records of the package to stderr, at `level`, in the format asked for."""
        cls.json, cls.level, cls.traceback = json_lines, level, traceback
        handler = logging.StreamHandler(_CurrentStderr())
        handler.setFormatter(cls._formatter())
        root = logging.getLogger("batch_revoke")
        root.handlers[:] = [handler]
        root.setLevel(level)
        root.propagate = False

    @classmethod
    def say(
        cls, message: str, *, level: int = logging.INFO, event: str = "log", **fields: object
    ) -> None:
        """A line on stderr that is not a log record, in the format asked for, at any level."""
        record = logging.makeLogRecord(
            {"msg": message, "levelno": level, "levelname": logging.getLevelName(level), **fields}
        )
        record.__dict__.setdefault("event", event)
        sys.stderr.write(cls._formatter().format(record) + "\n")
        sys.stderr.flush()

    @classmethod
    def _formatter(cls) -> logging.Formatter:
        return JsonLines() if cls.json else logging.Formatter("batch-revoke: %(message)s")


class _CurrentStderr:
    """sys.stderr as it is at each write: the live display redirects it (lines scroll above)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
