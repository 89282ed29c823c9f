"""Durability, proven by stopping real processes against the sandbox as a real server:
SIGKILL, SIGTERM, double interrupts, parallel runs, a full disk; then --resume."""

from __future__ import annotations

import json
import random
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from batch_revoke.sandbox import (
    FaultPlan,
    FaultSpec,
    RateLimitSpec,
    SandboxConfig,
    SandboxState,
    running_sandbox,
)
from batch_revoke.sandbox.server import LoggedRequest
from tests.conftest import (
    SAMPLE,
    assert_revoked_really_are,
    cli_env,
    run_cli,
    sandbox,
    start_cli,
    wait_for,
)
from tests.conftest import read_rows as results

pytestmark = pytest.mark.e2e
COMPARED = ("status", "error_code", "issued_ids")


def generate(folder: Path, rows: int = 240, seed: int = 5) -> tuple[Path, dict]:
    """An input and the sandbox state it runs against: mostly revokeIssuals rows, some
    customers rows (two enrolments each), some earns, and rows with nothing to revoke."""
    rng = random.Random(seed)
    badges = [f"{0x6800000000 + n:024x}" for n in range(3)]
    state: dict = {"badges": badges, "customers": [], "enrolments": [], "earns": []}
    lines = ["badgeMetaId,customerId,issueId,earnedBadgeId,ticket"]
    for n in range(rows):
        badge, customer = rng.choice(badges), str(200_000_000 + n)
        state["customers"].append({"customerId": customer})
        kind = rng.random()
        if kind < 0.6:
            issue = f"{0x5E00000000 + n:024x}"
            state["enrolments"].append(
                {"issueId": issue, "badgeMetaId": badge, "customerId": customer}
            )
            lines.append(f"{badge},{customer},{issue},,T{n}")
        elif kind < 0.8:
            for k in range(2):
                issue = f"{0x5F00000000 + 2 * n + k:024x}"
                state["enrolments"].append(
                    {"issueId": issue, "badgeMetaId": badge, "customerId": customer}
                )
            lines.append(f"{badge},{customer},,,T{n}")
        elif kind < 0.93:
            earned = f"{0x5D00000000 + n:024x}"
            state["earns"].append(
                {"earnedBadgeId": earned, "badgeMetaId": badge, "customerId": customer}
            )
            lines.append(f"{badge},{customer},,{earned},T{n}")
        else:  # never enrolled: the API answers 404
            lines.append(f"{badge},{customer},,,T{n}")
    path = folder / "input.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, state


def fresh(state: dict, *faults: str, **settings) -> SandboxConfig:
    return SandboxConfig(
        state=SandboxState.from_dict(json.loads(json.dumps(state))),
        faults=FaultPlan((FaultSpec.parse(f) for f in faults), seed=3),
        **settings,
    )


FAULTS = ("500:4%", "apply-drop:4%", "503:3%")


def targets(entry: LoggedRequest) -> set[str]:
    """What one revoke request asked to revoke."""
    body = entry.body if isinstance(entry.body, dict) else {}
    if "earnedBadgeId" in body:
        return {f"earn:{body['earnedBadgeId']}"}
    if body.get("revokeIssuals"):
        return {f"issue:{item['issueId']}" for item in body["revokeIssuals"]}
    return {f"customer:{body.get('badgeMetaId')}:{c}" for c in body.get("customers") or []}


def row_targets(row: dict[str, str]) -> set[str]:
    if row["earnedBadgeId"]:
        return {f"earn:{row['earnedBadgeId']}"}
    if row["issueId"]:
        return {f"issue:{row['issueId']}"}
    return {f"customer:{row['badgeMetaId']}:{row['customerId']}"}


def in_flight_rows(journal: Path) -> set[int]:
    db = sqlite3.connect(journal)
    try:
        listed = db.execute("SELECT rows FROM requests WHERE answered = 0").fetchall()
    finally:
        db.close()
    return {row for (text,) in listed for row in json.loads(text)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict, list[dict[str, str]], int]:
    folder = tmp_path_factory.mktemp("baseline")
    path, state = generate(folder)
    out = folder / "out.csv"
    with running_sandbox(fresh(state, *FAULTS, latency_ms=(5.0, 30.0))) as running:
        done = run_cli(running, str(path), "-o", str(out))
        requests = len(running.requests)
    assert done.returncode == 1, done.stderr
    return path, state, results(out), requests


@pytest.mark.parametrize("moment", [0.0, 0.5, 0.9], ids=["first-request", "half-way", "late"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, uninterrupted, moment):
    path, state, expected, requests = uninterrupted
    after_requests = max(1, int(moment * requests))
    out = tmp_path / "out.csv"
    config = fresh(state, *FAULTS, latency_ms=(5.0, 30.0))
    before = SandboxState.from_dict(json.loads(json.dumps(state)))
    with running_sandbox(config) as running:
        process = start_cli(running, str(path), "-o", str(out))
        wait_for(lambda: len(running.requests) >= after_requests)
        process.kill()
        process.communicate(timeout=30)
        killed_at = len(running.requests)
        assert process.returncode == -signal.SIGKILL
        # The file claims nothing; the journal knows what was in flight.
        assert out.read_text(encoding="utf-8").startswith("INCOMPLETE:")
        in_flight = in_flight_rows(Path(f"{out}.journal"))
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
        assert resumed.returncode == 1, resumed.stderr
        log = list(running.requests)
    rows = results(out)
    assert [r["row"] for r in rows] == [str(n) for n in range(1, len(expected) + 1)]
    assert [{k: r[k] for k in COMPARED} for r in rows] == [
        {k: r[k] for k in COMPARED} for r in expected
    ]
    assert_revoked_really_are(rows, before, config.state)
    # Nothing carried out before the kill is sent for revocation again, unless it was in flight.
    by_row = {int(r["row"]): r for r in rows}
    exempt = set().union(*(row_targets(by_row[n]) for n in in_flight)) if in_flight else set()
    applied_before = set().union(*(targets(e) for e in log[:killed_at] if e.applied))
    sent_after = set().union(*(targets(e) for e in log[killed_at:]))
    assert not (applied_before & sent_after) - exempt


def test_a_row_killed_on_its_second_attempt_shows_two_sends_once_read_back(tmp_path, write_csv):
    """The first attempt answers 500, the second is applied and its answer never comes: the
    kill leaves it in flight, the resume reads it back, and attempts says it was sent twice."""
    path = write_csv(
        "badgeMetaId,customerId,earnedBadgeId\n"
        "698dae82d30c4f6b3da9dc06,566135941,698daf848644c157e72d83f3\n"
    )
    out = tmp_path / "out.csv"
    with sandbox("500:#1", "slow:#2") as (running, state):
        process = start_cli(running, str(path), "-o", str(out))
        wait_for(lambda: len(running.requests) >= 2)  # the second attempt, applied
        process.kill()
        process.communicate(timeout=30)
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
        sent = len(running.requests)
    assert resumed.returncode == 0, resumed.stderr
    (row,) = results(out)
    assert (row["status"], row["attempts"]) == ("revoked", "2")
    assert "confirmed by read-back" in row["error_message"]
    assert sent == 2  # read back, not sent again
    assert not state.earns["698daf848644c157e72d83f3"].isActive


def test_sigterm_stops_cleanly_and_resume_finishes(tmp_path, uninterrupted):
    path, state, expected, _ = uninterrupted
    out = tmp_path / "out.csv"
    with running_sandbox(fresh(state, latency_ms=(150.0, 150.0))) as running:
        process = start_cli(running, str(path), "-o", str(out))
        wait_for(lambda: len(running.requests) >= 8)
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 3, stderr
        rows = results(out)  # complete, not INCOMPLETE
        assert [r["row"] for r in rows] == [str(n) for n in range(1, len(expected) + 1)]
        assert "not_attempted" in {r["status"] for r in rows}
        assert "interrupted (SIGTERM)" in stderr
        hint = stderr.strip().splitlines()[-1]
        assert hint.startswith("to finish it: batch-revoke run")
        assert hint.endswith("--resume")
        resumed = run_cli(running, *hint.removeprefix("to finish it: batch-revoke run ").split())
    assert resumed.returncode == 1, resumed.stderr
    assert [r["status"] for r in results(out)] == [r["status"] for r in expected]


def test_double_interrupt_never_leaves_a_short_file_that_looks_complete(tmp_path, uninterrupted):
    path, state, expected, _ = uninterrupted
    out = tmp_path / "out.csv"
    with running_sandbox(fresh(state, latency_ms=(400.0, 400.0))) as running:
        process = start_cli(running, str(path), "-o", str(out), "--concurrency", "8")
        assert process.stderr is not None
        wait_for(lambda: len(running.requests) >= 8)
        process.send_signal(signal.SIGINT)
        for line in process.stderr:  # the first interrupt is acknowledged: send the second
            if "interrupt again" in line:
                break
        process.send_signal(signal.SIGINT)
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 3, stderr
        text = out.read_text(encoding="utf-8")
        if not text.startswith("INCOMPLETE:"):
            rows = results(out)
            assert len(rows) == len(expected)
            # cut off in flight: unknown, and left for the resume to read back
            assert "unconfirmed" in {r["status"] for r in rows}
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
    assert resumed.returncode == 1, resumed.stderr
    assert [r["status"] for r in results(out)] == [r["status"] for r in expected]


def test_resuming_a_finished_run_sends_nothing_and_rewrites_the_same_file(tmp_path):
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        first = run_cli(running, str(SAMPLE), "-o", str(out))
        written = out.read_text(encoding="utf-8")
        sent = len(running.requests)
        again = run_cli(running, str(SAMPLE), "-o", str(out), "--resume")
        assert len(running.requests) == sent
    assert first.returncode == again.returncode == 1
    assert out.read_text(encoding="utf-8") == written


def test_a_journal_of_another_input_or_other_options_is_refused(tmp_path, write_csv):
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        run_cli(running, str(SAMPLE), "-o", str(out))
        other = write_csv(SAMPLE.read_text(encoding="utf-8") + "\n" + "B,1,,,,,x\n")
        changed = run_cli(running, str(other), "-o", str(out), "--resume")
        option = run_cli(running, str(SAMPLE), "-o", str(out), "--resume", "--batch-size", "5")
        exists = run_cli(running, str(SAMPLE), "-o", str(out))
    assert changed.returncode == option.returncode == exists.returncode == 2
    assert "another input" in changed.stderr
    assert "batch_size '5' (was '20')" in option.stderr
    assert "--resume" in exists.stderr
    assert "--overwrite" in exists.stderr
    for done in (changed, option, exists):
        assert len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr


def test_parallel_runs_of_one_input_write_distinct_files(tmp_path):
    with sandbox() as (running, _state):
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "batch_revoke", "run", str(SAMPLE), "--no-verify"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=cli_env(running),
            )
            for _ in range(12)
        ]
        codes = [process.wait(timeout=120) for process in processes]
    assert set(codes) == {1}
    written = sorted((tmp_path / "output").glob("*.csv"))
    assert len(written) == 12
    for path in written:
        assert len(results(path)) == 17


def _small_files(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_gives_one_line_and_a_journal_that_resumes(tmp_path, uninterrupted):
    """Files may not grow past 150 kB (RLIMIT_FSIZE): the journal or the result file hits the
    limit mid-run, as on a full disk."""
    path, state, expected, _ = uninterrupted
    out = tmp_path / "out.csv"
    with running_sandbox(fresh(state)) as running:
        process = start_cli(running, str(path), "-o", str(out), preexec_fn=_small_files(150_000))
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 3, stderr
        assert "cannot write" in stderr
        assert "Traceback" not in stderr
        text = out.read_text(encoding="utf-8")
        assert text.startswith("INCOMPLETE:") or len(results(out)) == len(expected)
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
    assert resumed.returncode == 1, resumed.stderr
    assert [r["status"] for r in results(out)] == [r["status"] for r in expected]


def test_a_dead_host_stops_the_run_quickly(tmp_path, write_csv):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_csv("badgeMetaId,customerId\n" + "".join(f"B{n},{n}\n" for n in range(200)))
    out = tmp_path / "out.csv"
    done = run_cli(
        None,
        str(path),
        "-o",
        str(out),
        env={
            "CAP_BASE_URL": f"http://127.0.0.1:{port}",
            "CAP_USERNAME": "u",
            "CAP_PASSWORD": "p",
        },
    )
    assert done.returncode == 3, done.stderr
    assert "20 requests in a row got no answer" in done.stderr
    statuses = {r["status"] for r in results(out)}
    assert statuses <= {"failed", "not_attempted"}
    assert "not_attempted" in statuses


def test_max_errors_stops_the_run(tmp_path, write_csv):
    lines = ["badgeMetaId,customerId,earnedBadgeId"] + [
        f"698dae82d30c4f6b3da9dc06,566135941,NOPE{n}" for n in range(30)
    ]
    path = write_csv("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(
            running, str(path), "-o", str(out), "--max-errors", "5", "--concurrency", "1"
        )
    assert done.returncode == 3, done.stderr
    assert "--max-errors 5 reached" in done.stderr
    statuses = [r["status"] for r in results(out)]
    assert statuses.count("failed") == 5
    assert statuses.count("not_attempted") == 25


def test_overlapping_rows_are_both_true(tmp_path, write_csv):
    """A customers row and revokeIssuals rows for the same badge and customer."""
    path = write_csv(
        "badgeMetaId,customerId,issueId\n"
        "654bb48766a87827bb61e631,62090013,654cc02b6bccde1274b6d3a7\n"
        "654bb48766a87827bb61e631,62090013,\n"
        "654bb48766a87827bb61e631,62090013,654cc03e6bccde1274b6d3a9\n"
        "654bb48766a87827bb61e631,62090013,6703724a9235f02fd5d71cc9\n"
    )
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(out))
    rows = results(out)
    assert [(r["status"], r["error_code"]) for r in rows] == [
        ("revoked", ""),
        ("revoked", ""),
        ("revoked", ""),
        ("failed", "404"),  # not this customer's, and not in that badge: the API's own answer
    ], done.stderr
    # Row 3 comes after the customers row, so it waited for it; row 1 came before and was
    # sent: it revoked its enrolment itself, or the customers row did and it says so.
    assert "through row 2" in rows[2]["error_message"]
    revoked_by_row_2 = set(rows[1]["issued_ids"].split(";"))
    assert revoked_by_row_2 | {rows[0]["issued_ids"]} == {
        "654cc02b6bccde1274b6d3a7",
        "654cc03e6bccde1274b6d3a9",
    }
    if "654cc02b6bccde1274b6d3a7" in revoked_by_row_2:
        assert "through row 2" in rows[0]["error_message"]


def test_blank_spreadsheet_rows_are_skipped(tmp_path, write_csv):
    path = write_csv(
        "badgeMetaId,customerId,issueId,earnedBadgeId,identifierType\n"
        ",,,,\n"
        "670371e39235f02fd5d71cbd,387403362,6703724a9235f02fd5d71cc1,,\n"
        "  , ,\t,,\n"
        "\n"
    )
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert [(r["row"], r["status"]) for r in results(out)] == [("1", "revoked")]


def test_verify_settles_an_old_result_file(tmp_path):
    old = tmp_path / "old.csv"
    new = tmp_path / "new.csv"
    # Request 1 is the first revokeEarn row (by customer id); 6 the first revokeIssue batch,
    # after request 1's retry and the other three revokeEarn rows.
    with sandbox("apply-drop:#1,#6") as (running, _state):
        run_cli(running, str(SAMPLE), "-o", str(old), "--concurrency", "1", "--no-verify")
        assert {r["status"] for r in results(old)} >= {"unconfirmed"}
        done = run_cli(running, str(old), "-o", str(new), command="verify")
    assert done.returncode == 1, done.stderr
    before, after = results(old), results(new)
    assert list(after[0]) == list(before[0])  # the same columns
    for was, now in zip(before, after, strict=True):
        if was["status"] != "unconfirmed":
            assert now == was
        else:
            assert now["status"] == "revoked", now
            assert "confirmed by read-back" in now["error_message"]


def test_the_output_folder_deleted_mid_run_is_restored_and_resumes(tmp_path, uninterrupted):
    path, state, expected, _ = uninterrupted
    folder = tmp_path / "gone"
    out = folder / "out.csv"
    with running_sandbox(fresh(state, latency_ms=(100.0, 100.0))) as running:
        process = start_cli(running, str(path), "-o", str(out))
        wait_for(lambda: len(running.requests) >= 8)
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 3, stderr
        assert "the journal disappeared" in stderr
        assert "restored" in stderr
        assert len(results(out)) == len(expected)  # the folder is back, with the file
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
    assert resumed.returncode == 1, resumed.stderr
    assert [r["status"] for r in results(out)] == [r["status"] for r in expected]


def test_a_run_that_cannot_start_its_journal_sends_nothing_and_leaves_nothing(tmp_path):
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        process = start_cli(running, str(SAMPLE), "-o", str(out), preexec_fn=_small_files(20_000))
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 2, stderr
        assert running.requests == []
    assert "nothing was sent" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_second_resume_of_a_running_run_is_refused(tmp_path, uninterrupted):
    path, state, _expected, _ = uninterrupted
    out = tmp_path / "out.csv"
    # Slow answers keep the first run going for many seconds, far longer than the second
    # takes to start on a busy machine: at 100 ms it could finish first (a second's work),
    # and the resume then succeeded.
    with running_sandbox(fresh(state, latency_ms=(1000.0, 1000.0))) as running:
        process = start_cli(running, str(path), "-o", str(out))
        wait_for(lambda: len(running.requests) >= 4)
        second = run_cli(running, str(path), "-o", str(out), "--resume")
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert second.returncode == 2, second.stderr
    assert "another batch-revoke run is using" in second.stderr


def mobile_earns(folder: Path, rows: int) -> tuple[Path, dict]:
    """`rows` revokeEarn rows naming their customer by mobile (the read-back takes the id a
    lookup gives), and the state that holds their earns."""
    state: dict = {"badges": ["B"], "customers": [], "enrolments": [], "earns": []}
    lines = ["badgeMetaId,customerId,earnedBadgeId,identifierType"]
    for n in range(rows):
        customer = str(700_000 + n)
        state["customers"].append({"customerId": customer, "mobile": f"919900{customer}"})
        state["earns"].append(
            {"earnedBadgeId": f"E{n}", "badgeMetaId": "B", "customerId": customer}
        )
        lines.append(f"B,919900{customer},E{n},mobile")
    path = folder / "mobiles.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, state


def paused_on_429s(journal: Path) -> bool:
    if not journal.exists():
        return False
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        (answered,) = db.execute("SELECT COUNT(*) FROM outcomes").fetchone()
        waiting = dict(db.execute("SELECT maybe_applied, COUNT(*) FROM pending GROUP BY 1"))
    except sqlite3.Error:
        return False  # not created yet
    finally:
        db.close()
    return answered >= 1 and waiting.get(0, 0) >= 1 and not waiting.get(1)


def active(config: SandboxConfig) -> set[str]:
    return {e.earnedBadgeId for e in config.state.earns.values() if e.isActive}


def test_rows_killed_in_a_429_pause_are_sent_again_on_resume_whatever_names_them(tmp_path):
    """Throttled rows were never applied: the journal says so, and a resume sends them again
    without reading them back, whatever names their customer (here a mobile)."""
    path, state = mobile_earns(tmp_path, 4)
    out = tmp_path / "out.csv"
    config = SandboxConfig(
        state=SandboxState.from_dict(state), rate_limit=RateLimitSpec.parse("1/3s")
    )
    with running_sandbox(config) as running:
        process = start_cli(running, str(path), "-o", str(out), "--rate-window", "3")
        # The window is spent: the allowed call's answer is in, every other request holds
        # only 429s and waits for the reset.
        wait_for(lambda: paused_on_429s(Path(f"{out}.journal")))
        process.kill()
        process.communicate(timeout=30)
        assert sum(entry.throttled for entry in running.requests) >= 1
        for _ in range(2):  # a second resume changes nothing
            resumed = run_cli(running, str(path), "-o", str(out), "--resume", "--rate-window", "3")
            assert resumed.returncode == 0, resumed.stderr
            # Known not applied: sent as they are, not read back.
            assert "whose answer was lost" not in resumed.stderr
    rows = results(out)
    assert {r["status"] for r in rows} == {"revoked"}
    assert active(config) == set()


def test_a_lost_answer_for_an_earn_named_by_mobile_is_read_back_by_its_customer(tmp_path):
    """Answers lost (one request applied, one not) and the run killed: the resume reads them
    back by the mobile, as revokeEarn took it; the one that went is revoked "confirmed by
    read-back", the other is sent again, and nothing is left to check by hand."""
    path, state = mobile_earns(tmp_path, 3)
    out = tmp_path / "out.csv"
    config = SandboxConfig(
        state=SandboxState.from_dict(state),
        faults=FaultPlan([FaultSpec.parse("apply-drop:#1"), FaultSpec.parse("drop:#2")], seed=1),
    )
    with running_sandbox(config) as running:
        # Two at once: requests #1 and #2 are two rows, not a row and its retry.
        process = start_cli(running, str(path), "-o", str(out), "--concurrency", "2")
        wait_for(lambda: len(running.requests) >= 2)
        process.kill()
        process.communicate(timeout=30)
        first = [entry for entry in running.requests if entry.number in (1, 2)]
        dropped = {entry.body["earnedBadgeId"]: entry.fault for entry in first}
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
        assert resumed.returncode == 0, resumed.stderr
        sent = len(running.requests)
        again = run_cli(running, str(path), "-o", str(out), "--resume")
        assert again.returncode == 0, again.stderr
        assert len(running.requests) == sent  # settled: nothing more sent
    by_earn = {r["earnedBadgeId"]: r for r in results(out)}
    applied = next(earn for earn, fault in dropped.items() if fault.value == "apply-drop")
    not_applied = next(earn for earn, fault in dropped.items() if fault.value == "drop")
    assert by_earn[not_applied]["status"] == "revoked"
    assert by_earn[applied]["status"] == "revoked"
    assert "confirmed by read-back" in by_earn[applied]["error_message"]
    # A revokeEarn row is sent by its identifier: no id shows, as in a clean run.
    assert by_earn[applied]["resolved_customer_id"] == ""
    assert active(config) == set()


def test_a_resumed_run_counts_the_whole_run(tmp_path, uninterrupted):
    """Rows, requests and calls alike: the summary of a resume counts every session, and
    agrees with what the server received."""
    path, state, expected, _ = uninterrupted
    out, summary = tmp_path / "out.csv", tmp_path / "summary.json"
    with running_sandbox(fresh(state, latency_ms=(150.0, 150.0))) as running:
        process = start_cli(running, str(path), "-o", str(out))
        wait_for(lambda: len(running.requests) >= 8)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert process.returncode == 3
        first = len(running.requests)
        resumed = run_cli(
            running, str(path), "-o", str(out), "--resume", "--summary-json", str(summary)
        )
        assert resumed.returncode == 1, resumed.stderr
        received = len(running.requests)
    counted = json.loads(summary.read_text(encoding="utf-8"))
    assert received > first  # both sessions sent requests
    assert counted["rows"]["total"] == len(expected)
    assert sum(counted["requests"].values()) == received  # one call a request: no faults
    assert counted["http_calls"] - counted["read_backs"] == received
