"""End to end, the revoke and read-back answers the vendor documents beyond the pages'
examples: the CLI as a subprocess against the sandbox as a real server on 127.0.0.1, with
answers lost on the way back (the `apply-drop` fault: the call is carried out, then the
connection closed)."""

from __future__ import annotations

import json

import pytest

from batch_revoke.client import LOOKUP_PATH, REVOKE_EARN_PATH
from batch_revoke.sandbox import FaultPlan, FaultSpec, SandboxConfig, SandboxState, running_sandbox
from tests.conftest import HEADER, assert_revoked_really_are, run_cli, sandbox
from tests.conftest import read_rows as results

pytestmark = pytest.mark.e2e

STREAK = "670371e39235f02fd5d71cbd"  # 387403362 holds 6703724a9235f02fd5d71cc1
EARNED = "698dae82d30c4f6b3da9dc06"  # 62090013 (mobile 919900000013) earned ...7bc7
NO_SUCH_BADGE = "66e3d6335abea9582ae40000"


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        pytest.param("apply-drop", ["--max-attempts", "1"], id="read-back-after-a-lost-answer"),
        pytest.param("apply-drop:#1,#2,#3,#4", [], id="retried-after-a-lost-answer"),
    ],
)
def test_rows_of_a_badge_the_org_does_not_have_fail_as_such(tmp_path, write_csv, fault, options):
    """Never "not present", never "nothing, if it was revoked before": the summary, its JSON
    and the report put them under badge_not_found, whose advice is to check the badge."""
    path = write_csv(
        HEADER
        + "\n"
        + f"{NO_SUCH_BADGE},387403362,,,\n"
        + f"{NO_SUCH_BADGE},387403362,6703724a9235f02fd5d71cc1,,\n"
        + f"{NO_SUCH_BADGE},62090013,,6659551c304b6e0b517b7bc7,\n"
        + f"{STREAK},387403362,6703724a9235f02fd5d71cc1,,\n"
    )
    out, summary, report = tmp_path / "out.csv", tmp_path / "s.json", tmp_path / "r.html"
    with sandbox(fault) as (running, state):
        done = run_cli(
            running,
            str(path),
            *("-o", str(out), "--concurrency", "1", "--summary-json", str(summary)),
            *("--report", str(report), *options),
        )
    assert done.returncode == 1, done.stderr
    rows = results(out)
    for row in rows[:3]:
        assert (row["status"], row["error_code"], row["http_status"]) == (
            "failed",
            "badge_not_found",
            "404",
        ), row
        assert NO_SUCH_BADGE in row["error_message"]
        assert "check the badgeMetaId" in row["error_message"]
    assert rows[3]["status"] == "revoked"
    assert state.enrolments["6703724a9235f02fd5d71cc1"].issuedStatus == "REVOKED"
    by_code = done.stderr[done.stderr.index("by error code:") :]
    assert "badge_not_found" in by_code.splitlines()[1]
    errors = json.loads(summary.read_text())["errors"]
    assert {"status": "failed", "error_code": "badge_not_found", "rows": 3} in errors
    html = report.read_text(encoding="utf-8")
    assert "badge_not_found" in html
    assert "the org has no badge with this badgeMetaId" in html


def test_revoke_earns_814_with_http_409_is_not_present_as_before(tmp_path, write_csv):
    """The spec's 409 for 814: an earn revoked last week is failed 814; one whose first answer
    was lost and whose retry is told 814 is read back, and found revoked by that attempt."""
    path = write_csv(
        HEADER
        + f"\n{EARNED},566135941,,698daf848644c157e72d83f3,"
        + f"\n{EARNED},566135941,,654cbea06bccde1274b6d3a2,\n"
    )
    out = tmp_path / "out.csv"
    with sandbox("apply-drop:#1") as (running, _state):
        done = run_cli(running, str(path), "-o", str(out), "--concurrency", "1")
    assert done.returncode == 1, done.stderr
    first, second = results(out)
    assert (first["status"], first["issued_ids"]) == ("revoked", "698daf848644c157e72d83f3")
    assert "confirmed by read-back" in first["error_message"]
    assert (second["status"], second["error_code"], second["http_status"]) == (
        "failed",
        "814",
        "409",
    )


EXPIRING = {
    "badges": ["B"],
    "customers": [{"customerId": "41"}, {"customerId": "42"}],
    "enrolments": [
        {"issueId": "I41-old", "badgeMetaId": "B", "customerId": "41", "issuedStatus": "EXPIRED"},
        {"issueId": "I41", "badgeMetaId": "B", "customerId": "41"},
        {"issueId": "I42-old", "badgeMetaId": "B", "customerId": "42", "issuedStatus": "EXPIRED"},
        {"issueId": "I42", "badgeMetaId": "B", "customerId": "42"},
    ],
}


def test_an_expired_issual_beside_the_rows_own_does_not_leave_it_unconfirmed(tmp_path, write_csv):
    """Both requests are carried out and their answers lost; each customer also holds an
    EXPIRED issual of the badge, which is neither what the request left undone nor what it
    did."""
    path = write_csv(HEADER + "\nB,41,I41,,\nB,42,,,\n")
    out = tmp_path / "out.csv"
    config = SandboxConfig(
        state=SandboxState.from_dict(json.loads(json.dumps(EXPIRING))),
        faults=FaultPlan([FaultSpec.parse("apply-drop")], seed=1),
    )
    before = SandboxState.from_dict(json.loads(json.dumps(EXPIRING)))
    with running_sandbox(config) as running:
        done = run_cli(running, str(path), "-o", str(out), "--max-attempts", "1")
    assert done.returncode == 0, done.stderr
    rows = results(out)
    assert [(r["status"], r["issued_ids"]) for r in rows] == [
        ("revoked", "I41"),
        ("revoked", "I42"),
    ]
    assert all("confirmed by read-back" in r["error_message"] for r in rows)
    assert {e.issueId: e.issuedStatus for e in config.state.enrolments.values()} == {
        "I41-old": "EXPIRED",
        "I41": "REVOKED",
        "I42-old": "EXPIRED",
        "I42": "REVOKED",
    }
    assert_revoked_really_are(rows, before, config.state)


def test_an_earn_named_by_mobile_is_read_back_by_the_mobile_in_one_call(tmp_path, write_csv):
    """The revokeEarn is carried out and its answer lost: the badge details page, asked by
    the mobile with X-CAP-CUSTOMER-IDENTIFIER as revokeEarn was, settles it. No customer
    lookup."""
    path = write_csv(HEADER + f"\n{EARNED},+91 99000 00013,,6659551c304b6e0b517b7bc7,mobile\n")
    out = tmp_path / "out.csv"
    with sandbox("apply-drop:#1") as (running, state):
        done = run_cli(running, str(path), "-o", str(out), "--max-attempts", "1")
    assert done.returncode == 0, done.stderr
    assert [e.path for e in running.requests] == [REVOKE_EARN_PATH]  # no lookup
    assert not [e for e in running.requests if e.path == LOOKUP_PATH]
    (call,) = running.read_backs
    assert call.path.endswith(f"/management/919900000013/badge/{EARNED}")
    assert call.identifier == "mobile"
    (row,) = results(out)
    assert row["status"] == "revoked"
    assert "confirmed by read-back" in row["error_message"]
    assert not state.earns["6659551c304b6e0b517b7bc7"].isActive
