"""How fast calls may start: one Pacer per run, shared by every worker. Capillary's limits are
per minute and per till, unpublished and without Retry-After, so a stray 429 is told from a
spent window and the limit is learned; why, step by step: docs/rate-limits.md."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable

from batch_revoke.config import RateLimit
from batch_revoke.stop import Sleep, Stopped, sleep_or_event

log = logging.getLogger(__name__)


# 429s in a row (the first, then probes that left after it) that say the window is spent:
# with 2% stray 429s, three in a row by chance is 1 in 125,000.
CONFIRM = 2
# A learned limit is kept this much under: the window is taken this much longer.
HEADROOM = 0.025
# A window cut short after fewer calls than this says nothing of the limit, unless the same
# count is seen again (a server that allows 1 or 2 calls a window is then learned too).
THIN = 3
# Clean windows at pace between upward probes: 1 at first, doubled after each probe that
# found no more room (up to this), and 1 again after one that did.
MAX_PROBE_GAP = 8


class Pacer:
    def __init__(
        self,
        limit: RateLimit | None = None,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.ceiling = limit  # --rate-limit: never faster
        self.period = limit.period if limit else window
        self.learned: int | None = None  # calls the server allows in a window, as measured
        self.confirmed = False  # the same limit was measured twice
        self.throttled_calls = 0
        self.stray_429s = 0  # 429s that other calls' answers showed were not the limit
        self.pauses = 0  # times every call was stopped (a spent window, a Retry-After)
        self.paused_seconds = 0.0  # how long those pauses were set to last, together
        # Latency jitter between our start and the server's count: 0.25 s + 1% on a minute.
        self.margin = min(0.25, self.period / 10) + 0.01 * self.period
        self._hold = min(0.25, self.period / 240)  # a suspect 429's pause before a probe
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._starts: deque[float] = deque()
        self._paused_until = 0.0  # everyone waits: the window's reset, or a Retry-After
        self._held_until = 0.0  # everyone waits: a suspect 429
        # A 429 being looked into: the next call to start is a probe. Either one not yet
        # explained (_suspect: a short hold, then a probe), or a spent window (a wait, then one).
        self._probing = False
        self._suspect: float | None = None  # wall start of the call whose 429 is unexplained
        self._echoes = 0  # 429s of calls that left after it
        self._probe_started: float | None = None  # wall time the probe out now left
        self._widen = 0.0
        self._changed = asyncio.Event()  # a pause, a hold or a probe ended
        self._successes: dict[int, int] = {}  # clock-aligned window -> calls answered
        self._cut: set[int] = set()  # windows a reached limit cut short
        self._measured: int | None = None  # the last window cut short: calls it allowed
        self._clean = 0  # clean windows at pace since the pace last changed
        self._gap = 1  # clean windows before the next upward probe
        self._raised: int | None = None  # the pace of an upward probe, above the learned limit

    @property
    def pace(self) -> int | None:
        """Calls per window the run keeps to; None: as fast as the concurrency goes."""
        counts = [
            c for c in (self._raised or self.learned, self.ceiling and self.ceiling.count) if c
        ]
        return min(counts) if counts else None

    # --- before a call --------------------------------------------------------------------

    async def acquire(self, stopped: Callable[[], bool] = lambda: False) -> float:
        """Wait for this call's turn; returns the wall time it starts at (for `answered`)."""
        while True:
            if stopped():
                raise Stopped
            now = self._clock()
            until = max(self._paused_until, self._held_until)
            if now < until:
                await self._wait(until - now)
                continue
            if self._probing and self._probe_started is not None:
                await self._wait(1.0)  # until the probe is answered
                continue
            wait = self._slot_wait(now)
            if wait > 0:
                await self._wait(wait)
                continue
            self._starts.append(now)
            started = self._wall()
            if self._probing:
                self._probe_started = started
            return started

    def _slot_wait(self, now: float) -> float:
        pace = self.pace
        if pace is None:
            return 0.0
        # The window the pace is kept over: the server's plus the margin for jitter, and a
        # learned limit's stretched a little, so it is kept a little under even when small.
        span = self.period + self.margin
        if self.learned is not None and (self.ceiling is None or self.learned < self.ceiling.count):
            span += self.period * HEADROOM
        while self._starts and now - self._starts[0] >= span:
            self._starts.popleft()
        if len(self._starts) < pace:
            return 0.0
        return self._starts[-pace] + span - now

    async def _wait(self, seconds: float) -> None:
        """Sleep, but wake early when a pause or a probe ends (and at most every second, so a
        stop is noticed)."""
        self._changed.clear()
        await sleep_or_event(self._sleep(min(seconds, 1.0)), self._changed)

    # --- after a call ---------------------------------------------------------------------

    def answered(
        self, started: float, status: int | None, retry_after: float | None = None
    ) -> None:
        """A call's HTTP status (None: no answer at all) and the Retry-After of a 429."""
        window = self._window(started)
        probe = started == self._probe_started
        if probe:
            self._probe_started = None
        if status == 429:
            self._throttled(started, retry_after, probe)
        elif status is not None:
            self._successes[window] = self._successes.get(window, 0) + 1
            self._widen = 0.0
            if self._suspect is not None and started > self._suspect:
                # A call that left after the 429 got through: it was stray, nothing is learned.
                self.stray_429s += 1
                self._suspect, self._probing = None, False
                self._held_until = 0.0
                self._changed.set()
                log.debug("a 429 that later calls got past: not the rate limit; nothing learned")
            elif probe:  # the window has reset: carry on
                self._probing = False
                self._changed.set()
            self._after_window(window)
        elif probe:
            self._changed.set()  # no answer: another call may probe

    def _throttled(self, started: float, retry_after: float | None, probe: bool) -> None:
        self.throttled_calls += 1
        now = self._clock()
        if retry_after is not None:
            # The server says when to come back (capped by the sender): nothing is learned.
            self._pause(now + retry_after, f"{retry_after:.0f}s (as Retry-After asks)")
            return
        window = self._window(started)
        if (
            not self._probing
            and self._measured is not None
            and self._successes.get(window, 0) >= self._measured
        ):
            # Where the limit was measured before: consistent evidence on its own.
            self._spent(window, now)
        elif not self._probing:
            # One 429 is not a measurement: a gateway's burst limiter, another job's call or
            # a stray answer look the same. Hold everyone briefly; the next answers tell.
            self._suspect, self._echoes, self._probing = started, 0, True
            self._held_until = now + self._hold
        elif self._suspect is not None:
            if started <= self._suspect:
                return  # left before the first 429: says nothing more
            self._echoes += 1
            if self._echoes < CONFIRM:
                self._held_until = now + self._hold  # probe once more
                self._changed.set()
                return
            # Calls that left after the first 429 were throttled too: the window is spent.
            self._spent(self._window(self._suspect), now)
        elif probe:
            # Waiting, and the probe after the reset was throttled too: the window is longer
            # or not where we thought.
            self._widen = min(self.period, max(self._widen * 2, self.period / 12))
            self._pause(now + self._widen, f"{self._widen:.0f}s (the probe was throttled too)")
        self._changed.set()

    def _spent(self, window: int, now: float) -> None:
        """The window's limit is reached: learn from it, and wait for the next."""
        self._reached(window)
        self._suspect, self._probing = None, True
        self._held_until = 0.0
        # To the next clock-aligned window start, plus the margin.
        wall = self._wall()
        left = math.floor(wall / self.period + 1) * self.period - wall
        self._pause(now + left + self.margin, "until the window resets")

    def _pause(self, until: float, why: str) -> None:
        now = self._clock()
        if until > now >= self._paused_until:
            self.pauses += 1
        self.paused_seconds += max(0.0, until - max(now, self._paused_until))
        if until > self._paused_until + 1.0:
            log.info("429: every request pauses %s; %s", why, self.describe())
        self._paused_until = max(self._paused_until, until)
        self._changed.set()

    def _reached(self, window: int) -> None:
        """The window was cut short: learn from the calls it allowed, when that says enough."""
        self._cut.add(window)
        allowed = self._successes.get(window, 0)
        measured, self._measured = self._measured, allowed
        self._clean = 0
        if self._raised is not None and self.learned and allowed <= self.learned * 1.1:
            self._gap = min(self._gap * 2, MAX_PROBE_GAP)  # no more room: probe less often
        self._raised = None
        if allowed < 1 or (allowed < THIN and allowed != measured):
            return  # too few calls to tell a limit from bad luck, unless seen again
        self.confirmed = measured is not None and abs(allowed - measured) <= max(1, measured // 10)
        self.learned = allowed

    def _after_window(self, window: int) -> None:
        """Once per window: after clean windows at pace, probe upward by doubling the pace (a
        low reading may have been bad luck, or another job's share that is gone now). Probes
        that find no room come less often; the window they spend is used whole all the same."""
        previous = window - 1
        count = self._successes.pop(previous, None)
        pace = self.pace
        if count is None or self.learned is None or pace is None:
            return
        if previous in self._cut or count < max(1, pace * 9 // 10):
            return  # cut short, or too little to send: says nothing of more room
        self._clean += 1
        if self._raised is not None:  # the raised pace held a window: room was there
            self.learned, self._raised, self._gap = count, None, 1
        if self._clean < self._gap or (self.ceiling and self.learned >= self.ceiling.count):
            return  # never above --rate-limit
        # Doubled: a probe costs the same few 429s (the calls in flight when the window is
        # spent) whatever its size, and a share another job has left is found at once.
        self._clean = 0
        self._raised = self.learned * 2
        if self.ceiling is not None:
            self._raised = min(self._raised, self.ceiling.count)

    def _window(self, wall: float) -> int:
        return int(wall // self.period)

    def describe(self) -> str:
        """For the progress line and the summary."""
        pace = self.pace
        strays = f"; {self.stray_429s} stray 429s ignored" if self.stray_429s else ""
        if pace is None:
            return f"no pace needed yet{strays}"
        if self.learned is not None and pace in (self.learned, self._raised):
            seen = "seen twice" if self.confirmed else "seen once"
            source = f"learned: the server allowed {self.learned} in a window, {seen}"
            if pace == self._raised:
                return f"pace {RateLimit(pace, self.period)}, probing for more ({source}){strays}"
            return f"pace {RateLimit(pace, self.period)}, kept a little under ({source}){strays}"
        return f"pace {RateLimit(pace, self.period)} (--rate-limit){strays}"
