"""What a scheduler sees when it stops a run at any moment: a documented exit status (never
130 or 143), no traceback, no "Aborted!", and on stderr only lines in the log format asked
for. Each signal is sent on an event (the handlers are in, the input is open, the result file
is being written), never after a fixed sleep."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    SAMPLE,
    catches,
    cli_env,
    default_sigint,
    sandbox,
    start_cli,
    wait_for,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc"),
]


def has_open(pid: int, path: Path) -> bool:
    """The process holds `path` open (Linux: /proc/PID/fd)."""
    try:
        links = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    found = False
    for link in links:
        try:
            found = found or Path(link.readlink()) == path
        except OSError:
            continue
    return found


def start(*args: str, running=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "batch_revoke", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(running),
        preexec_fn=default_sigint,
    )


def assert_clean(stderr: str, *, json_lines: bool) -> None:
    assert "Traceback" not in stderr
    assert "Aborted!" not in stderr
    if json_lines:
        for line in stderr.splitlines():
            json.loads(line)


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_interrupt_while_python_imports_the_package_exits_3(tmp_path, signum, log_format):
    out = tmp_path / "out.csv"
    process = start("--log-format", log_format, "run", str(SAMPLE), "--dry-run", "-o", str(out))
    # Our handlers are in (SIGTERM's is ours alone): the imports take about a second from here.
    wait_for(lambda: catches(process.pid, signal.SIGTERM))
    process.send_signal(signum)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 3, stderr
    assert_clean(stderr, json_lines=log_format == "json")
    assert f"interrupted ({signum.name}) before anything was sent" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_an_interrupt_while_the_input_is_read_sends_nothing_and_leaves_nothing(tmp_path, dry_run):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("badgeMetaId,customerId\n")
        handle.writelines(f"670371e39235f02fd5d71cbd,{n}\n" for n in range(1, 400_001))
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        args = [str(path), "-o", str(out), *(["--dry-run"] if dry_run else [])]
        process = start("--log-format", "json", "run", *args, running=running)
        wait_for(lambda: has_open(process.pid, path))
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
        assert running.requests == []
    assert process.returncode == 3, stderr
    assert_clean(stderr, json_lines=True)
    (line,) = [json.loads(line) for line in stderr.splitlines()]
    assert line["event"] == "error"
    assert line["exit_status"] == 3
    assert line["message"].startswith("interrupted (SIGTERM) before anything was sent")
    assert list(tmp_path.iterdir()) == [path]  # no result file, no journal


def long_to_write(folder: Path) -> Path:
    """One request and 49,999 duplicates of it: quick to send, long enough to write that an
    interrupt can be sent while the result file is written."""
    path = folder / "dups.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("badgeMetaId,customerId\n")
        handle.writelines("670371e39235f02fd5d71cbd,387403362\n" for _ in range(50_000))
    return path


def test_three_quick_interrupts_while_the_result_file_is_written(tmp_path):
    """The first is noted, the next stops the writing (the file says INCOMPLETE), the third
    is only noted: the run still ends with its summary, exit 3, and resumes."""
    path = long_to_write(tmp_path)
    out = tmp_path / "out.csv"
    partial = out.with_name(f".{out.name}.partial")
    with sandbox() as (running, _state):
        process = start_cli(running, str(path), "-o", str(out))
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # sending: the file is claimed, its final writing is next
            seen.append(line)
            if "sending" in line:
                break
        wait_for(partial.exists)
        process.send_signal(signal.SIGTERM)
        for line in process.stderr:
            seen.append(line)
            if "interrupt again" in line:
                break
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: not partial.exists())  # the writing stopped; the file is being marked
        process.send_signal(signal.SIGTERM)
        stderr = "".join(seen) + process.communicate(timeout=60)[1]
        assert process.returncode == 3, stderr
        assert_clean(stderr, json_lines=False)
        assert out.read_text(encoding="utf-8").startswith("INCOMPLETE:")
        assert "to finish it: " in stderr
        resumed = subprocess.run(
            [sys.executable, "-m", "batch_revoke", "run", str(path), "-o", str(out), "--resume"],
            capture_output=True,
            text=True,
            env=cli_env(running),
            timeout=120,
            check=False,
        )
    assert resumed.returncode == 0, resumed.stderr
    assert not out.read_text(encoding="utf-8").startswith("INCOMPLETE:")


def test_every_stderr_line_of_a_sandbox_run_is_json(tmp_path):
    done = subprocess.run(
        [
            *(sys.executable, "-m", "batch_revoke", "--log-format", "json", "run", str(SAMPLE)),
            *("--sandbox", "-o", str(tmp_path / "out.csv")),
        ],
        capture_output=True,
        text=True,
        env=cli_env(None),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines[0]["message"].startswith("sandbox running on http://127.0.0.1:")
    assert lines[-1]["event"] == "summary"
    assert len({line["run_id"] for line in lines}) == 1


def test_interrupting_the_resume_of_a_finished_run_leaves_it_finished(tmp_path):
    """Nothing is left to send: two interrupts while its file is written again leave the file
    as it was (complete) and the run's own status, not "stopped early"."""
    path = long_to_write(tmp_path)
    out = tmp_path / "out.csv"
    partial = out.with_name(f".{out.name}.partial")
    with sandbox() as (running, _state):
        first = subprocess.run(
            [sys.executable, "-m", "batch_revoke", "run", str(path), "-o", str(out)],
            capture_output=True,
            text=True,
            env=cli_env(running),
            timeout=120,
            check=False,
        )
        assert first.returncode == 0, first.stderr
        written = out.read_bytes()
        process = start_cli(running, str(path), "-o", str(out), "--resume")
        assert process.stderr is not None
        wait_for(partial.exists)  # writing the file again
        process.send_signal(signal.SIGINT)
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "interrupt again" in line:
                break
        process.send_signal(signal.SIGINT)
        stderr = "".join(seen) + process.communicate(timeout=60)[1]
    assert process.returncode == 0, stderr
    assert_clean(stderr, json_lines=False)
    assert "STOPPED" not in stderr
    assert out.read_bytes() == written


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_once_the_summary_is_out_changes_nothing(tmp_path, signum):
    """The outcome is told: an interrupt in the process's last moments (Python restores its
    default handlers as it shuts down) must not turn exit 1 into 130 or 143."""
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        process = start_cli(running, str(SAMPLE), "-o", str(out))
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("journal:"):  # the summary's last line
                break
        process.send_signal(signum)
        stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 1, stderr
