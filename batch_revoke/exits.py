"""The command line's one exit point, and its stderr: every way a command ends (a summary, a
refusal, click's usage errors, an interrupt at any moment) becomes one exit status and lines
on stderr in the --log-format asked for, as the log records are."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from batch_revoke.errors import BatchRevokeError, ConfigError, InputError
from batch_revoke.interrupts import Interrupted, hold_interrupts, raising_interrupts, take_held
from batch_revoke.model import ExitStatus


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

    json = False  # --log-format json, read from the whole command line before click parses it
    level = logging.INFO
    traceback = False  # --traceback: the Python stack of an error is shown
    run_id = uuid.uuid4().hex[:12]  # the command draws one of its own (ExitingGroup.main)

    @classmethod
    def setup(cls, *, level: int, traceback: bool) -> None:
        """Log records of the package to stderr, at `level`, in the format asked for."""
        cls.level, cls.traceback = level, traceback
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


class Failed(Exception):
    """A failure worded for people, with its exit status; told by `ExitingGroup.end`."""

    def __init__(
        self, message: str, status: ExitStatus, level: int = logging.ERROR, *, prefix: str = ""
    ) -> None:
        super().__init__(message)
        self.exit_code = int(status)
        self.level = level
        self.prefix = prefix  # in text only: a JSON line has its level


def interrupted(exc: BaseException, more: str = "") -> Failed:
    """An interrupt that reached the command, not a run: before anything was sent."""
    name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
    text = f"interrupted ({name}) before anything was sent{more}"
    return Failed(text, ExitStatus.ABORTED, logging.WARNING)


class ExitingGroup(click.Group):
    """The command group, ending as this module says."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, standalone_mode: bool = True, **extra: Any
    ) -> int:
        argv = list(sys.argv[1:] if args is None else args)
        # Read before click parses anything, so that its own errors come in the same format.
        Stderr.json, Stderr.run_id = _asks_for_json(argv), uuid.uuid4().hex[:12]
        with raising_interrupts(enabled=True):
            try:
                if (held := take_held()) is not None:  # came while Python imported the package
                    raise interrupted(held, "; nothing was created")
                code = super().main(argv, standalone_mode=False, **extra)
                status = code if isinstance(code, int) else ExitStatus.OK
            except (Failed, click.ClickException) as exc:
                status = self.end(exc)
            except (KeyboardInterrupt, click.exceptions.Abort) as exc:
                status = self.end(interrupted(exc.__cause__ or exc))
        if standalone_mode:
            sys.exit(status)
        return status

    def make_context(self, *args: Any, **extra: Any) -> click.Context:
        try:
            return super().make_context(*args, **extra)
        except KeyboardInterrupt as exc:  # click would print an empty line and "Aborted!"
            raise interrupted(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, Failed):
            raise
        except KeyboardInterrupt as exc:
            # Interrupts during sending are handled by the core; this is before it.
            raise interrupted(exc) from exc
        except Exception as exc:
            if Stderr.traceback:
                raise
            if isinstance(exc, BatchRevokeError):
                # Refused input or options are usage errors; anything else stopped the run.
                refused = isinstance(exc, InputError | ConfigError)
                status = ExitStatus.USAGE if refused else ExitStatus.ABORTED
                raise Failed(str(exc), status, prefix="error: ") from exc
            raise Failed(
                f"internal error: {type(exc).__name__}: {exc} "
                "(rerun with --traceback and report it)",
                ExitStatus.ABORTED,
            ) from exc

    def end(self, exc: Failed | click.ClickException) -> int:
        """A failure told on stderr, and its exit status; from here an interrupt is only noted."""
        hold_interrupts()
        if isinstance(exc, Failed):
            message = str(exc) if Stderr.json else exc.prefix + str(exc)
            Stderr.say(message, level=exc.level, event="error", exit_status=exc.exit_code)
        elif not Stderr.json:
            exc.show()  # click's own wording
        else:
            message = exc.format_message()
            if isinstance(exc, click.UsageError):
                command = exc.ctx.command_path if exc.ctx else "batch-revoke"
                message = f"{message} (see {command} --help)"
            Stderr.say(message, level=logging.ERROR, event="error", exit_status=exc.exit_code)
        return exc.exit_code


def _asks_for_json(argv: Sequence[str]) -> bool:
    """--log-format json, before the command or after it: the last one given counts."""
    asked = False
    for position, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--log-format="):
            asked = arg == "--log-format=json"
        elif arg == "--log-format":
            asked = argv[position + 1 :][:1] == ["json"]
    return asked
