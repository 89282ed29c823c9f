"""The command line's one exit point: every way a command ends (a summary, a refusal, click's
usage errors, an interrupt at any moment) becomes one exit status and, on stderr, lines in the
--log-format asked for."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import click

from batch_revoke.errors import BatchRevokeError
from batch_revoke.interrupts import Interrupted, hold_interrupts, raising_interrupts, take_held
from batch_revoke.logs import Stderr
from batch_revoke.model import ExitStatus
from batch_revoke.options import session
from batch_revoke.report import exit_status


class Failed(Exception):
    """A failure worded for people, with its exit status; told by `ExitingGroup.end`."""

    def __init__(
        self, message: str, status: ExitStatus, level: int = logging.ERROR, *, prefix: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(status)
        self.level = level
        self.prefix = prefix  # in text only: a JSON line has its level

    def format_message(self) -> str:
        return self.message

    def show(self) -> None:
        click.echo(f"batch-revoke: {self.prefix}{self.message}", err=True)


def interrupted(exc: BaseException, more: str = "") -> Failed:
    """An interrupt that reached the command, not a run: before anything was sent."""
    name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
    text = f"interrupted ({name}) before anything was sent{more}"
    return Failed(text, ExitStatus.ABORTED, logging.WARNING)


class ExitingGroup(click.Group):
    """The command group, ending as this module says."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        argv = list(sys.argv[1:] if args is None else args)
        # Read before click parses anything, so that its own errors come in the same format.
        Stderr.json, Stderr.run_id = _asks_for_json(argv), uuid.uuid4().hex[:12]
        with raising_interrupts(enabled=True):
            try:
                if (held := take_held()) is not None:  # came while Python imported the package
                    raise interrupted(held, "; nothing was created")
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
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
            if session(ctx).traceback:
                raise
            if isinstance(exc, BatchRevokeError):
                raise Failed(str(exc), exit_status(exc), prefix="error: ") from exc
            raise Failed(
                f"internal error: {type(exc).__name__}: {exc} "
                "(rerun with --traceback and report it)",
                exit_status(exc),
            ) from exc

    def end(self, exc: Failed | click.ClickException) -> int:
        """A failure told on stderr (click's own wording, or one JSON object), and its exit
        status. The outcome is decided: from here an interrupt is only noted."""
        hold_interrupts()
        if not Stderr.json:
            exc.show()
            return exc.exit_code
        message = exc.format_message()
        if isinstance(exc, click.UsageError):
            command = exc.ctx.command_path if exc.ctx else "batch-revoke"
            message = f"{message} (see {command} --help)"
        level = exc.level if isinstance(exc, Failed) else logging.ERROR
        Stderr.say(message, level=level, event="error", exit_status=exc.exit_code)
        return exc.exit_code


def _asks_for_json(argv: Sequence[str]) -> bool:
    """--log-format json, before the command or after it: the last one given counts, as
    when click reads them."""
    asked = False
    for position, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--log-format="):
            asked = arg == "--log-format=json"
        elif arg == "--log-format":
            asked = argv[position + 1 :][:1] == ["json"]
    return asked
