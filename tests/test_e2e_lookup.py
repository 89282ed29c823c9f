"""End to end, customers named by mobile, email, externalId or card number: the CLI as a
subprocess against the sandbox as a real server on 127.0.0.1, looking customers up."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from batch_revoke.client import LOOKUP_PATH, REVOKE_EARN_PATH, REVOKE_ISSUE_PATH
from batch_revoke.sandbox import FaultPlan, SandboxConfig, SandboxState, running_sandbox
from batch_revoke.sandbox.server import LoggedRequest
from tests.conftest import (
    HEADER,
    SAMPLE_STATE,
    active_enrolments,
    assert_revoked_really_are,
    run_cli,
    sandbox,
    start_cli,
    wait_for,
)
from tests.conftest import read_rows as results

pytestmark = pytest.mark.e2e

WELCOME = "654bb48766a87827bb61e631"  # the sample's badge: 62090013 has two enrolments of it
STREAK = "670371e39235f02fd5d71cbd"
EARNED = "698dae82d30c4f6b3da9dc06"


def lookups(requests: list[LoggedRequest]) -> list[str]:
    return [entry.query["identifierValue"] for entry in requests if entry.path == LOOKUP_PATH]


def revokes(requests: list[LoggedRequest]) -> list[LoggedRequest]:
    return [e for e in requests if e.path in (REVOKE_ISSUE_PATH, REVOKE_EARN_PATH)]


def test_spellings_of_one_customer_are_one_lookup_and_an_unknown_mobile_fails_816(
    tmp_path, write_csv
):
    path = write_csv(
        HEADER
        + "\n"
        + f"{WELCOME},+91 99000 00013,,,mobile\n"  # 62090013: every enrolment
        + f"{WELCOME},919900000013,654cc02b6bccde1274b6d3a7,,mobile\n"  # covered by row 1
        + f"{WELCOME},0091-99000-00013,,,mobile\n"  # row 1 again, spelled otherwise
        + f"{WELCOME},ANA.SILVA@example.com,,,email\n"  # the same customer, by email
        + f"{WELCOME},62090013,,,\n"  # the same customer, by id
        + f"{STREAK},919900099999,,,mobile\n"  # nobody has this mobile
        + f"{WELCOME},099000 00123,,,mobile\n"  # customer 123, a national number
    )
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    with sandbox() as (running, state):
        done = run_cli(running, str(path), "-o", str(out), "--default-region", "in")
        log = list(running.requests)
    assert done.returncode == 1, done.stderr  # the unknown mobile is not revoked
    rows = {int(r["row"]): r for r in results(out)}
    # One lookup per customer however spelled: the mobile (3 spellings), the email, the
    # unknown mobile, the national number.
    assert sorted(lookups(log)) == sorted(
        ["919900000013", "ANA.SILVA@example.com", "919900099999", "919900000123"]
    )
    assert rows[1]["status"] == "revoked"
    assert rows[1]["resolved_customer_id"] == "62090013"
    assert sorted(rows[1]["issued_ids"].split(";")) == [
        "654cc02b6bccde1274b6d3a7",
        "654cc03e6bccde1274b6d3a9",
    ]
    assert rows[2]["status"] == "revoked"
    assert "through row 1" in rows[2]["error_message"]
    for row in (3, 4, 5):  # the same customer, badge and ids as row 1
        assert (rows[row]["status"], rows[row]["error_code"]) == ("duplicate", "duplicate_row")
        assert "row 1" in rows[row]["error_message"]
    assert rows[5]["resolved_customer_id"] == ""  # it named the id itself
    assert (rows[6]["status"], rows[6]["error_code"], rows[6]["http_status"]) == (
        "failed",
        "816",
        "400",
    )
    assert "nothing was sent" in rows[6]["error_message"]
    assert (rows[7]["status"], rows[7]["resolved_customer_id"]) == ("revoked", "123")
    # Nothing was sent for the unknown mobile, and customer 62090013 was revoked once.
    sent = [entry.body for entry in revokes(log)]
    assert all("919900099999" not in json.dumps(body) for body in sent)
    assert sum(json.dumps(body).count('"62090013"') for body in sent) == 1
    assert_revoked_really_are(list(rows.values()), before, state)
    assert "4 customer lookups" in done.stderr


def test_lost_answers_of_earns_named_by_mobile_are_all_settled_by_read_back(tmp_path, write_csv):
    """Both revokeEarn requests are applied and their answers lost; the read-back asks by the
    mobile and the email themselves, as revokeEarn was, and finds the earns revoked."""
    path = write_csv(
        HEADER
        + "\n"
        + f"{EARNED},919900000013,,6659551c304b6e0b517b7bc7,mobile\n"
        + f"{EARNED},li.wei@example.com,,6659551c304b6e0b517b7bc8,email\n"
    )
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    # Calls #1 and #2 are the two revokes (earns are sent by identifier, no lookup first).
    with sandbox("apply-drop:#1,#2") as (running, state):
        done = run_cli(running, str(path), "-o", str(out), "--max-attempts", "1")
        log = list(running.requests)
    assert done.returncode == 0, done.stderr
    rows = results(out)
    for row in rows:
        assert row["status"] == "revoked", row
        assert "confirmed by read-back" in row["error_message"]
    # revokeEarn rows are sent and read back by the identifier itself: no lookup is made, and
    # no id shows whichever path settled them (answers.resolved_id).
    assert [r["resolved_customer_id"] for r in rows] == ["", ""]
    assert lookups(log) == []
    assert len(revokes(log)) == 2  # read back, not sent again
    assert_revoked_really_are(rows, before, state)


@pytest.mark.parametrize("mobile_first", [True, False], ids=["mobile-then-id", "id-then-mobile"])
def test_one_earned_badge_named_by_mobile_and_by_id_is_one_row_dry_and_sent(
    tmp_path, write_csv, mobile_first
):
    """earnedBadgeId names the earn on its own: the second row is a duplicate of the first,
    in the dry run and in the run, which sends one revokeEarn and exits 0."""
    by_mobile = f"{EARNED},+91 99000 00013,,6659551c304b6e0b517b7bc7,mobile\n"
    by_id = f"{EARNED},62090013,,6659551c304b6e0b517b7bc7,\n"
    path = write_csv(HEADER + "\n" + (by_mobile + by_id if mobile_first else by_id + by_mobile))
    dry = tmp_path / "dry.csv"
    planned = run_cli(None, str(path), "--dry-run", "-o", str(dry))
    assert planned.returncode == 0, planned.stderr
    assert [(r["status"], r["error_code"]) for r in results(dry)] == [
        ("planned", ""),
        ("duplicate", "duplicate_row"),
    ]
    assert "as row 1" in results(dry)[1]["error_message"]
    assert "revokeEarn 1" in planned.stderr
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    with sandbox() as (running, state):
        done = run_cli(running, str(path), "-o", str(out))
        log = list(running.requests)
    assert done.returncode == 0, done.stderr
    rows = results(out)
    assert [(r["status"], r["error_code"]) for r in rows] == [
        ("revoked", ""),
        ("duplicate", "duplicate_row"),
    ]
    assert "as row 1" in rows[1]["error_message"]
    assert len(revokes(log)) == 1
    assert_revoked_really_are(rows, before, state)


def many_by_mobile(folder: Path, customers: int) -> tuple[Path, dict]:
    """`customers` customers with one enrolment each, and a file naming them by mobile."""
    state: dict = {"badges": ["B"], "customers": [], "enrolments": [], "earns": []}
    lines = [HEADER]
    for n in range(customers):
        customer = str(800_000 + n)
        state["customers"].append({"customerId": customer, "mobile": f"919900{customer}"})
        state["enrolments"].append({"issueId": f"I{n}", "badgeMetaId": "B", "customerId": customer})
        lines.append(f"B,+91 9900 {customer},I{n},,mobile")
    path = folder / "mobiles.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, state


def answered_lookups(journal: Path) -> set[str]:
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return {key.split(":", 1)[1] for (key,) in db.execute("SELECT key FROM lookups")}
    finally:
        db.close()


def test_a_kill_during_the_lookups_then_resume_repeats_no_answered_lookup(tmp_path):
    path, state = many_by_mobile(tmp_path, 60)
    out = tmp_path / "out.csv"
    config = SandboxConfig(
        state=SandboxState.from_dict(json.loads(json.dumps(state))),
        faults=FaultPlan([], seed=1),
        latency_ms=(20.0, 20.0),
    )
    before = SandboxState.from_dict(json.loads(json.dumps(state)))
    with running_sandbox(config) as running:
        process = start_cli(running, str(path), "-o", str(out), "--concurrency", "2")
        wait_for(lambda: len(lookups(running.requests)) >= 10)  # the lookups are under way
        process.kill()
        process.communicate(timeout=30)
        assert revokes(running.requests) == []  # killed before any revoke
        answered = answered_lookups(Path(f"{out}.journal"))
        assert 8 <= len(answered) < 60
        asked = len(lookups(running.requests))
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
        assert resumed.returncode == 0, resumed.stderr
        log = list(running.requests)
    after_kill = lookups(log)[asked:]
    assert not answered & set(after_kill)  # no lookup the journal had the answer to
    assert len(set(lookups(log))) == 60
    # Nothing sent twice: each enrolment in exactly one revoke request.
    sent = [e["issueId"] for r in revokes(log) for e in r.body["revokeIssuals"]]
    assert sorted(sent) == sorted(f"I{n}" for n in range(60))
    rows = results(out)
    assert {r["status"] for r in rows} == {"revoked"}
    assert [r["resolved_customer_id"] for r in rows] == [str(800_000 + n) for n in range(60)]
    assert_revoked_really_are(rows, before, config.state)
    assert not any(e.issuedStatus == "ACTIVE" for e in config.state.enrolments.values())


# Rows by mobile, email, externalId and id, revokeIssue and revokeEarn, duplicates spelt the
# same and otherwise, with the resolved_customer_id each must show: the id a lookup found for
# a revokeIssue row that named its customer by an identifier (duplicates included); empty
# for a row that named the id and for every revokeEarn row (sent by the identifier itself).
MIXED = [
    (f"{STREAK},+91 99000 00362,6703724a9235f02fd5d71cc1,,mobile", "387403362"),
    (f"{STREAK},387403360,6703724a9235f02fd5d71cc2,,", ""),
    (f"{WELCOME},919900000123,,,mobile", "123"),  # every enrolment of customer 123
    (f"{EARNED},919900000013,,6659551c304b6e0b517b7bc7,mobile", ""),
    (f"{EARNED},566135941,,698daf848644c157e72d83f3,", ""),
    (f"{STREAK},919900000362,6703724a9235f02fd5d71cc1,,mobile", "387403362"),  # row 1, same
    (f"{STREAK},EXT-387403362,6703724a9235f02fd5d71cc1,,externalId", "387403362"),  # row 1
    (f"{STREAK},387403362,6703724a9235f02fd5d71cc1,,", ""),  # row 1, by id
    (f"{EARNED},li.wei@example.com,,6659551c304b6e0b517b7bc8,email", ""),
    (f"{EARNED},62090013,,6659551c304b6e0b517b7bc7,", ""),  # row 4's earn, by id
    (f"{WELCOME},0091-99000-00123,,,mobile", "123"),  # row 3, spelt otherwise
    (f"{WELCOME},777,,,", ""),
    (f"{WELCOME},ana.silva@example.com,654cc02b6bccde1274b6d3a7,,email", "62090013"),
    (f"{STREAK},919900000360,6703724a9235f02fd5d71cc9,,mobile", "387403360"),
    (f"{STREAK},555567088,,,", ""),  # never enrolled: 404
    (f"{STREAK},919900000088,,,mobile", "555567088"),  # row 15 by mobile: its duplicate
]
MIXED_LOOKUPS = 6  # 919900000362, 919900000123, EXT-387403362, ana.silva@, …360, …088
MIXED_REVOKES = 7  # 3 revokeEarn; revokeIssue: 3 + 14, 3 + 12, 13, 15


def test_a_killed_and_resumed_run_writes_what_a_clean_run_writes(tmp_path, write_csv):
    """SIGKILL while four revokes are on the wire (applied, their answers not yet sent):
    the resume reads them back. Its result equals a clean run's, column by column, but for
    error_message: a row settled by read-back says "confirmed by read-back" where a clean
    run's answer said nothing."""
    path = write_csv("\n".join([HEADER, *(line for line, _ in MIXED)]) + "\n")
    clean = tmp_path / "clean.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(clean))
        assert len(lookups(running.requests)) == MIXED_LOOKUPS
        assert len(revokes(running.requests)) == MIXED_REVOKES
    assert done.returncode == 1, done.stderr  # row 15: never enrolled
    expected = results(clean)
    assert [r["resolved_customer_id"] for r in expected] == [found for _, found in MIXED]
    out = tmp_path / "out.csv"
    first_revokes = range(MIXED_LOOKUPS + 1, MIXED_LOOKUPS + 5)  # the lookups go first
    slow = "slow:" + ",".join(f"#{n}" for n in first_revokes)
    with sandbox(slow) as (running, state):
        process = start_cli(running, str(path), "-o", str(out), "--concurrency", "4")
        wait_for(lambda: len(revokes(running.requests)) >= 4)  # on the wire, all applied
        process.kill()
        process.communicate(timeout=30)
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
    assert resumed.returncode == 1, resumed.stderr
    rows = results(out)
    read_back = [r["row"] for r in rows if "confirmed by read-back" in r["error_message"]]
    assert len(read_back) >= 4, rows  # rows of the four requests on the wire
    # error_message says "confirmed by read-back"; request_id names the answer that decided
    # the row, another answer in each run, so only whether there was one must agree.
    apart = {"error_message", "request_id"}
    for row, want in zip(rows, expected, strict=True):
        assert {k: v for k, v in row.items() if k not in apart} == {
            k: v for k, v in want.items() if k not in apart
        }, row["row"]
        assert bool(row["request_id"]) == bool(want["request_id"]), row["row"]
    assert_revoked_really_are(rows, SandboxState.load(SAMPLE_STATE), state)


def test_the_dry_run_counts_the_lookups_and_makes_none(tmp_path):
    path, _ = many_by_mobile(tmp_path, 30)
    with open(path, "a", encoding="utf-8") as handle:  # a customer twice, spelled otherwise
        handle.write("B,919900800000,I99,,mobile\n")
    dry = str(tmp_path / "dry.csv")
    done = run_cli(None, str(path), "--dry-run", "-o", dry, "--rate-limit", "100/min")
    assert done.returncode == 0, done.stderr
    assert "plan: 32 calls (30 lookups, 2 revokes): about 1 min at 100/min" in done.stderr


def test_while_customers_are_looked_up_the_progress_counts_them(tmp_path):
    """Before the first revoke, lookups are all a run does: its progress says how many."""
    path, state = many_by_mobile(tmp_path, 20)
    config = SandboxConfig(
        state=SandboxState.from_dict(state),
        faults=FaultPlan([], seed=1),
        latency_ms=(100.0, 100.0),  # 20 lookups one at a time: 2 s of progress lines at least
    )
    with running_sandbox(config) as running:
        args = ("-o", str(tmp_path / "out.csv"), "--concurrency", "1", "--progress-every", "0.1")
        done = run_cli(running, str(path), *args)
    assert done.returncode == 0, done.stderr
    during = [
        line
        for line in done.stderr.splitlines()
        if "progress: 0 of 20 rows have an outcome" in line and "customers looked up" in line
    ]
    assert during, done.stderr


def test_a_finished_run_run_again_reports_what_this_invocation_sent(tmp_path, write_csv):
    """--auto-resume of an input whose run finished sends nothing: its summary says 0 calls
    and 0 lookups, and gives the finished run's own figures apart."""
    path = write_csv(
        HEADER
        + "\n"
        + f"{WELCOME},+91 99000 00013,,,mobile\n"
        + f"{WELCOME},ana.silva@example.com,,,email\n"
        + f"{STREAK},919900099999,,,mobile\n"
    )
    folder = tmp_path / "out"
    summary = folder / "last-run.json"
    args = (str(path), "--output-dir", str(folder), "--auto-resume", "--summary-json", str(summary))
    with sandbox() as (running, _state):
        first = run_cli(running, *args)
        then = json.loads(summary.read_text(encoding="utf-8"))
        sent = len(running.requests)
        again = run_cli(running, *args, "--report", str(tmp_path / "report.html"))
        assert len(running.requests) == sent
    assert first.returncode == again.returncode == 1, first.stderr + again.stderr
    assert then["http_calls"] >= 3
    assert then["lookups"] == 3
    now = json.loads(summary.read_text(encoding="utf-8"))
    assert "nothing was sent" in again.stderr
    assert (now["http_calls"], now["retries"], now["lookups"], now["read_backs"]) == (0, 0, 0, 0)
    assert now["requests"] == {}
    assert now["rows"] == then["rows"]
    assert now["finished_before"] == {
        "requests": then["requests"],
        "http_calls": then["http_calls"],
        "retries": then["retries"],
        "read_backs": then["read_backs"],
        "lookups": then["lookups"],
        "throttled_calls": then["throttled_calls"],
    }
    assert then["finished_before"] is None
    # The HTML report is of the run: the calls it made, not this invocation's none.
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f'<th scope="row">http calls</th><td>{then["http_calls"]}</td>' in html
    line = next(text for text in again.stderr.splitlines() if text.startswith("requests: "))
    assert line == (
        f"requests: none now (0 HTTP calls); the finished run sent revokeIssue "
        f"{then['requests']['revokeIssue']}"
        f"; {then['http_calls']} HTTP calls, {then['retries']} of them retries, 3 customer lookups"
    )


def test_a_run_interrupted_while_it_looks_customers_up_says_no_row_was_sent(tmp_path):
    path, state = many_by_mobile(tmp_path, 60)
    config = SandboxConfig(
        state=SandboxState.from_dict(state),
        faults=FaultPlan([], seed=1),
        latency_ms=(100.0, 100.0),  # 60 lookups one at a time: 6 s, the interrupt comes first
    )
    with running_sandbox(config) as running:
        args = ("-o", str(tmp_path / "out.csv"), "--concurrency", "1")
        process = start_cli(running, str(path), *args)
        wait_for(lambda: len(lookups(running.requests)) >= 5)  # the lookups are under way
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert revokes(running.requests) == []
    assert process.returncode == 3, stderr
    summary = [line for line in stderr.splitlines() if "customers; no row was sent" in line]
    assert len(summary) == 1, stderr
    assert re.fullmatch(
        r"looked up \d+ customers; no row was sent \(60 rows not attempted\) in [\d.]+s",
        summary[0],
    )
    assert "processed" not in stderr


def test_card_numbers_written_with_spaces_are_sent_without_them(tmp_path, write_csv):
    """`4000 1234 1234 1234` as people write a card: looked up, sent and compared for
    duplicates as its digits, while the result file keeps it as written."""
    path = write_csv(
        HEADER
        + "\n"
        + f"{WELCOME},4000 1234 1234 1234,,,cardNumber\n"  # 62090013: every enrolment
        + f"{EARNED},4000 1234 1234 5941,,698daf848644c157e72d83f3,cardNumber\n"  # 566135941
        + f"{WELCOME},4000123412341234,,,cardNumber\n"  # row 1, written without spaces
    )
    out = tmp_path / "out.csv"
    before = SandboxState.load(SAMPLE_STATE)
    with sandbox() as (running, state):
        done = run_cli(running, str(path), "-o", str(out))
        log = list(running.requests)
    assert done.returncode == 0, done.stderr
    assert lookups(log) == ["4000123412341234"]
    (earn,) = [entry for entry in revokes(log) if entry.path == REVOKE_EARN_PATH]
    assert earn.body["customerId"] == "4000123412345941"
    rows = results(out)
    assert [r["status"] for r in rows] == ["revoked", "revoked", "duplicate"]
    assert rows[0]["customerId"] == "4000 1234 1234 1234"
    assert rows[0]["resolved_customer_id"] == "62090013"
    assert "row 1" in rows[2]["error_message"]
    assert_revoked_really_are(rows, before, state)


def test_a_lookup_answered_8015_fails_its_row_and_sends_nothing_for_it(tmp_path, write_csv):
    """8015, "Customer not found for the given identifiers", is a not-found like 816."""
    path = write_csv(HEADER + "\n" + f"{WELCOME},919900000013,,,mobile\n" + f"{WELCOME},123,,,\n")
    out = tmp_path / "out.csv"
    with sandbox("8015:#1") as (running, state):  # #1: the one lookup, sent before any revoke
        done = run_cli(running, str(path), "-o", str(out))
        log = list(running.requests)
    assert done.returncode == 1, done.stderr
    rows = results(out)
    assert (rows[0]["status"], rows[0]["error_code"]) == ("failed", "8015")
    assert "Customer not found for the given identifiers" in rows[0]["error_message"]
    assert "nothing was sent" in rows[0]["error_message"]
    assert rows[1]["status"] == "revoked"
    assert lookups(log) == ["919900000013"]  # not asked again: a definite answer
    assert all("62090013" not in json.dumps(entry.body) for entry in revokes(log))
    assert {e.issueId for e in state.enrolments.values() if e.customerId == "62090013"} <= (
        active_enrolments(state)
    )


def test_a_busy_search_engine_is_asked_again_until_it_answers(tmp_path, write_csv):
    path = write_csv(HEADER + "\n" + f"{WELCOME},ana.silva@example.com,,,email\n")
    out = tmp_path / "out.csv"
    with sandbox("461:#1,#2") as (running, _state):
        done = run_cli(running, str(path), "-o", str(out), "--max-attempts", "1")
        log = list(running.requests)
    assert done.returncode == 0, done.stderr
    (row,) = results(out)
    assert (row["status"], row["resolved_customer_id"]) == ("revoked", "62090013")
    # Two busy answers, then the answer: never counted against --max-attempts 1.
    assert lookups(log) == ["ana.silva@example.com"] * 3
    assert [entry.fault and entry.fault.value for entry in log[:2]] == ["461", "461"]
    assert "Search Engine is busy" in done.stderr  # the retry lines say why


@pytest.mark.parametrize("kind", ["461", "503"])
def test_a_search_engine_busy_for_good_leaves_its_rows_not_attempted_like_a_503(
    tmp_path, write_csv, kind
):
    path = write_csv(HEADER + "\n" + f"{WELCOME},ana.silva@example.com,,,email\n")
    out = tmp_path / "out.csv"
    with sandbox(kind) as (running, _state):
        done = run_cli(running, str(path), "-o", str(out), "--max-throttle-wait", "1")
        log = list(running.requests)
    assert done.returncode == 3, done.stderr  # stopped, resumable: --resume looks it up again
    (row,) = results(out)
    assert (row["status"], row["error_code"]) == ("not_attempted", "run_aborted")
    assert "--max-throttle-wait" in row["error_message"]
    assert len(lookups(log)) >= 2
    assert revokes(log) == []


def test_the_report_of_a_run_stopped_during_its_lookups_charts_them(tmp_path):
    """A session that only looked customers up made calls: the run over time draws them
    where they were made, and its calls add up to the summary's HTTP calls."""
    from batch_revoke.html_report import gather

    path, state = many_by_mobile(tmp_path, 30)
    config = SandboxConfig(
        state=SandboxState.from_dict(state),
        faults=FaultPlan([], seed=1),
        latency_ms=(50.0, 50.0),  # 30 lookups one at a time: the interrupt comes first
    )
    out = tmp_path / "out.csv"
    summaries = [tmp_path / "first.json", tmp_path / "second.json"]
    with running_sandbox(config) as running:
        args = ("-o", str(out), "--concurrency", "1")
        process = start_cli(running, str(path), *args, "--summary-json", str(summaries[0]))
        wait_for(lambda: len(lookups(running.requests)) >= 5)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        assert revokes(running.requests) == []
        resumed = run_cli(
            running, str(path), *args, "--resume", "--summary-json", str(summaries[1])
        )
    assert (process.returncode, resumed.returncode) == (3, 0), resumed.stderr
    calls = [json.loads(summary.read_text(encoding="utf-8"))["http_calls"] for summary in summaries]
    journal = gather(out).journal
    assert journal is not None
    first, _ = journal.timeline.sessions
    assert not first.sent_nothing
    assert first.total("calls") == calls[0] >= 5
    # The resumed run's summary counts the whole run's calls, the first session's included.
    assert journal.timeline.total("calls") == calls[1] > calls[0]
