"""A run's shared request to stop: every part of a run that waits or starts a call asks it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


class Stopped(Exception):
    """A stop was requested while a request waited for its turn or to be retried."""


async def sleep_or_event(sleeping: Awaitable[None], event: asyncio.Event) -> None:
    """Wait for `sleeping`, or less if `event` is set first."""
    waiting = asyncio.ensure_future(sleeping)
    watching = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiting, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        watching.cancel()


class Stop:
    """No new request starts, waits for a retry end at once. The first reason given is the one
    reported; `stopping` is called once, at the first."""

    def __init__(self, stopping: Callable[[], None] | None = None) -> None:
        self.reason = ""
        self._event = asyncio.Event()
        self._stopping = stopping

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
        first = not self._event.is_set()
        self._event.set()
        if first and self._stopping is not None:
            self._stopping()

    async def sleep(self, seconds: float, sleep: Sleep) -> None:
        """`sleep(seconds)`, cut short by a stop (which raises Stopped)."""
        if self.requested:
            raise Stopped
        await sleep_or_event(sleep(seconds), self._event)
        if self.requested:
            raise Stopped
