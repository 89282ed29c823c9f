"""End to end, `batch-revoke retry` as a new user meets it: the CLI as a subprocess against the
sandbox as a real server on 127.0.0.1, a run with failures (a server error, an answer lost
after the revoke was carried out, an earned badge revoked before), the retry of its result,
and the report of the retry."""

from __future__ import annotations

import re

import pytest

from batch_revoke.client import REVOKE_EARN_PATH
from batch_revoke.sandbox import FaultPlan, FaultSpec, SandboxConfig, SandboxState, running_sandbox
from tests.conftest import read_rows, run_cli

pytestmark = pytest.mark.e2e

STATE = {
    "badges": ["B"],
    "customers": [{"customerId": str(n)} for n in (301, 302, 303, 304)],
    "enrolments": [],
    "earns": [
        {"earnedBadgeId": "E1", "badgeMetaId": "B", "customerId": "301"},
        {"earnedBadgeId": "E2", "badgeMetaId": "B", "customerId": "302"},
        {"earnedBadgeId": "E3", "badgeMetaId": "B", "customerId": "303"},
        {"earnedBadgeId": "E4", "badgeMetaId": "B", "customerId": "304", "isActive": False},
    ],
}


def test_retry_sends_exactly_the_rows_that_can_still_be_revoked(tmp_path):
    path = tmp_path / "earns.csv"
    path.write_text(
        "badgeMetaId,customerId,earnedBadgeId,note\nB,301,E1,ok\nB,302,E2,500\n"
        "B,303,E3,lost\nB,304,E4,revoked before\n",
        encoding="utf-8",
    )
    out = tmp_path / "first.csv"
    faults = FaultPlan([FaultSpec.parse("500:#2"), FaultSpec.parse("apply-drop:#3")], seed=1)
    config = SandboxConfig(state=SandboxState.from_dict(STATE), faults=faults)
    with running_sandbox(config) as running:
        first = ("--concurrency", "1", "--max-attempts", "1", "--no-verify")
        done = run_cli(running, str(path), "-o", str(out), *first)
        assert done.returncode == 1, done.stderr
        assert [(r["status"], r["error_code"]) for r in read_rows(out)] == [
            ("revoked", ""),
            ("unconfirmed", "http_500"),
            ("unconfirmed", "connection_error"),
            ("failed", "814"),
        ]
        assert config.state.earns["E3"].isActive is False  # its answer lost, not its revoke
        assert f"2 rows can be retried: batch-revoke retry {out}" in done.stderr
        sent_before = len(running.requests)

        again = run_cli(running, str(out), command="retry")
        assert again.returncode == 0, again.stderr
        sent = running.requests[sent_before:]
        # E2 was never applied: read back, found active, sent again. E3 was: read back only.
        assert [(r.path, r.body) for r in sent] == [
            (REVOKE_EARN_PATH, {"badgeMetaId": "B", "customerId": "302", "earnedBadgeId": "E2"})
        ]
        assert config.state.earns["E2"].isActive is False
    shown = re.search(r"results: (\S+)", again.stderr)
    assert shown is not None, again.stderr
    retried = tmp_path / shown.group(1).rsplit("/", 1)[-1]
    assert retried.name.startswith("first-retry-")
    assert (tmp_path / f"{retried.stem}-input.csv").exists()
    rows = read_rows(retried)
    assert [(r["input_row"], r["input_error_code"], r["status"]) for r in rows] == [
        ("2", "http_500", "revoked"),
        ("3", "connection_error", "revoked"),
    ]
    assert "confirmed by read-back" in rows[1]["error_message"]
    assert "read back 2 rows: 1 revoked, 1 not applied (sent again)" in again.stderr

    report = run_cli(None, str(retried), command="report")
    assert report.returncode == 0, report.stderr
    html = (tmp_path / f"{retried.stem}.html").read_text(encoding="utf-8")
    lineage = html[html.index('id="lineage"') : html.index("</table>", html.index('id="lineage"'))]
    assert f"A retry of the rows of <code>{out}</code>" in lineage
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", lineage)]
    assert cells == [
        *("unconfirmed", "connection_error", "1", "1 revoked"),
        *("unconfirmed", "http_500", "1", "1 revoked"),
    ]
