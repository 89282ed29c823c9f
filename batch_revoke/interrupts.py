"""Interrupts: SIGINT, SIGTERM and SIGHUP stop a run the same way, in two steps, and never
cut the result file short."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from batch_revoke.sender import Stop

log = logging.getLogger(__name__)


class Interrupts:
    """SIGINT, SIGTERM, SIGHUP: the first stops new requests and gives those in flight
    `grace` seconds; the second (or the end of the grace) cancels them."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, stop: Stop, work: asyncio.Task[None], grace: float) -> None:
        self.stop = stop
        self.work = work
        self.grace = grace
        self.cancelled = False
        self._installed: list[int] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self.SIGNALS:
            loop.add_signal_handler(signum, self.received, signum)
            self._installed.append(signum)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._installed:
            loop.remove_signal_handler(signum)
        self._installed.clear()

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
            asyncio.get_running_loop().call_later(self.grace, self.cancel)
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
    """While the result file is written: the first interrupt is reported, the next raises."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.seen = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if self.enabled:
            for signum in Interrupts.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._received)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.seen += 1
        if self.seen == 1:
            log.warning(
                "writing the result file; interrupt again to stop now and leave it marked "
                "INCOMPLETE (the journal keeps every outcome for --resume)"
            )
            return
        raise KeyboardInterrupt


@contextmanager
def raising_interrupts(enabled: bool) -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as SIGINT does: while the input is read
    and planned, before the run's own handlers are installed."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in Interrupts.SIGNALS[1:]}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
