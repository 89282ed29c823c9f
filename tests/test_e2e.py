"""End to end: the CLI as a subprocess against the sandbox as a real server on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from batch_revoke.client import (
    REVOKE_EARN_PATH,
    REVOKE_ISSUE_PATH,
    TOKEN_PATH,
    basic_header,
)
from batch_revoke.credentials import BasicCredentials
from batch_revoke.job import RunConfig, run_job
from batch_revoke.model import ExitStatus
from batch_revoke.sandbox import (
    RateLimitSpec,
    SandboxConfig,
    SandboxState,
    running_sandbox,
)
from tests.conftest import (
    ROOT,
    SAMPLE,
    SAMPLE_STATE,
    active_earns,
    active_enrolments,
    assert_revoked_really_are,
    cli_env,
    run_cli,
    sandbox,
    start_cli,
    wait_for,
)
from tests.conftest import read_rows as results

pytestmark = pytest.mark.e2e
# Blank Basic credentials count as unset, so these switch a run to OAuth.
OAUTH = {
    "CAP_USERNAME": "",
    "CAP_PASSWORD": "",
    "CAP_OAUTH_KEY": "demo-key",
    "CAP_OAUTH_SECRET": "demo-secret",
}


def test_the_sample_shows_every_outcome_and_the_server_agrees(tmp_path):
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    with sandbox() as (running, state):
        done = run_cli(running, str(SAMPLE), "-o", str(out))
    assert done.returncode == 1, done.stderr
    rows = results(out)
    by_ticket = {r["ticket"]: (r["status"], r["error_code"]) for r in rows}
    assert by_ticket == {
        "TCK-1001": ("revoked", ""),
        "TCK-1002": ("revoked", ""),
        "TCK-1003": ("revoked", ""),
        "TCK-1004": ("revoked", ""),
        "TCK-1005": ("failed", "404"),
        "TCK-1006": ("failed", "issue_not_of_customer"),
        "TCK-1007": ("revoked", ""),
        "TCK-1008": ("revoked", ""),
        "TCK-1009": ("revoked", ""),
        "TCK-1010": ("failed", "814"),
        "TCK-1011": ("invalid", "missing_value"),
        "TCK-1012": ("invalid", "conflicting_ids"),
        "TCK-1013": ("invalid", "bad_identifier_type"),
        "TCK-1014": ("duplicate", "duplicate_row"),
        "TCK-1015": ("invalid", "bad_customer_id"),
        "TCK-1016": ("revoked", ""),
        "TCK-1017": ("invalid", "malformed_record"),
    }
    assert [r["row"] for r in rows] == [str(n) for n in range(1, 18)]
    welcome = next(r for r in rows if r["ticket"] == "TCK-1003")
    assert sorted(welcome["issued_ids"].split(";")) == [
        "654cc02b6bccde1274b6d3a7",
        "654cc03e6bccde1274b6d3a9",
    ]
    assert next(r for r in rows if r["ticket"] == "TCK-1016")["customerId"] == "000777"
    assert_revoked_really_are(rows, before, state)
    # Ids went out as written: 000777 stays 000777 in the customers body.
    bodies = [entry.body for entry in running.requests]
    assert any("000777" in body.get("customers", []) for body in bodies)
    assert any(body.get("customerId") == "919900000013" for body in bodies)
    # Nothing the file did not ask for was touched.
    assert state.enrolments["6703724a9235f02fd5d71cc9"].issuedStatus == "ACTIVE"
    assert state.enrolments["654cc0496bccde1274b6d3b8"].issuedStatus == "ACTIVE"
    assert "revoked" in done.stderr
    assert str(out) in done.stderr


def test_a_second_run_gets_the_not_present_answers(tmp_path):
    with sandbox() as (running, _state):
        run_cli(running, str(SAMPLE), "-o", str(tmp_path / "first.csv"))
        run_cli(running, str(SAMPLE), "-o", str(tmp_path / "second.csv"))
    second = {r["ticket"]: (r["status"], r["error_code"]) for r in results(tmp_path / "second.csv")}
    assert second["TCK-1001"] == ("failed", "404")
    assert second["TCK-1003"] == ("failed", "404")
    assert second["TCK-1007"] == ("failed", "814")


def test_oauth_credentials_work_end_to_end(tmp_path):
    with sandbox() as (running, _state):
        done = run_cli(running, str(SAMPLE), "-o", str(tmp_path / "out.csv"), env=OAUTH)
    assert done.returncode == 1, done.stderr
    assert sum(r["status"] == "revoked" for r in results(tmp_path / "out.csv")) == 8


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"CAP_PASSWORD": "wrong"}, id="basic"),
        pytest.param({**OAUTH, "CAP_OAUTH_SECRET": "wrong"}, id="oauth-token-refused"),
    ],
)
def test_wrong_credentials_abort_with_exit_3_and_send_nothing_more(tmp_path, env):
    out = tmp_path / "out.csv"
    with sandbox() as (running, state):
        before = active_enrolments(state) | active_earns(state)
        done = run_cli(running, str(SAMPLE), "-o", str(out), "--concurrency", "1", env=env)
        after = active_enrolments(state) | active_earns(state)
        if "CAP_OAUTH_KEY" in env:
            assert running.requests == []  # the key was refused: no revoke call left
            assert "requests:" not in done.stderr  # the summary lists no request sent
    assert done.returncode == 3, done.stderr
    statuses = [r["status"] for r in results(out)]
    # The refused request did nothing: every sendable row is not_attempted, none failed.
    assert statuses.count("not_attempted") == 11
    assert "failed" not in statuses
    assert len(statuses) == 17
    assert before == after
    assert "STOPPED" in done.stderr
    hint = done.stderr.strip().splitlines()[-1]
    assert hint.startswith("to finish it: batch-revoke run ")
    assert f"-o {out}" in hint
    assert hint.endswith("--resume")


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        pytest.param("429:#1,#2", ["--max-attempts", "3"], id="429-retry-after"),
        pytest.param("500:#1", [], id="500"),
        pytest.param("502:#1", [], id="502"),
        pytest.param("503:#2", [], id="503"),
        pytest.param("504:#3", [], id="504"),
        pytest.param("521:#1,#3", [], id="521"),
        pytest.param("drop:#1", [], id="drop"),
        pytest.param("non-json:#2", [], id="non-json"),
    ],
)
def test_transient_faults_are_retried_to_the_same_result(tmp_path, fault, extra):
    out = tmp_path / "out.csv"
    with sandbox(fault, retry_after=0.1) as (running, _state):
        done = run_cli(running, str(SAMPLE), "-o", str(out), *extra)
    assert done.returncode == 1, done.stderr
    rows = results(out)
    assert sum(r["status"] == "revoked" for r in rows) == 8
    assert max(int(r["attempts"]) for r in rows) >= 2
    assert "retrying" in done.stderr


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        pytest.param("apply-drop", [], id="apply-then-drop"),
        pytest.param("slow", ["--timeout", "0.3"], id="slow-past-timeout"),
    ],
)
def test_lost_answers_are_settled_by_read_back(tmp_path, fault, extra):
    """Every revoke request is applied and its answer lost: the read-back settles them all,
    the earns named by mobile or email too (read back by that identifier, no lookup)."""
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    with sandbox(fault, slow_seconds=0.6) as (running, state):
        done = run_cli(running, str(SAMPLE), "-o", str(out), "--max-attempts", "1", *extra)
    rows = results(out)
    by_ticket = {r["ticket"]: r for r in rows}
    revoked = ("TCK-1001", "TCK-1002", "TCK-1003", "TCK-1004", "TCK-1007", "TCK-1008", "TCK-1009")
    for ticket in (*revoked, "TCK-1016"):
        assert by_ticket[ticket]["status"] == "revoked", (ticket, done.stderr)
        assert "confirmed by read-back" in by_ticket[ticket]["error_message"]
    assert sorted(by_ticket["TCK-1003"]["issued_ids"].split(";")) == [
        "654cc02b6bccde1274b6d3a7",
        "654cc03e6bccde1274b6d3a9",
    ]
    assert done.returncode == 1  # finished: the two rows below are not revoked
    # Never enrolled / another customer's: the read-back shows nothing of ours, so they are
    # sent again, and every answer is lost again: unknown, never claimed.
    for ticket in ("TCK-1005", "TCK-1006"):
        assert by_ticket[ticket]["status"] == "unconfirmed"
    assert_revoked_really_are(rows, before, state)
    assert "read-back" in done.stderr


def test_no_verify_leaves_lost_answers_unconfirmed(tmp_path):
    out = tmp_path / "out.csv"
    with sandbox("apply-drop:#1") as (running, _state):
        done = run_cli(running, str(SAMPLE), "-o", str(out), "--concurrency", "1", "--no-verify")
    unconfirmed = [r for r in results(out) if r["status"] == "unconfirmed"]
    assert unconfirmed, done.stderr
    assert all("--no-verify" in r["error_message"] for r in unconfirmed)
    assert "read-backs" not in done.stderr


def test_answers_that_do_nothing_stop_the_run_after_max_throttle_wait(tmp_path):
    """503 forever: it never uses up --max-attempts, so time bounds it, and the run stops
    resumably with nothing lost."""
    out = tmp_path / "out.csv"
    with sandbox("503") as (running, _state):
        done = run_cli(
            running, str(SAMPLE), "-o", str(out), "--max-attempts", "1", "--max-throttle-wait", "2"
        )
    assert done.returncode == 3, done.stderr
    assert "--max-throttle-wait" in done.stderr
    sent = [r for r in results(out) if r["status"] not in ("invalid", "duplicate")]
    assert {r["status"] for r in sent} == {"not_attempted"}
    assert done.stderr.strip().splitlines()[-1].endswith("--resume")


def test_retry_after_is_honoured_end_to_end(tmp_path):
    """The first request gets 429 with Retry-After: 2. Its retry may not arrive sooner. (The
    server's window is said to be an hour: without Retry-After the wait would be that.)"""
    out = tmp_path / "out.csv"
    with sandbox("429:#1", retry_after=2.0) as (running, _state):
        done = run_cli(running, str(SAMPLE), "-o", str(out), "--rate-window", "3600")
        # The throttled request, whatever its place in the log (concurrent arrivals may be
        # logged out of order), and the next request with its body: its retry.
        first = next(entry for entry in running.requests if entry.fault is not None)
        retry = next(
            entry
            for entry in running.requests
            if entry.body == first.body and entry.number > first.number
        )
    assert done.returncode == 1, done.stderr
    assert retry.at - first.at >= 2.0
    assert sum(r["status"] == "revoked" for r in results(out)) == 8


def earn_file(folder: Path, rows: int) -> tuple[Path, dict]:
    """`rows` revokeEarn rows (one call each) and the state that holds their earns."""
    state: dict = {"badges": ["B"], "customers": [], "enrolments": [], "earns": []}
    lines = ["badgeMetaId,customerId,earnedBadgeId"]
    for n in range(rows):
        state["customers"].append({"customerId": str(300_000 + n)})
        state["earns"].append(
            {"earnedBadgeId": f"E{n}", "badgeMetaId": "B", "customerId": str(300_000 + n)}
        )
        lines.append(f"B,{300_000 + n},E{n}")
    path = folder / "earns.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, state


def limited(state: dict, limit: str) -> SandboxConfig:
    return SandboxConfig(state=SandboxState.from_dict(state), rate_limit=RateLimitSpec.parse(limit))


def test_an_unknown_limit_without_retry_after_costs_no_row(tmp_path):
    """Capillary's way, scaled down: 8 calls per clock-aligned second, no Retry-After, and a
    client that is not told the limit (only the window). Every row is revoked."""
    path, state = earn_file(tmp_path, 60)
    out = tmp_path / "out.csv"
    with running_sandbox(limited(state, "8/s")) as running:
        done = run_cli(running, str(path), "-o", str(out), "--rate-window", "1")
        throttled = sum(entry.throttled for entry in running.requests)
        answered = sum(entry.applied for entry in running.requests)
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in results(out)} == {"revoked"}
    assert "calls throttled (429); pace" in done.stderr
    assert "learned: the server allowed 8" in done.stderr
    assert answered == 60  # each row sent once, past the throttling
    assert 0 < throttled <= 20
    assert f"rate: {throttled} calls throttled (429)" in done.stderr


def test_the_right_rate_limit_draws_no_429(tmp_path):
    """--rate-limit at the server's own limit, over five of its clock-aligned windows."""
    path, state = earn_file(tmp_path, 50)
    out = tmp_path / "out.csv"
    with running_sandbox(limited(state, "10/s")) as running:
        done = run_cli(running, str(path), "-o", str(out), "--rate-limit", "10/s")
        throttled = [entry for entry in running.requests if entry.throttled]
    assert done.returncode == 0, done.stderr
    assert throttled == []
    assert "rate: 0 calls throttled (429); pace 10/s (--rate-limit)" in done.stderr
    assert {r["status"] for r in results(out)} == {"revoked"}


def test_the_sandbox_counts_per_clock_aligned_window_and_sends_no_retry_after():
    state = SandboxState.load(SAMPLE_STATE)
    body = {"badgeMetaId": "B", "customerId": "1", "earnedBadgeId": "E"}
    for retry_after, header in ((None, None), (0.0, True)):
        config = SandboxConfig(
            state=state, rate_limit=RateLimitSpec.parse("3/60s"), retry_after=retry_after
        )
        with running_sandbox(config) as running:
            headers = {"Authorization": basic_header(running.credentials)}
            with httpx.Client(base_url=running.base_url, headers=headers) as http:
                answers = [http.post(REVOKE_EARN_PATH, json=body) for _ in range(5)]
        statuses = [a.status_code for a in answers]
        # 3 calls per window; a window boundary may fall between the calls, never more.
        assert statuses.count(429) in (1, 2), statuses
        throttled = next(a for a in answers if a.status_code == 429)
        assert ("Retry-After" in throttled.headers) is bool(header)


def test_documented_whole_request_errors_from_the_sandbox():
    with sandbox() as (running, _state):
        headers = {"Authorization": basic_header(running.credentials)}
        with httpx.Client(base_url=running.base_url, headers=headers) as http:
            e1051 = http.post(REVOKE_ISSUE_PATH, json={"badgeMetaId": "B"}).json()
            e715 = http.post(REVOKE_ISSUE_PATH, json={"customers": ["1"]}).json()
            e813 = http.post(REVOKE_EARN_PATH, json={"badgeMetaId": "B", "customerId": "1"}).json()
            too_many = http.post(
                REVOKE_ISSUE_PATH,
                json={"badgeMetaId": "B", "customers": [str(n) for n in range(21)]},
            )
            both = http.post(
                REVOKE_ISSUE_PATH,
                json={
                    "badgeMetaId": "654bb48766a87827bb61e631",
                    "customers": ["62090013"],
                    "revokeIssuals": [{"customerId": "123", "issueId": "654cc0416bccde1274b6d3b0"}],
                },
            ).json()
            unauthenticated = httpx.post(f"{running.base_url}{REVOKE_ISSUE_PATH}", json={})
            token = httpx.post(
                f"{running.base_url}{TOKEN_PATH}", json={"key": "demo-key", "secret": "demo-secret"}
            ).json()
    assert [e1051["errors"][0]["code"], e715["errors"][0]["code"], e813["errors"][0]["code"]] == [
        1051,
        715,
        813,
    ]
    assert too_many.status_code == 400
    # revokeIssuals wins; customers is ignored.
    assert [e["customerId"] for e in both["data"]["revokedIssuedBadges"]] == [123]
    assert unauthenticated.status_code == 401
    assert token["data"]["ttlSeconds"] == 300


def test_sandbox_command_prints_url_and_credentials_and_dumps_state(tmp_path):
    dump = tmp_path / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "batch_revoke", "sandbox", "--port", "0", "--dump-state", str(dump)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        exports = process.stdout.readline()
        assert url.startswith("http://127.0.0.1:")
        assert "CAP_USERNAME=demo.till" in exports
        done = run_cli(
            None,
            str(SAMPLE),
            "-o",
            str(tmp_path / "out.csv"),
            env={"CAP_BASE_URL": url, "CAP_USERNAME": "demo.till", "CAP_PASSWORD": "demo-password"},
        )
        assert done.returncode == 1, done.stderr
        live = httpx.get(f"{url}/_sandbox/state").json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    saved = json.loads(dump.read_text())
    assert saved == live
    revoked = {e["issueId"] for e in saved["enrolments"] if e["issuedStatus"] == "REVOKED"}
    assert "6703724a9235f02fd5d71cc1" in revoked


def test_run_dash_dash_sandbox_is_self_contained(tmp_path):
    done = run_cli(None, str(SAMPLE), "--sandbox", "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 1, done.stderr
    assert "sandbox running on http://127.0.0.1:" in done.stderr
    assert sum(r["status"] == "revoked" for r in results(tmp_path / "out.csv")) == 8


def test_csv_state_file_loads(tmp_path):
    state = SandboxState.load(ROOT / "samples" / "sandbox-state.csv")
    assert state.enrolments["6703724a9235f02fd5d71cc1"].customerId == "387403362"
    assert state.find_customer("ANA.SILVA@example.com", "email").customerId == "62090013"
    assert state.earns["6659551c304b6e0b517b7bc7"].isActive


def test_ctrl_c_lets_the_request_in_flight_finish_then_resume_completes(tmp_path):
    out = tmp_path / "out.csv"
    with sandbox(latency_ms=(1000.0, 1000.0)) as (running, _state):
        process = start_cli(running, str(SAMPLE), "-o", str(out), "--concurrency", "1")
        wait_for(lambda: len(running.requests) >= 1)
        process.send_signal(signal.SIGINT)
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 3, stderr
        rows = results(out)
        assert [r["row"] for r in rows] == [str(n) for n in range(1, 18)]
        statuses = [r["status"] for r in rows]
        assert "not_attempted" in statuses
        assert "unconfirmed" not in statuses  # the request in flight got its answer
        assert "Traceback" not in stderr
        assert "interrupted (SIGINT)" in stderr
        resumed = run_cli(running, str(SAMPLE), "-o", str(out), "--resume")
    assert resumed.returncode == 1, resumed.stderr
    assert [r["status"] for r in results(out)].count("revoked") == 8


GRACE = 2.0  # --grace: seconds requests in flight get after a stop (10 by default)


def test_one_ctrl_c_while_a_request_hangs_exits_3_within_the_grace(tmp_path):
    """A server that never answers cannot hold a stopped run longer than the grace: the
    request is abandoned (its rows unconfirmed, for --resume to read back) and the run ends."""
    out = tmp_path / "out.csv"
    with sandbox("slow", slow_seconds=600.0) as (running, _state):
        process = start_cli(
            running, str(SAMPLE), "-o", str(out), "--concurrency", "1", "--grace", str(GRACE)
        )
        wait_for(lambda: len(running.requests) >= 1)  # the request has reached the server
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        try:
            stderr = process.communicate(timeout=GRACE + 5)[1]
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail(f"still running {GRACE + 5:.0f} s after one Ctrl-C")
        took = time.monotonic() - interrupted
    assert process.returncode == 3, stderr
    assert took < GRACE + 5
    assert "interrupted (SIGINT)" in stderr
    assert "Traceback" not in stderr
    statuses = [r["status"] for r in results(out)]
    assert "unconfirmed" in statuses
    assert "revoked" not in statuses
    assert "not_attempted" in statuses


@pytest.mark.parametrize("interrupts", [1, 2], ids=["ctrl-c", "double-ctrl-c"])
def test_ctrl_c_during_a_retry_after_wait_leaves_the_rows_not_attempted(tmp_path, interrupts):
    """The only answer was a 429, which did nothing: its rows were not revoked and need no
    read-back, whatever the interrupt."""
    out = tmp_path / "out.csv"
    with sandbox("429:#1", retry_after=60.0) as (running, _state):
        process = start_cli(running, str(SAMPLE), "-o", str(out), "--concurrency", "1")
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # until the client has the 429 and waits to retry
            seen.append(line)
            if "retrying when the shared pause ends" in line:
                break
        for _ in range(interrupts):
            process.send_signal(signal.SIGINT)
        stderr = "".join(seen) + process.communicate(timeout=60)[1]
        assert len(running.requests) == 1
    assert process.returncode == 3, stderr
    statuses = [r["status"] for r in results(out)]
    assert "unconfirmed" not in statuses
    assert statuses.count("not_attempted") == 11
    assert "0 of them retries" in stderr


def test_a_file_fully_revoked_exits_0_duplicates_included(tmp_path, write_csv):
    path = write_csv(
        "badgeMetaId,customerId,issueId,earnedBadgeId,identifierType\n"
        "670371e39235f02fd5d71cbd,387403362,6703724a9235f02fd5d71cc1,,\n"
        "654bb48766a87827bb61e631,62090013,,,\n"
        "698dae82d30c4f6b3da9dc06,li.wei@example.com,,6659551c304b6e0b517b7bc8,email\n"
        "670371e39235f02fd5d71cbd,387403362,6703724a9235f02fd5d71cc1,,\n"
    )
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in results(tmp_path / "out.csv")] == ["revoked"] * 3 + ["duplicate"]


@pytest.mark.parametrize(
    ("defect", "fragment"),
    [
        pytest.param('B1,"1\n', "never closed", id="open-quote"),
        pytest.param("B1,\xe9\n", "not UTF-8", id="latin-1"),
    ],
)
def test_a_defect_on_the_last_line_of_a_long_file_is_found_before_anything_is_sent(
    tmp_path, defect, fragment
):
    # Far past the first chunk of records, so the run would be sending if it had not checked.
    path = tmp_path / "long.csv"
    lines = "".join(f"670371e39235f02fd5d71cbd,{387400000 + n},\n" for n in range(12_000))
    path.write_bytes(f"badgeMetaId,customerId,issueId\n{lines}".encode() + defect.encode("latin-1"))
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(out))
        dry = run_cli(running, str(path), "-o", str(tmp_path / "dry.csv"), "--dry-run")
        assert running.requests == []
    for finished in (done, dry):
        assert finished.returncode == ExitStatus.USAGE, finished.stderr
        assert fragment in finished.stderr
        assert "line 12002" in finished.stderr
        assert len(finished.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.csv"]


def test_long_runs_report_progress(tmp_path, caplog):
    with sandbox(latency_ms=(150.0, 150.0)) as (running, _state):
        config = RunConfig(
            SAMPLE,
            tmp_path / "out.csv",
            base_url=running.base_url,
            credentials=BasicCredentials(
                running.credentials.username, running.credentials.password
            ),
            concurrency=1,
            progress_every=0.1,
        )
        with caplog.at_level(logging.INFO, logger="batch_revoke"):
            report = run_job(config)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert progress
    rows = sum(1 for _ in SAMPLE.open(encoding="utf-8")) - 1
    assert f"of {rows} rows have an outcome" in progress[-1]
    assert report.tally.http_calls == 7


def test_oauth_tokens_are_renewed_as_they_expire_on_the_server(tmp_path):
    out = tmp_path / "out.csv"
    with sandbox(token_ttl=1, latency_ms=(250.0, 250.0)) as (running, _state):
        done = run_cli(running, str(SAMPLE), "-o", str(out), "--concurrency", "1", env=OAUTH)
    assert done.returncode == 1, done.stderr
    rows = results(out)
    assert sum(r["status"] == "revoked" for r in rows) == 8
    # Renewed ahead of expiry: no request needed the 401-and-resend path (that takes 2 calls).
    assert {r["attempts"] for r in rows if r["endpoint"] and r["status"] != "invalid"} == {"1", "0"}


def test_standard_input_is_read_like_a_file(tmp_path):
    """`run -` reads the CSV from a pipe; the run names it `-` and `stdin`."""
    with sandbox() as (running, _state):
        done = subprocess.run(
            [sys.executable, "-m", "batch_revoke", "run", "-"],
            input=SAMPLE.read_bytes(),
            capture_output=True,
            env=cli_env(running),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    (written,) = (tmp_path / "output").glob("stdin-results-*.csv")
    expected = len(SAMPLE.read_text(encoding="utf-8").strip().splitlines()) - 1
    assert len(results(written)) == expected
    assert sum(r["status"] == "revoked" for r in results(written)) == 8


def test_json_log_lines_parse_and_never_carry_the_credentials(tmp_path):
    import base64
    import hashlib
    import json

    with sandbox("503:#2", "drop:#3") as (running, _state):
        password = running.credentials.password
        done = subprocess.run(
            [
                *(sys.executable, "-m", "batch_revoke", "--log-format", "json", "-v", "run"),
                *(str(SAMPLE), "-o", str(tmp_path / "out.csv")),
            ],
            capture_output=True,
            text=True,
            env=cli_env(running),  # the real credentials, in the environment
            timeout=120,
            check=False,
        )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    events = {line["event"] for line in lines}
    assert {"retry", "request", "summary"} <= events
    assert len({line["run_id"] for line in lines}) == 1
    (summary,) = [line["summary"] for line in lines if line["event"] == "summary"]
    assert summary["exit_status"] == done.returncode == 1
    digest = hashlib.md5(password.encode()).hexdigest()
    header = base64.b64encode(f"{running.credentials.username}:{digest}".encode()).decode()
    for leaked in (password, digest, header):
        assert leaked not in done.stderr


@pytest.mark.parametrize("fault", ["apply-drop:#1", "drop:#1"])
def test_a_row_waiting_for_a_covering_row_is_released_once_a_read_back_settles_it(
    tmp_path, write_csv, fault
):
    path = write_csv(
        "badgeMetaId,customerId,issueId\n"
        "654bb48766a87827bb61e631,62090013,\n"
        "654bb48766a87827bb61e631,62090013,654cc02b6bccde1274b6d3a7\n"
    )
    out = tmp_path / "out.csv"
    with sandbox(fault) as (running, _state):
        done = run_cli(running, str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = results(out)
    assert [r["status"] for r in rows] == ["revoked", "revoked"]
    assert "through row 1" in rows[1]["error_message"]


def test_rows_appended_to_the_input_during_a_run_are_never_sent(tmp_path):
    path = tmp_path / "long.csv"
    lines = "".join(f"670371e39235f02fd5d71cbd,{387400000 + n},\n" for n in range(12_000))
    path.write_text(f"badgeMetaId,customerId,issueId\n{lines}", encoding="utf-8")
    out = tmp_path / "out.csv"
    with sandbox(latency_ms=(5.0, 5.0)) as (running, _state):
        process = start_cli(running, str(path), "-o", str(out), "--concurrency", "1")
        wait_for(lambda: len(running.requests) >= 1)  # the first chunk is being sent
        with path.open("a", encoding="utf-8") as handle:
            handle.write("670371e39235f02fd5d71cbd,999999999,\n")
        stderr = process.communicate(timeout=120)[1]
        sent = {str(c) for r in running.requests for c in r.body.get("customers", [])}
    assert process.returncode == 3, stderr
    assert "changed since the run started reading it" in stderr
    assert "999999999" not in sent
    assert "Traceback" not in stderr


def sample_workbook(path: Path, rows: int | None = None) -> Path:
    """The sample as an .xlsx, every cell the sample's text."""
    from openpyxl import Workbook

    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    book = Workbook()
    for line in lines[: None if rows is None else rows + 1]:
        book.active.append(line)
    book.save(path)
    return path


def test_a_workbook_run_killed_keeps_its_sheet_copy_beside_the_result_and_resume_reads_it(
    tmp_path,
):
    temp = tmp_path / "tmp"  # the run's temporary folder, to see that nothing is left in it
    temp.mkdir()
    book = sample_workbook(tmp_path / "revoke.xlsx")
    out = tmp_path / "results" / "revoke.csv"
    copy = tmp_path / "results" / "revoke.csv.input.csv"
    env = {"TMPDIR": str(temp)}
    with sandbox(latency_ms=(500.0, 500.0)) as (running, _state):
        process = start_cli(running, str(book), "-o", str(out), "--concurrency", "1", env=env)
        wait_for(lambda: len(running.requests) >= 1)
        assert copy.exists()
        process.kill()
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        assert copy.exists()
        assert list(temp.iterdir()) == []
        sample_workbook(book, rows=1)  # edited meanwhile: the run goes on with its own rows
        resumed = run_cli(running, str(book), "-o", str(out), "--resume", env=env)
    assert resumed.returncode == 1, resumed.stderr
    assert "resuming from the copy of the sheet the run began with" in resumed.stderr
    assert "revoke.xlsx changed since the run began" in resumed.stderr
    rows = results(out)
    assert [r["row"] for r in rows] == [str(n) for n in range(1, 18)]
    # 9, not the sample's 8: in a sheet, row 17's stray field is a cell, not a broken record.
    assert [r["status"] for r in rows].count("revoked") == 9
    assert sorted(p.name for p in out.parent.iterdir()) == ["revoke.csv", "revoke.csv.journal"]
    assert list(temp.iterdir()) == []


def test_a_legacy_xls_is_refused_in_one_line_with_no_traceback(tmp_path):
    path = tmp_path / "export.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))
    done = run_cli(None, str(path), "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"batch-revoke: error: {path}: is a legacy Excel 97-2003 workbook (.xls), not .xlsx; "
        "open it in Excel and save it as .xlsx (Excel Workbook)"
    ]


FOUR_GOOD = (
    "badgeMetaId,customerId,issueId\n"
    "670371e39235f02fd5d71cbd,387403362,6703724a9235f02fd5d71cc1\n"
    "670371e39235f02fd5d71cbd,387403360,6703724a9235f02fd5d71cc2\n"
    "654bb48766a87827bb61e631,62090013,\n"
    "654bb48766a87827bb61e631,123,\n"
)


def test_a_customer_id_of_70000_digits_is_invalid_and_the_run_finishes(tmp_path, write_csv):
    lines = FOUR_GOOD.splitlines()
    lines.insert(3, "654bb48766a87827bb61e631," + "1" * 70_000 + ",")
    path = write_csv("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    with sandbox() as (running, state):
        done = run_cli(running, str(path), "-o", str(out))
        assert done.returncode == 1, done.stderr
        rows = results(out)
        assert [(r["status"], r["error_code"]) for r in rows] == [("revoked", "")] * 2 + [
            ("invalid", "bad_customer_id")
        ] + [("revoked", "")] * 2
        assert "64-bit" in rows[2]["error_message"]
        assert len(rows[2]["error_message"]) < 400
        assert_revoked_really_are(rows, before, state)
        assert all("1" * 100 not in str(entry.body) for entry in running.requests)
        # Resuming the finished run sends nothing and writes the same file, cleanly.
        again = run_cli(running, str(path), "-o", str(out), "--resume")
    assert again.returncode == 1, again.stderr
    assert "internal error" not in done.stderr + again.stderr
    assert results(out) == rows


class BreakingTransport(httpx.AsyncHTTPTransport):
    """The real transport, except that revoking `customer` raises an error nobody expects."""

    def __init__(self, customer: str) -> None:
        super().__init__()
        self.customer = f'"{customer}"'.encode()
        self.broke = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and self.customer in request.content:
            self.broke += 1
            raise RuntimeError("injected failure")
        return await super().handle_async_request(request)


def test_a_worker_that_fails_unexpectedly_costs_only_its_row(tmp_path, write_csv):
    path = write_csv(FOUR_GOOD)
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    transport = BreakingTransport("387403360")
    with sandbox() as (running, state):
        config = RunConfig(
            path,
            out,
            base_url=running.base_url,
            credentials=BasicCredentials(
                running.credentials.username, running.credentials.password
            ),
            batch_size=1,
        )
        report = run_job(config, transport=transport)
        assert transport.broke >= 1
        assert not report.aborted
        assert report.exit_status is ExitStatus.NOT_ALL_REVOKED
        rows = results(out)
        assert [(r["status"], r["error_code"]) for r in rows] == [
            ("revoked", ""),
            ("unconfirmed", "client_error"),
            ("revoked", ""),
            ("revoked", ""),
        ]
        assert "RuntimeError: injected failure" in rows[1]["error_message"]
        assert_revoked_really_are(rows, before, state)
        assert state.enrolments["6703724a9235f02fd5d71cc2"].issuedStatus == "ACTIVE"
        # The CLI resumes it without a crash: the run finished, so nothing is sent again.
        again = run_cli(running, str(path), "-o", str(out), "--resume", "--batch-size", "1")
    assert again.returncode == 1, again.stderr
    assert "internal error" not in again.stderr
    assert results(out) == rows


def test_a_verbose_line_of_a_request_without_an_answer_says_so(tmp_path):
    """-v's line of a request whose connection dropped: "no answer", not "HTTP None"."""
    out = tmp_path / "out.csv"
    with sandbox("drop:#1") as (running, _state):
        done = run_cli(
            running, str(SAMPLE), "-o", str(out), "--max-attempts", "1", "--concurrency", "1", "-v"
        )
    lines = [
        line for line in done.stderr.splitlines() if "request 1 (" in line and "rows):" in line
    ]
    assert lines, done.stderr
    assert "rows): no answer, unconfirmed" in lines[0]
    assert "HTTP None" not in done.stderr
