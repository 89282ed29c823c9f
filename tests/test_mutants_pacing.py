"""The shared pace where one slip costs calls or 429s (batch_revoke/pacing.py): how often the
pace probes upward after a probe that found no room (and after one that found some), when two
readings of the limit count as the same, which thin windows teach nothing, what a stray 429
leaves behind, and what the log says. Time is a fake clock that only the pacer's sleeps move,
and the server a fake that allows so many calls a clock-aligned minute."""

from __future__ import annotations

import logging

import pytest

from batch_revoke.config import RateLimit
from batch_revoke.pacing import CONFIRM, Answer, Pacer, PaceStopped
from tests.conftest import Clock, Server, pacer


async def minutes(limits: list[int]) -> tuple[Pacer, list[int], Server]:
    """One worker calls as fast as the pace lets it while the server allows limits[i] calls
    in minute i; returns the pacer, the minutes in which the pace probed upward (above the
    limit learned), and the server."""
    clock = Clock()
    server = Server(clock, limits[0])
    p = pacer(clock)
    first = int(clock.wall() // 60)
    probing: list[int] = []
    while int(clock.wall() // 60) - first < len(limits):
        started = await p.acquire()
        minute = int(started // 60) - first
        server.limit = limits[min(minute, len(limits) - 1)]
        p.answered(started, server.call())
        if p.learned is not None and (p.pace or 0) > p.learned and minute not in probing:
            probing.append(minute)
    return p, probing, server


async def spend(p: Pacer, allowed: int) -> None:
    """`allowed` calls get through, then 429s in a row: the window is spent."""
    for _ in range(allowed):
        p.answered(await p.acquire(), Answer.OK)
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), Answer.THROTTLED)


# --- probing upward -------------------------------------------------------------------------


async def test_each_probe_that_finds_no_room_doubles_the_clean_minutes_before_the_next():
    # Learned in minute 0, one clean minute, a probe in minute 2 (no room); then 2 clean
    # minutes and a probe in minute 5 (no room); then 4 clean minutes and one in minute 10.
    p, probing, server = await minutes([20] * 12)
    assert probing == [2, 5, 10]
    assert (p.learned, p.confirmed) == (20, True)
    assert server.throttled <= 3 * 4  # each probe costs the few 429s that spend its minute


async def test_a_probe_that_finds_a_tenth_more_counts_as_no_room_and_is_seen_twice():
    # The server allows 22 from minute 3: the probe in minute 5 finds 22, a tenth above the
    # 20 learned. The limit read is 22, seen twice (20 and 22 are within a tenth), and the
    # next probe waits 4 clean minutes as after a probe that found nothing: it is out in minute 10.
    p, probing, _ = await minutes([20] * 3 + [22] * 7)
    assert probing == [2, 5, 10]
    assert (p.learned, p.confirmed) == (22, True)
    assert p.describe() == (
        "pace 44/min, probing for more (learned: the server allowed 22 in a window, seen twice)"
    )


async def test_a_probe_that_finds_much_more_room_keeps_probing_as_often():
    # From minute 3 the server allows 30: the probe in minute 5 finds it, and the next probe
    # comes after 2 clean minutes (the gap it had), not after 4.
    p, probing, _ = await minutes([20] * 3 + [30] * 6)
    assert probing[:3] == [2, 5, 8]
    assert p.learned == 30


async def test_readings_two_apart_on_a_small_limit_are_two_limits():
    # 5 then 7: a tenth of 5 is under one call, so they differ by more than the allowance.
    p, _, _ = await minutes([5] * 3 + [7] * 3)
    assert p.learned == 7
    assert not p.confirmed
    assert "seen once" in p.describe()


async def test_a_window_that_allowed_three_calls_is_learned_at_once():
    clock = Clock()
    p = pacer(clock)
    await spend(p, 3)
    assert (p.learned, p.pace, p.confirmed) == (3, 3, False)


async def test_a_window_that_allowed_nothing_teaches_nothing_even_after_one_that_allowed_one():
    clock = Clock()  # 20 s into the minute
    p = pacer(clock)
    await spend(p, 1)  # minute 0: one call, too thin to learn from
    assert p.learned is None
    p.answered(await p.acquire(), Answer.OK)  # minute 1, after the pause: the probe passes
    clock.now += 60  # minute 2: its very first calls are throttled
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), Answer.THROTTLED)
    assert p.learned is None
    assert p.pace is None


# --- what the summary and the timeline count ------------------------------------------------


async def test_a_spent_window_counts_its_429s_one_pause_and_the_seconds_to_the_reset():
    clock = Clock()  # at a minute's start
    p = pacer(clock)
    await spend(p, 20)  # 20 calls, then 3 throttled: the first at 0 s, the last at 0.5 s
    assert p.throttled_calls == CONFIRM + 1
    assert p.throttled_since == 0.0  # since the first of them
    assert p.pauses == 1
    assert p.paused_seconds == pytest.approx(59.5 + p.margin)  # to the reset, plus the margin
    p.answered(await p.acquire(), Answer.OK)  # the probe after the reset gets through
    assert p.throttled_since is None
    assert (p.throttled_calls, p.pauses) == (CONFIRM + 1, 1)


# --- a stray 429 ----------------------------------------------------------------------------


async def test_after_a_stray_429_calls_go_out_together_again(caplog):
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), Answer.THROTTLED)
    with caplog.at_level(logging.DEBUG, logger="batch_revoke.pacing"):
        p.answered(await p.acquire(), Answer.OK)  # a call that left after it got through
    assert p.stray_429s == 1
    assert caplog.messages == [
        "a 429 that later calls got past: not the rate limit; nothing learned"
    ]
    # Nothing is probing any more: two calls start without one waiting for the other's answer.
    before = clock.now
    never_waits = lambda: clock.now > before  # noqa: E731
    first = await p.acquire(never_waits)
    second = await p.acquire(never_waits)
    assert first == second == clock.wall()


async def test_while_a_probe_is_out_the_other_calls_wait_for_its_answer():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), Answer.THROTTLED)
    await p.acquire()  # the probe, not answered yet
    before = clock.now
    with pytest.raises(PaceStopped):
        await p.acquire(lambda: clock.now > before + 5)


# --- what the log says ----------------------------------------------------------------------


async def test_a_spent_window_is_logged_as_a_pause_until_it_resets(caplog):
    clock = Clock()  # 20 s into the minute: the reset is 40 s away
    p = pacer(clock)
    with caplog.at_level(logging.INFO, logger="batch_revoke.pacing"):
        await spend(p, 20)
    (message,) = caplog.messages
    assert message.startswith("429: every request pauses until the window resets; pace 20/min")


async def test_a_known_limit_reads_as_the_rate_limit_given():
    p = pacer(Clock(), RateLimit(10, 60.0))
    assert p.describe() == "pace 10/min (--rate-limit)"
