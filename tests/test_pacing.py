"""The shared pace: known limits, 429s that pause everyone, probes, and learning the limit.
Time is a fake clock that only the pacer's sleeps move, so nothing here waits or times."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from batch_revoke.config import RateLimit
from batch_revoke.errors import ConfigError
from batch_revoke.pacing import CONFIRM, HEADROOM, Pacer
from tests.conftest import Clock, Server, pacer


async def run_calls(p: Pacer, server: Server, calls: int, workers: int = 4) -> list[float]:
    """`calls` successful calls through `workers` workers; a throttled call is tried again."""
    done: list[float] = []
    left = [calls]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1  # this worker's call
            while True:
                started = await p.acquire()
                await asyncio.sleep(0)
                answer = server.call()
                p.answered(started, answer)
                if answer == 200:
                    done.append(server.clock.wall())
                    break

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("100/min", 100, 60.0), ("5/s", 5, 1.0), (" 20 / minute ", 20, 60.0), ("40/10s", 40, 10.0)],
)
def test_rate_limit_parse(text, count, period):
    assert RateLimit.parse(text) == RateLimit(count, period)


@pytest.mark.parametrize("text", ["100", "0/min", "5/hour", "x/s", "3/0s"])
def test_rate_limit_parse_refuses_nonsense(text):
    with pytest.raises(ConfigError, match="N/s or N/min"):
        RateLimit.parse(text)


async def test_a_known_limit_is_never_exceeded_in_any_window():
    clock = Clock()
    p = pacer(clock, RateLimit(10, 60.0))
    starts = []
    for _ in range(35):
        await p.acquire()
        starts.append(clock.now)
        clock.now += 0.5
    for start in starts:
        assert sum(1 for s in starts if start <= s < start + 60) <= 10


async def test_the_known_limit_meets_a_clock_aligned_server_without_a_429():
    clock = Clock()
    server = Server(clock, 30)
    done = await run_calls(pacer(clock, RateLimit(30, 60.0)), server, 150)
    assert server.throttled == 0
    assert len(done) == 150


async def test_one_429_is_not_the_limit_when_a_later_call_gets_through():
    clock = Clock()  # 20 s into the minute
    p = pacer(clock)
    p.answered(await p.acquire(), 429)
    probe = await p.acquire()
    assert probe - clock.offset < 1.0  # a moment's hold, not the 40 s to the reset
    p.answered(probe, 200)
    assert p.learned is None
    assert p.pace is None
    assert p.stray_429s == 1
    assert await p.acquire() - clock.offset < 1.0


async def test_429s_in_a_row_pause_everyone_until_the_window_resets():
    clock = Clock()  # 20 s into the minute: the reset is 40 s away
    p = pacer(clock)
    for _ in range(5):
        p.answered(await p.acquire(), 200)
    p.answered(await p.acquire(), 429)
    for _ in range(CONFIRM):
        p.answered(await p.acquire(), 429)  # probes that left after it
    waiting = [asyncio.ensure_future(p.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    probe_at = await waiting[0]
    assert probe_at >= 1_000_080.0  # the next minute, plus the margin
    await asyncio.sleep(0)
    assert not waiting[1].done()  # one probe at a time
    p.answered(probe_at, 200)
    await asyncio.gather(*waiting)
    assert p.learned == 5  # the spent window allowed 5


async def test_a_429_of_a_call_that_left_earlier_says_nothing_more():
    clock = Clock()
    p = pacer(clock)
    first, second = await p.acquire(), await p.acquire()
    p.answered(second, 429)
    p.answered(first, 429)  # in flight before the 429 came back
    probe = await p.acquire()
    p.answered(probe, 200)
    assert p.learned is None
    assert probe - clock.offset < 1.0


async def test_a_throttled_probe_after_the_reset_widens_the_wait():
    clock = Clock()
    p = pacer(clock)
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)
    first = await p.acquire()  # after the reset
    p.answered(first, 429)
    second = await p.acquire()
    p.answered(second, 429)
    third = await p.acquire()
    assert second - first >= 5.0  # a twelfth of the window
    assert third - second >= 10.0  # doubled


async def test_retry_after_is_honoured_for_everyone():
    clock = Clock()
    p = Pacer(None, clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
    p.answered(await p.acquire(), 429, retry_after=7.0)
    assert await p.acquire() - clock.offset >= 7.0
    p.answered(await p.acquire(), 429, retry_after=30.0)
    before = clock.now
    await p.acquire()
    assert 30.0 <= clock.now - before < 31.0


async def test_an_unknown_limit_is_learned_and_kept_just_under():
    clock = Clock()
    server = Server(clock, 40)
    p = pacer(clock)
    done = await run_calls(p, server, 400)
    assert p.learned == 40
    assert 36 <= (p.pace or 0) <= 41
    assert server.throttled / (400 + server.throttled) <= 0.10
    windows = {int(t // 60) for t in done}
    ideal = -(-400 // 40)
    assert len(windows) <= ideal * 1.25 + 1


async def test_the_pace_never_goes_above_a_given_limit():
    clock = Clock()
    server = Server(clock, 100)
    p = pacer(clock, RateLimit(20, 60.0))
    await run_calls(p, server, 120)
    assert p.pace == 20
    assert server.throttled == 0


async def test_a_limit_below_the_given_one_is_learned():
    clock = Clock()
    server = Server(clock, 15)
    p = pacer(clock, RateLimit(30, 60.0))
    await run_calls(p, server, 90)
    assert p.learned == 15
    assert p.pace in (15, 30)  # kept at what was learned, or probing up to --rate-limit
    assert server.throttled <= 12


async def test_stray_429s_without_a_limit_never_set_a_pace():
    clock = Clock()
    server = Server(clock, None, stray=0.02)
    p = pacer(clock)
    done = await run_calls(p, server, 1300)
    assert server.throttled >= 10  # the scenario really had stray 429s
    assert p.pace is None
    assert p.stray_429s >= 10
    gaps = [later - earlier for earlier, later in itertools.pairwise(done)]
    assert max(gaps) < 5  # holds of a moment each, never a wait for the window's reset


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stray_429s_under_a_real_limit_learn_the_real_limit(seed):
    clock = Clock()
    server = Server(clock, 30, stray=0.02, seed=seed)
    p = pacer(clock)
    done = await run_calls(p, server, 600)
    assert p.learned is not None
    assert 28 <= p.learned <= 31
    windows = {int(t // 60) for t in done}
    assert len(windows) <= 20 * 1.5


async def test_a_low_reading_recovers_multiplicatively_and_never_above_the_given_limit():
    clock = Clock()
    server = Server(clock, 100)
    p = pacer(clock, RateLimit(50, 60.0))
    # A bad-luck reading: a window cut after 4 calls.
    for _ in range(4):
        p.answered(await p.acquire(), 200)
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)
    assert p.learned == 4
    paces = []

    async def watch() -> None:
        while True:
            paces.append(p.pace)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    await run_calls(p, server, 400)
    watcher.cancel()
    assert max(pace or 0 for pace in paces) <= 50  # never above --rate-limit, even probing
    assert p.pace == 50
    assert server.throttled == 0  # the server allows 100: the ceiling was never passed
    assert clock.now < 12 * 60  # 4 -> 8 -> 16 -> 32 -> 50 in a few windows, not 46


@pytest.mark.parametrize("limit", [1, 2, 5])
async def test_a_small_learned_limit_is_kept_a_little_under(limit):
    clock = Clock()
    server = Server(clock, limit)
    p = pacer(clock)
    done = await run_calls(p, server, limit * 12)
    assert p.learned == limit
    assert p.confirmed
    # Once learned, the calls leave a little less often than the server allows.
    late = [t for t in done if t >= done[-1] - 5 * 60 * (1 + HEADROOM)]
    assert len(late) <= 5 * limit


async def test_a_thin_window_says_nothing_unless_seen_again():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 200)
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)
    assert p.learned is None  # one call, then 429s: bad luck or a limit of 1?
    p.answered(await p.acquire(), 200)  # the probe after the reset
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)
    assert p.learned == 1  # the same again: a limit of 1


async def test_two_runs_sharing_one_till_both_finish_near_the_ideal():
    clock = Clock()
    server = Server(clock, 30)
    first, second = pacer(clock), pacer(clock)
    done = await asyncio.gather(run_calls(first, server, 300), run_calls(second, server, 300))
    # Together they need 20 windows of the till's limit; each finishes within 1.5 times that.
    start = min(done[0] + done[1]) // 60
    assert max(max(done[0]), max(done[1])) // 60 - start < 20 * 1.5
    assert server.throttled / (600 + server.throttled) < 0.2  # sharing costs 429s, not a thrash


async def test_two_429s_in_a_row_are_not_yet_the_limit():
    # Three in a row say the window is spent (with 2% stray 429s, three by chance is 1 in
    # 125,000); two are still a moment's hold, and a call that then gets through clears them.
    clock = Clock()  # 20 s into the minute
    p = pacer(clock)
    for _ in range(5):
        p.answered(await p.acquire(), 200)
    p.answered(await p.acquire(), 429)
    p.answered(await p.acquire(), 429)  # the probe that left after it
    probe = await p.acquire()
    assert probe - clock.offset < 2.0  # not the 40 s to the window's reset
    p.answered(probe, 200)
    assert p.learned is None
    assert p.pace is None
    assert p.stray_429s == 1


async def test_a_given_limit_is_kept_over_its_window_plus_the_documented_margin():
    # 0.25 s plus 1% on a one-minute window: the 11th call of 10/min leaves 60.85 s after
    # the first, so neither a clock-aligned nor a sliding window of the server sees 11.
    clock = Clock()
    p = pacer(clock, RateLimit(10, 60.0))
    for _ in range(10):
        await p.acquire()
    await p.acquire()
    assert clock.now == pytest.approx(60.85)
