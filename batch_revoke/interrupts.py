"""Interrupts: SIGINT, SIGTERM and SIGHUP stop a run the same way, in two steps, and never
cut the result file short. From the command's first instant: interrupts that come while Python
imports the package (about a second) are held, not fatal, so even a SIGTERM then ends in one
line and exit status 3; stdlib only, as it runs before the imports it guards."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # asyncio in annotations only: the handlers go on the loop running `work`
    import asyncio

    from batch_revoke.stop import Stop

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Handler = Callable[[int, FrameType | None], None]
_held: list[int] = []


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised where the program was, naming the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name


def hold_interrupts() -> None:
    """Remember an interrupt instead of dying of it (Python's default for SIGTERM ends the
    process with status 143, its SIGINT with a traceback), until the command takes over."""
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


class Interrupts:
    """SIGINT, SIGTERM, SIGHUP: the first stops new requests and gives those in flight
    `grace` seconds; the second (or the end of the grace) cancels them."""

    def __init__(self, stop: Stop, work: asyncio.Task[None], grace: float) -> None:
        self.stop = stop
        self.work = work
        self.grace = grace
        self.cancelled = False
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        loop = self.work.get_loop()
        for signum in catchable():
            self._previous[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self.received, signum)

    def remove(self) -> None:
        """The handlers from before, not the defaults asyncio leaves (SIGTERM's kills with
        143): the run still has its result file to write. Signals wait while they change."""
        loop = self.work.get_loop()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS) if _main() else None
        try:
            for signum, handler in self._previous.items():
                loop.remove_signal_handler(signum)
                if handler is not None:  # None: not set from Python; the default stays
                    signal.signal(signum, handler)  # type: ignore[arg-type]
        finally:
            if blocked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._previous.clear()

    def received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self.stop.requested:
            self.stop.request(f"interrupted ({name})")
            log.warning(
                "%s: no new requests; waiting up to %.0fs for those in flight "
                "(interrupt again to stop now)",
                name,
                self.grace,
            )
            self.work.get_loop().call_later(self.grace, self.cancel)
            return
        if not self.stop.reason.startswith("interrupted"):
            self.stop.reason = f"interrupted ({name}) after: {self.stop.reason}"
        log.warning(
            "%s again: stopping the requests in flight now; their rows stay unconfirmed and "
            "--resume reads them back",
            name,
        )
        self.cancel()

    def cancel(self) -> None:
        if not self.work.done():
            self.cancelled = True
            self.work.cancel()


class Finishing:
    """From the end of the sending to the end of the run. The first interrupt is reported; the
    next, while the result file is written, stops writing at once (KeyboardInterrupt, once);
    any other is only noted, so the run still ends with its summary and exit status."""

    def __init__(self) -> None:
        self.seen = 0
        self._writing = False

    @classmethod
    @contextmanager
    def handled(cls, enabled: bool) -> Iterator[Finishing]:
        finishing = cls()
        with _handled(finishing._received, SIGNALS if enabled and _main() else ()):
            yield finishing

    @contextmanager
    def writing(self) -> Iterator[None]:
        """While the result file is written: a second interrupt stops it."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.seen += 1
        if self.seen == 1 and self._writing:
            log.warning(
                "writing the result file; interrupt again to stop now and leave it marked "
                "INCOMPLETE (the journal keeps every outcome for --resume)"
            )
        elif self.seen > 1 and self._writing:
            self._writing = False  # stopped once: any later interrupt is only noted
            raise Interrupted(signum)


def raising_interrupts(enabled: bool) -> AbstractContextManager[None]:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt (`Interrupted`, naming the signal):
    while the input is read and planned, before the run's own handlers are installed."""
    return _handled(_raise, catchable() if enabled and _main() else ())


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def _handled(handler: Handler, signums: Iterable[int]) -> Iterator[None]:
    """`handler` takes `signums` while the block runs; the handlers before come back after."""
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()
