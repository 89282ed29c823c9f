"""The live display at a terminal, and plain lines elsewhere."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from batch_revoke.display import LiveProgress
from batch_revoke.model import Counts, Status
from batch_revoke.report import Progress
from tests.conftest import SAMPLE, cli_env, sandbox


@pytest.fixture
def terminal(monkeypatch, capsys):
    """stderr as a 160-column terminal without colours: what the display draws, as text."""
    for name, value in {"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "160"}.items():
        monkeypatch.setenv(name, value)
    return lambda: capsys.readouterr().err


def test_the_display_shows_rows_rate_pace_counts_and_time_left(terminal):
    with LiveProgress() as live:
        live(
            Progress(Counts({Status.REVOKED: 38, Status.FAILED: 2}), 100, 1.5, "pace 95/min", 125.0)
        )
    shown = terminal()
    assert "40/100" in shown
    assert "1.5 calls/s" in shown
    assert "pace 95/min" in shown
    assert "revoked:38 failed:2" in shown
    assert "2m05s left" in shown


def test_the_display_counts_the_customers_looked_up_before_any_row_has_an_outcome(terminal):
    with LiveProgress() as live:
        live(Progress(Counts(lookups=42), 100, 3.0, "no limit seen", None))
    assert "42 looked up" in terminal()


def command(output) -> list[str]:
    run = (sys.executable, "-m", "batch_revoke", "run", str(SAMPLE))
    return [*run, "-o", str(output), "--concurrency", "1"]


def test_a_terminal_gets_the_live_display_and_a_pipe_plain_lines(tmp_path):
    with sandbox(latency_ms=(400.0, 400.0)) as (running, _state):
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            command(tmp_path / "a"),
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env={**cli_env(running), "COLUMNS": "160"},
        )
        os.close(follower)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the run ended
                break
            if not chunk:
                break
            screen += chunk
        process.wait(timeout=60)
        os.close(leader)
        piped = subprocess.run(
            [*command(tmp_path / "b"), "--progress-every", "0.5"],
            capture_output=True,
            text=True,
            env=cli_env(running),
            timeout=60,
            check=False,
        )
    shown = screen.decode(errors="replace")
    assert "calls/s" in shown
    assert "rows" in shown
    assert "progress:" not in shown  # the display replaces the plain lines
    assert "progress:" in piped.stderr
    assert "\x1b[" not in piped.stderr  # no terminal codes in a log
