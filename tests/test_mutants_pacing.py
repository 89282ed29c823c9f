"""The shared pace where one slip costs calls or 429s (batch_revoke/pacing.py): how often the
pace probes upward after a probe that found no room (and after one that found some), which
minutes count as sent at pace, when two readings of the limit count as the same, which thin
windows teach nothing, the margin and the holds on windows other than a minute, what counts as
one pause and for how long, which 429s count as in a row, what a stray 429 leaves behind, and
what the log says. Time is a fake clock that only the pacer's sleeps move, and the server a fake
that allows so many calls a clock-aligned minute."""

from __future__ import annotations

import logging

import pytest

from batch_revoke.config import RateLimit
from batch_revoke.pacing import CONFIRM, Pacer
from batch_revoke.stop import Stopped
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
        p.answered(await p.acquire(), 200)
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)


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
    assert p.describe() == (
        "pace 7/min, kept a little under (learned: the server allowed 7 in a window, seen once)"
    )


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
    p.answered(await p.acquire(), 200)  # minute 1, after the pause: the probe passes
    clock.now += 60  # minute 2: its very first calls are throttled
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)
    assert p.learned is None
    assert p.pace is None


async def minute_after_a_spent_one(calls: int) -> Pacer:
    """The server allowed 21 calls in minute 0 (learned, the pace is 21); in minute 1 the run
    has only `calls` to send (a small file, slow answers); returns the pacer as the first call
    of minute 2 is answered."""
    clock = Clock()  # at a minute's start
    p = pacer(clock)
    await spend(p, 21)
    for _ in range(calls):
        started = await p.acquire()
        assert 60 <= clock.now < 120  # minute 1
        p.answered(started, 200)
    clock.now = 120.0  # minute 2
    p.answered(await p.acquire(), 200)
    return p


async def test_a_minute_that_sent_nine_tenths_of_the_pace_counts_as_clean_and_the_pace_probes():
    # 9/10 of 21 is 18.9, rounded down: 18 calls are a minute at pace, and the next doubles.
    p = await minute_after_a_spent_one(18)
    assert p.pace == 42
    assert p.describe() == (
        "pace 42/min, probing for more (learned: the server allowed 21 in a window, seen once)"
    )


async def test_a_minute_that_sent_under_nine_tenths_of_the_pace_says_nothing_of_more_room():
    p = await minute_after_a_spent_one(17)
    assert p.pace == 21
    assert p.describe() == (
        "pace 21/min, kept a little under (learned: the server allowed 21 in a window, seen once)"
    )


async def test_a_server_that_allows_one_call_a_minute_is_still_probed_for_more():
    # Learned in minute 1 (one call, seen twice); minute 2 sends its one call: clean, so
    # minute 3 tries two; that finds no room, and the next try waits for 2 clean minutes.
    p, probing, _ = await minutes([1] * 8)
    assert (p.learned, p.confirmed) == (1, True)
    assert probing == [3, 6]


async def test_an_upward_probe_that_finds_no_room_costs_one_429():
    # The first spent minute costs three 429s in a row (one alone may be stray); once the limit
    # is measured, the 429 that comes at that count spends the window at once: one 429 for each
    # of the three upward probes.
    p, probing, server = await minutes([20] * 12)
    assert probing == [2, 5, 10]
    assert server.throttled == CONFIRM + 1 + 3
    assert p.pauses == 1 + 3


async def test_a_learned_limit_equal_to_the_rate_limit_is_never_said_to_probe_for_more():
    # A bad-luck reading (4) recovers to --rate-limit 10: from then on the pace stays there,
    # and the progress line never says it is probing above it.
    clock = Clock()
    p = pacer(clock, RateLimit(10, 60.0))
    await spend(p, 4)
    while p.learned != 10:
        assert clock.now < 600, "the pace never came back to --rate-limit"
        p.answered(await p.acquire(), 200)
    end = clock.now + 600
    lines = set()
    while clock.now < end:
        p.answered(await p.acquire(), 200)
        lines.add(p.describe())
    assert lines == {
        "pace 10/min, kept a little under (learned: the server allowed 10 in a window, seen once)"
    }


# --- windows other than a minute, and a pacer made with the defaults -----------------------


@pytest.mark.parametrize(
    ("limit", "gap"),
    [
        (RateLimit(5, 1.0), 1.11),  # a tenth of the second, plus 1%
        (RateLimit(5, 2.0), 2.22),
        (RateLimit(5, 600.0), 606.25),  # a quarter second at most, plus 1%
    ],
)
async def test_a_given_limit_is_kept_over_its_own_window_plus_the_margin(limit, gap):
    clock = Clock()
    p = pacer(clock, limit)
    first = await p.acquire()
    for _ in range(limit.count):
        started = await p.acquire()
    assert started - first == pytest.approx(gap)


@pytest.mark.parametrize(("window", "hold"), [(60.0, 0.25), (10.0, 10.0 / 240), (600.0, 0.25)])
async def test_a_single_429_holds_everyone_a_240th_of_the_window_at_most_a_quarter_second(
    window, hold
):
    clock = Clock()
    p = pacer(clock, window=window)
    first = await p.acquire()
    p.answered(first, 429)
    assert await p.acquire() - first == pytest.approx(hold)


@pytest.mark.parametrize("allowed", [0, 5])
async def test_on_a_short_window_the_first_throttled_probe_pauses_a_twelfth_of_it(allowed):
    clock = Clock()
    p = pacer(clock, window=10.0)
    await spend(p, allowed)
    probe = await p.acquire()  # after the reset
    p.answered(probe, 429)
    assert await p.acquire() - probe == pytest.approx(10.0 / 12)


async def test_a_pacer_made_without_a_window_counts_in_minutes():
    clock = Clock()  # at a minute's start
    p = Pacer(clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
    await spend(p, 20)
    assert p.describe() == (
        "pace 20/min, kept a little under (learned: the server allowed 20 in a window, seen once)"
    )
    assert p.paused_seconds == pytest.approx(59.5 + 0.85)  # to the minute's reset, plus margin
    p.answered(await p.acquire(), 429, retry_after=300.0)  # the sender's cap
    assert p.paused_seconds == pytest.approx(59.5 + 0.85 + 300.0)


# --- what the summary and the timeline count ------------------------------------------------


async def test_a_pacer_that_has_seen_no_answer_has_learned_and_counted_nothing():
    p = pacer(Clock())
    assert (p.learned, p.confirmed, p.pace) == (None, False, None)
    assert (p.throttled_calls, p.stray_429s) == (0, 0)
    assert (p.pauses, p.paused_seconds) == (0, 0.0)


async def test_a_spent_window_counts_its_429s_one_pause_and_the_seconds_to_the_reset():
    clock = Clock()  # at a minute's start
    p = pacer(clock)
    await spend(p, 20)  # 20 calls, then 3 throttled: the first at 0 s, the last at 0.5 s
    assert p.throttled_calls == CONFIRM + 1
    assert p.pauses == 1
    assert p.paused_seconds == pytest.approx(59.5 + p.margin)  # to the reset, plus the margin
    p.answered(await p.acquire(), 200)  # the probe after the reset gets through
    assert (p.throttled_calls, p.pauses) == (CONFIRM + 1, 1)


async def test_a_retry_after_of_zero_is_no_pause():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429, retry_after=0.0)
    assert (p.pauses, p.paused_seconds) == (0, 0.0)


async def test_a_retry_after_right_as_the_last_pause_ends_is_a_second_pause_and_they_add_up():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429, retry_after=10.0)
    started = await p.acquire()
    assert clock.now == 10.0  # the moment the pause ends
    p.answered(started, 429, retry_after=10.0)
    assert (p.pauses, p.paused_seconds) == (2, 20.0)


async def test_429s_that_lengthen_a_pause_count_as_one_pause_of_the_whole_length():
    clock = Clock()
    p = pacer(clock)
    out = [await p.acquire() for _ in range(3)]  # in flight together
    for started, retry_after in zip(out, [10.0, 4.0, 12.5], strict=True):
        p.answered(started, 429, retry_after=retry_after)
    assert (p.pauses, p.paused_seconds) == (1, 12.5)


# --- a stray 429 ----------------------------------------------------------------------------


async def test_after_a_stray_429_calls_go_out_together_again(caplog):
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429)
    with caplog.at_level(logging.DEBUG, logger="batch_revoke.pacing"):
        p.answered(await p.acquire(), 200)  # a call that left after it got through
    assert p.stray_429s == 1
    assert caplog.messages == [
        "a 429 that later calls got past: not the rate limit; nothing learned"
    ]
    assert p.describe() == "no pace needed yet; 1 stray 429s ignored"
    # Nothing is probing any more: two calls start without one waiting for the other's answer.
    before = clock.now
    never_waits = lambda: clock.now > before  # noqa: E731
    first = await p.acquire(never_waits)
    second = await p.acquire(never_waits)
    assert first == second == clock.wall()


async def test_while_a_probe_is_out_the_other_calls_wait_for_its_answer():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429)
    await p.acquire()  # the probe, not answered yet
    before = clock.now
    with pytest.raises(Stopped):
        await p.acquire(lambda: clock.now > before + 5)


async def test_two_calls_that_left_together_and_came_back_429_are_one_429_not_two_in_a_row():
    # The second left at the same moment as the first, not after its 429: it says nothing
    # more, and it takes two probes throttled after it to spend the window.
    clock = Clock()
    p = pacer(clock)
    first, second = await p.acquire(), await p.acquire()
    assert first == second
    p.answered(first, 429)
    p.answered(second, 429)
    p.answered(await p.acquire(), 429)  # the probe: the second in a row
    probe = await p.acquire()
    assert probe - first < 1.0  # a moment's hold again, not the wait for the window's reset
    assert p.pauses == 0


async def test_while_the_second_probe_is_out_the_other_calls_wait_for_its_answer():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429)
    p.answered(await p.acquire(), 429)  # the first probe, throttled too
    await p.acquire()  # the second probe, not answered yet
    before = clock.now
    with pytest.raises(Stopped):
        await p.acquire(lambda: clock.now > before + 5)


async def test_a_call_that_left_with_the_last_probe_does_not_end_the_hold_of_a_new_429():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429)
    probe = await p.acquire()
    p.answered(probe, 200)  # the probe got through: that 429 was stray
    went_along, throttled = await p.acquire(), await p.acquire()
    assert went_along == throttled == probe  # both left the moment the probe came back
    p.answered(throttled, 429)  # a new 429: a moment's hold, then one probe
    p.answered(went_along, 200)  # left with the throttled call, not after it: says nothing
    await p.acquire()  # the new probe, not answered yet
    before = clock.now
    with pytest.raises(Stopped):
        await p.acquire(lambda: clock.now > before + 5)


async def test_a_429_on_the_first_call_after_a_window_that_allowed_one_is_only_held_a_moment():
    # A window that allowed one call taught nothing; the next window's first 429 is one 429
    # like any other: a moment's hold and probes, not a wait for the window's reset.
    clock = Clock()  # at a minute's start
    p = pacer(clock)
    await spend(p, 1)  # minute 0
    p.answered(await p.acquire(), 200)  # minute 1, after the pause: the probe passes
    clock.now = 120.0  # minute 2
    starts = []
    for _ in range(CONFIRM + 1):
        started = await p.acquire()
        starts.append(started)
        p.answered(started, 429)
    assert starts[-1] - starts[0] < 1.0


async def test_a_stop_asked_during_a_pause_is_noticed_within_a_second():
    clock = Clock()
    p = pacer(clock)
    p.answered(await p.acquire(), 429, retry_after=30.0)
    with pytest.raises(Stopped):
        await p.acquire(lambda: clock.now >= 10.5)
    assert clock.now <= 11.5


async def test_with_the_wall_clock_set_back_the_pace_still_reads_as_the_rate_limit_given():
    # The wall clock is set back a minute mid-run: the server's minute then sees 17 calls of
    # a 10/min pace before its 429s. A pace slower than what was learned is --rate-limit's.
    clock = Clock()  # at a minute's start
    p = pacer(clock, RateLimit(10, 60.0))
    for _ in range(10):
        p.answered(await p.acquire(), 200)
        clock.now += 1.0
    clock.offset -= 60.0
    for answer in [200] * 7 + [429] * (CONFIRM + 1):
        started = await p.acquire()
        assert started // 60 == 1_000_020 // 60  # the same minute again
        p.answered(started, answer)
    assert (p.learned, p.pace) == (17, 10)
    assert p.describe() == "pace 10/min (--rate-limit)"


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


async def test_a_retry_after_is_said_with_the_seconds_it_asks(caplog):
    clock = Clock()
    p = pacer(clock)
    with caplog.at_level(logging.INFO, logger="batch_revoke.pacing"):
        p.answered(await p.acquire(), 429, retry_after=30.0)
    assert caplog.messages == [
        "429: every request pauses 30s (as Retry-After asks); no pace needed yet"
    ]


async def test_a_429_that_lengthens_the_pause_by_a_second_or_less_is_not_said_again(caplog):
    # Calls in flight together come back 429 one after the other: only a pause more than a
    # second past the one already said is said again.
    clock = Clock()
    p = pacer(clock)
    out = [await p.acquire() for _ in range(4)]
    with caplog.at_level(logging.INFO, logger="batch_revoke.pacing"):
        for started, retry_after in zip(out, [10.0, 9.5, 11.0, 12.6], strict=True):
            p.answered(started, 429, retry_after=retry_after)
    assert caplog.messages == [
        "429: every request pauses 10s (as Retry-After asks); no pace needed yet",
        "429: every request pauses 13s (as Retry-After asks); no pace needed yet",
    ]


async def test_each_throttled_probe_after_the_reset_doubles_the_pause_up_to_the_window(caplog):
    clock = Clock()
    p = pacer(clock)
    with caplog.at_level(logging.INFO, logger="batch_revoke.pacing"):
        for _ in range(CONFIRM + 1 + 6):
            p.answered(await p.acquire(), 429)
    assert caplog.messages == [
        "429: every request pauses until the window resets; no pace needed yet",
        *(
            f"429: every request pauses {s}s (the probe was throttled too); no pace needed yet"
            for s in (5, 10, 20, 40, 60, 60)
        ),
    ]


def test_a_call_counts_in_the_window_it_started_in_even_where_division_rounds_up():
    """With a window of 0.1 s, a call that started at 1.0 s (wall time) is in the window
    before the one 1.0 / 0.1 rounds to (0.1 is a little more than a tenth): the two calls
    after it are all the next window allowed, too few to learn a limit from."""
    p = Pacer(RateLimit(10, 0.1))
    for started in (1.0, 1.02, 1.04):
        p.answered(started, 200)
    for started in (1.05, 1.06, 1.07):
        p.answered(started, 429)
    assert p.learned is None
    assert p.pauses == 1
