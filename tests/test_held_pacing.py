"""The pace, where a one-line slip would cost calls or 429s: the margin at --rate-limit, when
the pace probes upward, a Retry-After inside a window-reset pause, and how often a probe that
found no room comes back; and --max-unanswered. Time is a fake clock that only the pacer's
sleeps move, so nothing here waits or times (the end-to-end test counts calls)."""

from __future__ import annotations

import asyncio

import pytest

from batch_revoke.config import RateLimit
from batch_revoke.pacing import CONFIRM, Pacer
from tests.conftest import SAMPLE, Clock, Server, pacer, run_cli, sandbox


async def spend_window(p: Pacer, allowed: int) -> None:
    """`allowed` calls get through, then 429s in a row: the window is spent."""
    for _ in range(allowed):
        p.answered(await p.acquire(), 200)
    for _ in range(CONFIRM + 1):
        p.answered(await p.acquire(), 429)


async def test_a_learned_limit_equal_to_the_rate_limit_keeps_the_margin_not_more():
    # A bad-luck reading (4) recovers to --rate-limit 10 and is learned there: the pace is
    # then the given limit's, kept over the window plus the margin (60.85 s on a minute), not
    # also stretched like a limit learned below it.
    clock = Clock()
    p = pacer(clock, RateLimit(10, 60.0))
    await spend_window(p, 4)
    assert p.learned == 4
    starts: list[float] = []
    while p.learned != 10 or len(starts) < 40:
        assert len(starts) < 2000, "the pace never came back to --rate-limit"
        if p.learned != 10:
            starts.clear()
        p.answered(await p.acquire(), 200)
        starts.append(clock.now)
    assert p.pace == 10
    gaps = [starts[i + 10] - starts[i] for i in range(len(starts) - 10)]
    assert min(gaps) == pytest.approx(p.period + p.margin)


async def test_the_pace_does_not_probe_upward_right_after_a_throttled_window():
    clock = Clock()  # 20 s into the minute
    p = pacer(clock)
    await spend_window(p, 20)
    assert (p.learned, p.pace) == (20, 20)
    probe = await p.acquire()  # the next window
    p.answered(probe, 200)
    assert p.pace == 20  # the window that allowed 20 was cut short: it says nothing of more room
    for _ in range(10):
        p.answered(await p.acquire(), 200)
    assert p.pace == 20


async def test_a_short_retry_after_never_cuts_a_window_reset_pause_short():
    clock = Clock()  # 20 s into the minute: the window resets 40 s from now
    p = pacer(clock)
    in_flight = await p.acquire()
    await spend_window(p, 1)  # too thin a window to learn from: no pace holds the calls back
    assert p.pace is None
    # A call that left before the window was spent comes back 429 with Retry-After: 1.
    p.answered(in_flight, 429, retry_after=1.0)
    resumed = await p.acquire()
    assert resumed >= 1_000_080.0  # the next minute: the pause until the reset stands


async def test_one_failed_upward_probe_doubles_the_gap_to_the_next_it_does_not_jump_to_the_cap():
    # The server allows 20 a minute. Once learned, a clean window is followed by an upward
    # probe; it finds no room (the window is spent at 20), so the next probe waits for 2 clean
    # windows instead of 1: not for 8, the cap.
    clock = Clock()
    server = Server(clock, 20)
    p = pacer(clock)
    probes: list[int] = []  # the server's window each upward probe began in
    while len(probes) < 2:
        assert clock.now < 40 * 60, f"probes in windows {probes}"
        raised = p.learned is not None and (p.pace or 0) > p.learned
        started = await p.acquire()
        await asyncio.sleep(0)
        p.answered(started, server.call())
        window = int(clock.wall() // 60)
        if not raised and p.learned is not None and (p.pace or 0) > p.learned:
            probes.append(window)
    # The first probe's window is spent; then 2 clean windows at the learned pace; then the
    # next probe (a clean window is seen when the window after it answers).
    assert probes[1] - probes[0] <= 4, probes


def test_max_unanswered_stops_at_exactly_that_many_calls(tmp_path):
    out = tmp_path / "out.csv"
    with sandbox("drop") as (running, _state):
        done = run_cli(
            running,
            str(SAMPLE),
            "-o",
            str(out),
            "--max-unanswered",
            "3",
            "--max-attempts",
            "10",
            "--concurrency",
            "1",
        )
        calls = len(running.requests)
    assert done.returncode == 3, done.stderr
    assert calls == 3
    assert "3 requests in a row got no answer at all" in done.stderr
