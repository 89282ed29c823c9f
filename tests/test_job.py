"""The importable core, with HTTP swapped through the transport seam."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import httpx
import pytest

from batch_revoke.config import ErrorLimit, RetryPolicy
from batch_revoke.credentials import BasicCredentials
from batch_revoke.job import RunConfig, RunReport, run_job
from batch_revoke.model import ExitStatus, IdentifierType, Status


def mocked_run(path, tmp_path, api, **options) -> tuple[RunReport, list[dict[str, str]]]:
    """A run against a mock API; the report and the result file's rows."""
    report = run_job(
        RunConfig(
            path,
            tmp_path / "out.csv",
            "https://api.invalid",
            BasicCredentials("u", "p"),
            concurrency=1,
            **options,
        ),
        transport=httpx.MockTransport(api),
    )
    with (tmp_path / "out.csv").open(newline="") as handle:
        return report, list(csv.DictReader(handle))


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
    report, _ = mocked_run(path, tmp_path, lambda request: httpx.Response(403))
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


def test_a_row_covered_by_a_broader_row_is_settled_even_when_the_run_stops(write_csv, tmp_path):
    """Row 2 waits for row 1 (every enrolment of the customer); row 3's 404 reaches
    --max-errors 1 and stops the run: row 2 is still revoked through row 1, not 'not sent'."""

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        (customer,) = body["customers"]
        if body["badgeMetaId"] == "B":
            entries = [
                {"customerId": int(customer), "issuedId": i, "error": None} for i in ("I1", "I2")
            ]
        else:
            entries = [{"customerId": int(customer), "error": {"code": 404, "message": "none"}}]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId,issueId\nB,7,\nB,7,I1\nB2,8,\nB3,9,\n")
    report, rows = mocked_run(path, tmp_path, api, max_errors=ErrorLimit.parse("1"))
    assert "--max-errors 1 reached" in report.aborted
    assert [(r["status"], r["issued_ids"]) for r in rows] == [
        ("revoked", "I1;I2"),
        ("revoked", "I1"),
        ("failed", ""),
        ("not_attempted", ""),
    ]
    assert "through row 1" in rows[1]["error_message"]


def test_a_customers_row_later_in_the_file_that_revoked_first_is_credited(write_csv, tmp_path):
    """Row 1 (one enrolment) comes before row 2 (every enrolment of the customer), so it does
    not wait; row 3 fills the customers request, which goes first and takes I1 too. Row 1's
    404 is then revoked through row 2, not a failure."""
    active = {"I1", "I2", "I3"}

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        entries: list[dict[str, object]] = []
        for item in body.get("revokeIssuals", []):
            if item["issueId"] in active:
                active.discard(item["issueId"])
                entries.append({"customerId": 7, "issuedId": item["issueId"], "error": None})
            else:
                entries.append({"customerId": 7, "error": {"code": 404, "message": "none"}})
        for customer in body.get("customers", []):
            mine = sorted(active & ({"I1", "I2"} if int(customer) == 7 else {"I3"}))
            active.difference_update(mine)
            entries += [{"customerId": int(customer), "issuedId": i, "error": None} for i in mine]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId,issueId\nB,7,I1\nB,7,\nB,8,\n")
    report, rows = mocked_run(path, tmp_path, api, batch_size=2)
    assert report.exit_status is ExitStatus.OK
    assert [(r["status"], r["issued_ids"]) for r in rows] == [
        ("revoked", "I1"),
        ("revoked", "I1;I2"),
        ("revoked", "I3"),
    ]
    assert "through row 2" in rows[0]["error_message"]


def test_the_python_api_takes_text_and_refuses_wrong_types_at_once(write_csv, tmp_path):
    import asyncio

    import pytest

    from batch_revoke import RateLimit, RunConfig, run_job, run_job_async
    from batch_revoke.errors import ConfigError

    path = write_csv("badgeMetaId,customerId\nB,1\n")
    config = RunConfig(str(path), str(tmp_path / "out.csv"), dry_run=True, rate_limit="100/min")
    assert config.input_path == path
    assert config.rate_limit == RateLimit.parse("100/min")
    with pytest.raises(TypeError, match="input_path must be a path"):
        RunConfig(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rate_limit"):
        RunConfig(path, rate_limit=100)  # type: ignore[arg-type]

    async def inside_a_loop() -> None:
        with pytest.raises(ConfigError, match="await run_job_async"):
            run_job(config)
        report = await run_job_async(config)
        assert report.exit_status is ExitStatus.OK

    asyncio.run(inside_a_loop())
    assert not (tmp_path / "out.csv.journal").exists()


def test_the_python_api_refuses_an_unknown_setting_as_the_cli_does_naming_the_choices(tmp_path):
    """A value of the right type that is not one of the choices is a ConfigError (exit 2 on
    the command line), as the CLI's own checks give, never a TypeError."""
    import pytest

    from batch_revoke import ErrorLimit, RunConfig
    from batch_revoke.errors import ConfigError

    path = tmp_path / "in.csv"
    with pytest.raises(ConfigError) as raised:
        RunConfig(path, identifier_type="phone")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "identifier_type 'phone' is unknown; use one of id, mobile, email, externalId, cardNumber"
    )
    spelled = RunConfig(path, identifier_type=" MOBILE")  # type: ignore[arg-type]
    assert spelled.identifier_type is IdentifierType.MOBILE
    with pytest.raises(TypeError, match="identifier_type"):
        RunConfig(path, identifier_type=5)  # type: ignore[arg-type]
    # --max-errors takes "N" or "N%": so does max_errors, parsed at once, not mid-run.
    share = RunConfig(path, max_errors="5%")  # type: ignore[arg-type]
    assert share.max_errors == ErrorLimit(percent=5.0)
    assert RunConfig(path, max_errors=50).max_errors == ErrorLimit(count=50)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--max-errors 'lots' is not a number of rows"):
        RunConfig(path, max_errors="lots")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_errors"):
        RunConfig(path, max_errors=[5])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not a region code"):
        RunConfig(path, default_region="India")
    with pytest.raises(TypeError, match="default_region"):
        RunConfig(path, default_region=91)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cluster 'europe' is unknown; use one of eu, "):
        RunConfig(path, cluster="europe")


class Api:
    """A mock API that keeps what it revoked and answers read-backs from it; `broken`
    customers make the transport raise an unexpected error on their revokes."""

    def __init__(self, broken: frozenset[str] = frozenset()) -> None:
        self.broken = broken
        self.revoked: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            customer = request.url.path.split("/management/")[1].split("/")[0]
            gone = customer in self.revoked
            issual = {
                "issueId": f"I{customer}",
                "issuedStatus": "REVOKED" if gone else "ACTIVE",
                "revokedOn": "2100-01-01T00:00:00Z" if gone else None,
            }
            details = {"issualDetails": {"issuals": [issual]}, "earnDetails": {"earns": []}}
            return httpx.Response(200, json={"data": details, "errors": []})
        customers = json.loads(request.content)["customers"]
        if self.broken.intersection(customers):
            raise RuntimeError(f"transport broke on {', '.join(customers)}")
        self.revoked.update(customers)
        entries = [{"customerId": int(c), "issuedId": f"I{c}", "error": None} for c in customers]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})


FIVE = "badgeMetaId,customerId\n" + "".join(f"B,{n}\n" for n in range(1, 6))


def test_an_unexpected_error_on_one_request_is_its_rows_outcome(write_csv, tmp_path):
    path = write_csv(FIVE)
    api = Api(broken=frozenset({"3"}))
    report, rows = mocked_run(path, tmp_path, api, batch_size=1)
    assert not report.aborted
    assert report.exit_status is ExitStatus.NOT_ALL_REVOKED
    assert [(r["status"], r["error_code"]) for r in rows] == [("revoked", "")] * 2 + [
        ("unconfirmed", "client_error")
    ] + [("revoked", "")] * 2
    assert "RuntimeError: transport broke on 3" in rows[2]["error_message"]
    assert report.tally.read_backs == 3  # three rounds: read back (still active), sent again
    # The run finished: a resume sends nothing and writes the same result.
    again, same = mocked_run(path, tmp_path, api, batch_size=1, resume=True)
    assert again.exit_status is ExitStatus.NOT_ALL_REVOKED
    assert same == rows


def test_a_journal_that_fails_unexpectedly_stops_the_run_resumably(
    write_csv, tmp_path, monkeypatch
):
    from batch_revoke.journal import Journal

    answered = Journal.answered
    calls = []

    def failing(self, batch, outcomes, *rest):
        calls.append(batch.number)
        if len(calls) == 2:
            raise RuntimeError("database is odd")
        answered(self, batch, outcomes, *rest)

    monkeypatch.setattr(Journal, "answered", failing)
    path = write_csv(FIVE)
    api = Api()
    report, rows = mocked_run(path, tmp_path, api, batch_size=1)
    assert report.exit_status is ExitStatus.ABORTED
    assert "went wrong: RuntimeError: database is odd" in report.aborted
    assert not report.incomplete  # the result file is written, and says what happened
    statuses = [r["status"] for r in rows]
    assert statuses.count("unconfirmed") == 1  # the request whose answer was not recorded
    monkeypatch.setattr(Journal, "answered", answered)
    report, rows = mocked_run(path, tmp_path, api, batch_size=1, resume=True)
    assert report.exit_status is ExitStatus.OK
    assert [r["status"] for r in rows] == ["revoked"] * 5


def test_an_unexpected_error_after_the_sends_still_writes_the_result(
    write_csv, tmp_path, monkeypatch
):
    from batch_revoke.plan import Plan

    def failing(plan):
        raise RuntimeError("late bug")

    monkeypatch.setattr(Plan, "give_up_deferred", failing)
    path = write_csv(FIVE)
    report, rows = mocked_run(path, tmp_path, Api())
    assert report.exit_status is ExitStatus.ABORTED
    assert report.aborted.startswith("the run went wrong: RuntimeError: late bug")
    assert [r["status"] for r in rows] == ["revoked"] * 5


def test_a_result_file_that_cannot_be_written_is_left_incomplete_and_resumable(
    write_csv, tmp_path, monkeypatch
):
    import batch_revoke.realrun

    write_results = batch_revoke.realrun.write_results

    def failing(*args, **kwargs):
        raise RuntimeError("writer bug")

    monkeypatch.setattr(batch_revoke.realrun, "write_results", failing)
    path = write_csv(FIVE)
    config = RunConfig(
        path, tmp_path / "out.csv", "https://api.invalid", BasicCredentials("u", "p")
    )
    api = Api()
    report = run_job(config, transport=httpx.MockTransport(api))
    assert report.incomplete
    assert report.exit_status is ExitStatus.ABORTED
    assert "writing the result file went wrong: RuntimeError: writer bug" in report.aborted
    assert report.tally.by_status == {Status.REVOKED: 5}  # counted from the journal
    assert (tmp_path / "out.csv").read_text().startswith("INCOMPLETE")
    monkeypatch.setattr(batch_revoke.realrun, "write_results", write_results)
    report, rows = mocked_run(path, tmp_path, api, resume=True)
    assert report.exit_status is ExitStatus.OK
    assert [r["status"] for r in rows] == ["revoked"] * 5


def _earn_814(request: httpx.Request) -> httpx.Response:
    error = {"code": 814, "message": "Active earn instance is not present", "reference": None}
    return httpx.Response(400, json={"data": None, "errors": [error]})


def _earn_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


def _earn_still_active(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    data = {**body, "isActive": True}
    return httpx.Response(200, json={"data": data, "errors": []})


@pytest.mark.parametrize(
    ("api", "status"),
    [
        pytest.param(_earn_814, "failed", id="failed"),
        pytest.param(_earn_timeout, "unconfirmed", id="answer-lost"),
        pytest.param(_earn_still_active, "unconfirmed", id="answer-unclear"),
    ],
)
def test_max_errors_counts_every_row_sent_and_not_revoked(write_csv, tmp_path, api, status):
    """A row whose answer was lost is not revoked as far as anyone knows: it counts."""
    path = write_csv(
        "badgeMetaId,customerId,earnedBadgeId\n" + "".join(f"B,{n},E{n}\n" for n in range(1, 6))
    )
    report, rows = mocked_run(
        path,
        tmp_path,
        api,
        max_errors=ErrorLimit.parse("2"),
        retry=RetryPolicy(max_attempts=1),
        verify=False,
    )
    assert "--max-errors 2 reached: 2 of 2 rows sent were not revoked" in report.aborted
    assert report.exit_status is ExitStatus.ABORTED
    assert [r["status"] for r in rows] == [status, status] + ["not_attempted"] * 3


def test_a_row_whose_answer_is_lost_twice_is_still_settled_by_read_back(write_csv, tmp_path):
    """Lost, read back (still active), sent again, lost again (but applied this time): the
    second read-back settles it, it is not left unconfirmed."""
    sends: list[str] = []
    revoked: set[str] = set()

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gone = "7" in revoked
            issual = {
                "issueId": "I7",
                "issuedStatus": "REVOKED" if gone else "ACTIVE",
                "revokedOn": "2100-01-01T00:00:00Z" if gone else None,
            }
            details = {"issualDetails": {"issuals": [issual]}, "earnDetails": {"earns": []}}
            return httpx.Response(200, json={"data": details, "errors": []})
        sends.append(request.content.decode())
        if len(sends) == 2:
            revoked.add("7")  # applied, and then the answer is lost
        raise httpx.ReadTimeout("no answer", request=request)

    path = write_csv("badgeMetaId,customerId\nB,7\n")
    report, rows = mocked_run(path, tmp_path, api, retry=RetryPolicy(max_attempts=1))
    assert len(sends) == 2
    assert report.tally.read_backs == 2
    assert [(r["status"], r["issued_ids"]) for r in rows] == [("revoked", "I7")]
    assert "confirmed by read-back" in rows[0]["error_message"]


def test_an_issue_row_refused_for_its_own_reason_is_not_blamed_on_a_later_customers_row(
    write_csv, tmp_path
):
    """Only "not there" (404, 814) can be a later customers row's doing: a 1051 is the API's
    answer about this row, and stays failed even while that row's answer is not in."""

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(500, text="read-back unavailable")
        body = json.loads(request.content)
        entries: list[dict[str, object]] = [
            {"customerId": 7, "issuedId": item["issueId"], "error": {"code": 1051, "message": "x"}}
            for item in body.get("revokeIssuals", [])
        ]
        entries += [
            {"customerId": int(c), "issuedId": "I2", "error": None}
            for c in body.get("customers", [])
        ]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId,issueId\nB,7,I1\nB,7,\n")
    _, rows = mocked_run(path, tmp_path, api, retry=RetryPolicy(max_attempts=1))
    assert [(r["status"], r["error_code"]) for r in rows] == [("failed", "1051"), ("revoked", "")]


def test_a_covering_row_whose_answer_echoes_the_issue_id_as_a_number_settles_the_row(
    write_csv, tmp_path
):
    """Row 2 (issue 0042) waits for row 1 (every enrolment of customer 7), whose answer lists
    the enrolment as the number 42: the same enrolment, so row 2 is revoked through row 1."""
    issue_requests: list[object] = []

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        issue_requests.extend(body.get("revokeIssuals", []))
        entries: list[dict[str, object]] = [
            {"customerId": 7, "error": {"code": 404, "message": "none"}}
            for _ in body.get("revokeIssuals", [])
        ]
        entries += [
            {"customerId": int(c), "issuedId": 42, "error": None} for c in body.get("customers", [])
        ]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId,issueId\nB,7,\nB,7,0042\n")
    _, rows = mocked_run(path, tmp_path, api)
    assert [(r["status"], r["issued_ids"]) for r in rows] == [
        ("revoked", "42"),
        ("revoked", "0042"),
    ]
    assert "through row 1" in rows[1]["error_message"]
    assert issue_requests == []  # never sent on its own


def test_resume_sends_again_the_rows_whose_every_answer_did_nothing(write_csv, tmp_path):
    """Connection refused until --max-errors stops the run: those rows were not applied, so
    --resume sends them again rather than keep their failure."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    path = write_csv(FIVE)
    report, rows = mocked_run(
        path,
        tmp_path,
        refused,
        batch_size=1,
        retry=RetryPolicy(max_attempts=1),
        max_errors=ErrorLimit.parse("1"),
    )
    assert report.exit_status is ExitStatus.ABORTED
    assert (rows[0]["status"], rows[0]["error_code"]) == ("failed", "connection_error")
    report, rows = mocked_run(path, tmp_path, Api(), batch_size=1, resume=True)
    assert report.exit_status is ExitStatus.OK
    assert [r["status"] for r in rows] == ["revoked"] * 5


def test_a_row_waits_until_the_read_back_settles_its_covering_row(write_csv, tmp_path):
    """Row 1 (every enrolment of customer 7) is applied but its answer lost; row 2 (I1) waits
    for it, not for its answer: the read-back shows I1 revoked, so row 2 is revoked through
    row 1 and never sent (sent, the API would say 404)."""
    active = {"I1", "I2"}
    issue_requests: list[object] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            issuals = [
                {
                    "issueId": i,
                    "issuedStatus": "ACTIVE" if i in active else "REVOKED",
                    "revokedOn": None if i in active else "2100-01-01T00:00:00Z",
                }
                for i in ("I1", "I2")
            ]
            details = {"issualDetails": {"issuals": issuals}, "earnDetails": {"earns": []}}
            return httpx.Response(200, json={"data": details, "errors": []})
        body = json.loads(request.content)
        entries: list[dict[str, object]] = []
        for item in body.get("revokeIssuals", []):
            issue_requests.append(item)
            error = None if item["issueId"] in active else {"code": 404, "message": "none"}
            active.discard(item["issueId"])
            entries.append({"customerId": 7, "issuedId": item["issueId"], "error": error})
        if body.get("customers"):
            active.clear()
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    path = write_csv("badgeMetaId,customerId,issueId\nB,7,\nB,7,I1\n")
    _, rows = mocked_run(path, tmp_path, api, retry=RetryPolicy(max_attempts=1))
    assert [(r["status"], r["issued_ids"]) for r in rows] == [
        ("revoked", "I1;I2"),
        ("revoked", "I1"),
    ]
    assert "through row 1" in rows[1]["error_message"]
    assert issue_requests == []


def test_the_documented_option_defaults_are_the_librarys():
    """One definition of every default: the options reference says what RunConfig does."""
    reference = Path(__file__).resolve().parent.parent / "docs" / "reference" / "cli.md"
    readme = reference.read_text(encoding="utf-8")
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    defaults |= dataclasses.asdict(RetryPolicy())  # --max-attempts, --max-throttle-wait
    documented = dict(re.findall(r"^\| `--([a-z-]+)[^`]*` \| (\d+) \|", readme, re.MULTILINE))
    numeric = {
        name: value
        for name, value in documented.items()
        if name.replace("-", "_") in defaults and name not in {"port", "seed"}
    }
    assert {"max-unanswered", "max-attempts", "concurrency", "timeout"} <= set(numeric)
    for name, value in numeric.items():
        assert defaults[name.replace("-", "_")] == float(value), f"--{name}"
