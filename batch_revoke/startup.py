"""The command's first instant: interrupts that come while Python imports the package (about
a second) are held, not fatal, so even a SIGTERM then ends in one line and exit status 3.

Stdlib only, and nothing else of the package: it runs before the imports it guards."""

from __future__ import annotations

import signal
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_held: list[int] = []


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised where the program was, naming the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name


def hold_interrupts() -> None:
    """Remember an interrupt instead of dying of it (Python's default for SIGTERM ends the
    process with status 143, its SIGINT with a traceback), until the command takes over.
    A signal the process was started ignoring (nohup) stays ignored."""
    for signum in catchable():
        signal.signal(signum, _hold)


def take_held() -> Interrupted | None:
    """The first interrupt held so far, if any, and forget them all."""
    first = Interrupted(_held[0]) if _held else None
    _held.clear()
    return first


def catchable() -> list[int]:
    """The signals the process was not started ignoring (nohup ignores SIGHUP)."""
    return [signum for signum in SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]


def _hold(signum: int, frame: FrameType | None) -> None:
    _held.append(signum)
