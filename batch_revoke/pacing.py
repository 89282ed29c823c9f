"""How fast calls may start: Capillary's limits are per minute and per till, not discoverable,
and come without Retry-After. One Pacer per run, shared by every worker:

- a 429 pauses every worker, not just the request that got it. With Retry-After the pause is
  what it asks (capped); without, it lasts until the most likely window reset (windows aligned
  to the clock, as gateways count), then one request probes; a throttled probe widens the wait;
- the limit is learned: the calls that succeeded in the window before the first 429 are what
  the server allows, and the pace is set just under that (never above --rate-limit), then
  raised by one call after each full window without a 429, in case the limit is higher;
- the pace is kept with a sliding window a little longer than the server's (a margin for
  latency jitter), so no clock-aligned or sliding window the server uses ever sees more.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from batch_revoke.errors import ConfigError

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|second|m|min|minute)\s*")


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    period: float  # seconds

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        match = re.fullmatch(
            r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|second|m|min|minute)\s*", text
        )
        if match:
            count, size = int(match.group(1)), float(match.group(2) or 1)
            period = size * (60.0 if match.group(3).startswith("m") else 1.0)
            if count >= 1 and period > 0:
                return cls(count, period)
        raise ConfigError(
            f"rate limit {text!r} is not N/s or N/min",
            "e.g. --rate-limit 100/min (Capillary demo clusters allow 100 per minute)",
        )

    def __str__(self) -> str:
        if self.period == 60.0:
            return f"{self.count}/min"
        return f"{self.count}/s" if self.period == 1.0 else f"{self.count}/{self.period:g}s"


async def sleep_or_event(sleeping: Awaitable[None], event: asyncio.Event) -> None:
    """Wait for `sleeping`, or less if `event` is set first."""
    waiting = asyncio.ensure_future(sleeping)
    watching = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiting, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        watching.cancel()


class Answer(Enum):
    OK = "ok"  # any HTTP answer but a 429
    THROTTLED = "throttled"  # 429
    NONE = "none"  # no answer at all (timeout, connection error)


class PaceStopped(Exception):
    """The shared `stopped` check said to stop while a call waited for its turn."""


class Pacer:
    def __init__(
        self,
        limit: RateLimit | None = None,
        window: float = 60.0,
        *,
        max_retry_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.ceiling = limit  # --rate-limit: never faster
        self.period = limit.period if limit else window
        self.pace: int | None = limit.count if limit else None  # calls per period; None: free
        self.learned: int | None = None  # calls the server allowed in a window, when seen
        self.throttled_calls = 0
        self.throttled_since: float | None = None  # start of the current run of 429s
        # Latency jitter between our start and the server's count: 0.25 s + 1% on a minute.
        self.margin = min(0.25, self.period / 10) + 0.01 * self.period
        self._max_retry_after = max_retry_after
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._probing = False
        self._probe_out = False
        self._probe_started: float | None = None  # wall time the probe left
        self._widen = 0.0
        self._changed = asyncio.Event()  # a pause or a probe ended
        self._successes: dict[int, int] = {}  # clock-aligned window -> calls answered
        self._first_window: int | None = None  # joined part-way: says nothing of the limit
        self._throttled_windows: set[int] = set()
        self._lock = asyncio.Lock()

    # --- before a call --------------------------------------------------------------------

    async def acquire(self, stopped: Callable[[], bool] = lambda: False) -> float:
        """Wait for this call's turn; returns the wall time it starts at (for `answered`)."""
        while True:
            if stopped():
                raise PaceStopped
            now = self._clock()
            if now < self._paused_until:
                await self._wait(self._paused_until - now)
                continue
            if self._probing and self._probe_out:
                await self._wait(None)  # until the probe is answered
                continue
            wait = self._slot_wait(now)
            if wait > 0:
                await self._wait(wait)
                continue
            self._starts.append(now)
            started = self._wall()
            if self._first_window is None:
                self._first_window = self._window(started)
            if self._probing:
                self._probe_out = True
                self._probe_started = started
            return started

    def _slot_wait(self, now: float) -> float:
        if self.pace is None:
            return 0.0
        span = self.period + self.margin
        while self._starts and now - self._starts[0] >= span:
            self._starts.popleft()
        if len(self._starts) < self.pace:
            return 0.0
        return self._starts[-self.pace] + span - now

    async def _wait(self, seconds: float | None) -> None:
        """Sleep, but wake early when a pause or a probe ends (and at most every second, so a
        stop is noticed)."""
        self._changed.clear()
        await sleep_or_event(
            self._sleep(1.0 if seconds is None else min(seconds, 1.0)), self._changed
        )

    # --- after a call ---------------------------------------------------------------------

    def answered(self, started: float, answer: Answer, retry_after: float | None = None) -> None:
        window = self._window(started)
        probe = self._probe_out and started == self._probe_started
        if answer is Answer.THROTTLED:
            self._throttled(window, retry_after, probe)
        elif answer is Answer.OK:
            self._successes[window] = self._successes.get(window, 0) + 1
            self.throttled_since = None
            self._widen = 0.0
            self._end_probe()
            self._raise_pace(window)
        elif probe:
            self._probe_out = False  # no answer: another call may probe
            self._changed.set()

    def _throttled(self, window: int, retry_after: float | None, probe: bool) -> None:
        self.throttled_calls += 1
        now = self._clock()
        if self.throttled_since is None:
            self.throttled_since = now
        if window not in self._throttled_windows:
            self._throttled_windows.add(window)
            # Learn only from a window we saw whole, and only when the server does not say
            # when to come back (then its word is enough).
            if retry_after is None and window != self._first_window:
                self._learn(self._successes.get(window, 0))
        if retry_after is not None:
            pause = min(retry_after, self._max_retry_after)
        elif probe:
            # The probe was throttled too: the window is longer or not where we thought.
            self._widen = min(self.period, max(self._widen * 2, self.period / 12))
            pause = self._widen
        else:
            pause = self._until_reset()
        if now + pause > self._paused_until + 1.0:
            why = "as Retry-After asks" if retry_after is not None else "until the window resets"
            log.info("429: every request pauses %.0fs (%s); %s", pause, why, self.describe())
        self._paused_until = max(self._paused_until, now + pause)
        if retry_after is None:
            self._probing = True
            if probe:
                self._probe_out = False
        self._changed.set()

    def _learn(self, allowed: int) -> None:
        if allowed < 1:
            return
        self.learned = allowed
        pace = max(1, allowed - max(1, allowed // 20))  # just under what the server allowed
        if self.ceiling is not None:
            pace = min(pace, self.ceiling.count)
        self.pace = pace if self.pace is None else min(self.pace, pace)

    def _raise_pace(self, window: int) -> None:
        """After a full window at pace without a 429, try one call more per window."""
        previous = window - 1
        if (
            self.pace is None
            or self.learned is None
            or previous in self._throttled_windows
            or self._successes.get(previous, 0) < self.pace
            or (self.ceiling is not None and self.pace >= self.ceiling.count)
        ):
            return
        self._successes.pop(previous)  # raise once per window
        self.pace += 1

    def _end_probe(self) -> None:
        if self._probing:
            self._probing = self._probe_out = False
            self._changed.set()

    def _until_reset(self) -> float:
        """Seconds to the next clock-aligned window start, plus the margin."""
        now = self._wall()
        left = math.floor(now / self.period + 1) * self.period - now
        return left + self.margin

    def _window(self, wall: float) -> int:
        return int(wall // self.period)

    def describe(self) -> str:
        """For the progress line and the summary."""
        if self.pace is None:
            return "no pace needed yet"
        source = (
            f"learned: the server allowed {self.learned} in a window, then one more per clean "
            "window"
            if self.learned is not None
            else "--rate-limit"
        )
        return f"pace {RateLimit(self.pace, self.period)} ({source})"
