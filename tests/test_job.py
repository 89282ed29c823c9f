"""The importable core, with HTTP swapped through the transport seam."""

from __future__ import annotations

import csv
import json

import httpx

from batch_revoke.client import BasicCredentials
from batch_revoke.job import RunConfig, run_job
from batch_revoke.model import ExitStatus, Status


def test_run_job_through_an_injected_transport(write_csv, tmp_path):
    seen: list[dict] = []

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        entries = [
            {"customerId": int(c), "issuedId": f"I{c}", "error": None} for c in body["customers"]
        ]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId\nB1,1\nB2,2\nB1,3\n")
    report = run_job(
        RunConfig(path, tmp_path / "out.csv", "https://api.invalid", BasicCredentials("u", "p")),
        transport=httpx.MockTransport(api),
    )
    assert report.exit_status is ExitStatus.OK
    assert sorted(sorted(b["customers"]) for b in seen) == [["1", "3"], ["2"]]
    with (tmp_path / "out.csv").open(newline="") as handle:
        assert [r["issued_ids"] for r in csv.DictReader(handle)] == ["I1", "I2", "I3"]


def test_refused_credentials_abort_with_exit_3_and_a_complete_file(write_csv, tmp_path):
    path = write_csv("badgeMetaId,customerId\n" + "".join(f"B{n},{n}\n" for n in range(1, 6)))
    report = run_job(
        RunConfig(
            path,
            tmp_path / "out.csv",
            "https://api.invalid",
            BasicCredentials("u", "p"),
            concurrency=1,
        ),
        transport=httpx.MockTransport(lambda request: httpx.Response(403)),
    )
    assert report.exit_status is ExitStatus.ABORTED
    assert "HTTP 403" in report.aborted
    # The refused request did nothing: its row is not_attempted like the rest, and resumable.
    assert report.tally.by_status == {Status.NOT_ATTEMPTED: 5}
    assert report.resumable


def test_failed_rows_alone_make_exit_status_1(write_csv, tmp_path):
    """No invalid or unconfirmed rows: a 404 answer is enough to say not everything went."""

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        entries = []
        for customer in body["customers"]:
            error = None if customer == "1" else {"code": 404, "message": "no issue instance"}
            entries.append({"customerId": int(customer), "issuedId": "I1", "error": error})
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId\nB1,1\nB1,2\n")
    report = run_job(
        RunConfig(path, tmp_path / "out.csv", "https://api.invalid", BasicCredentials("u", "p")),
        transport=httpx.MockTransport(api),
    )
    assert report.tally.by_status == {Status.REVOKED: 1, Status.FAILED: 1}
    assert report.exit_status is ExitStatus.NOT_ALL_REVOKED
