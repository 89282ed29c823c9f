"""X-Cap-Requestid, the id the vendor's support asks for first (the API overview documents it
on every answer, for tracing; ../shared/api-docs/README.md): the sandbox sends a unique one on
every answer, the client keeps it, and each row's result, journal entry, log lines and place
in the HTML report carry the id of the answer that decided it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest

from batch_revoke.answers.readbacks import InDoubt, read_back_verdict
from batch_revoke.answers.replies import lookup_refused
from batch_revoke.answers.rows import revoked_through
from batch_revoke.client import (
    LOOKUP_PATH,
    READ_BACK_PATH,
    REVOKE_ISSUE_PATH,
    ApiReply,
    CapillaryClient,
    TillAuth,
    lookup_request,
)
from batch_revoke.config import RetryPolicy, RunConfig
from batch_revoke.credentials import BasicCredentials
from batch_revoke.exits import JsonLines
from batch_revoke.history import read_results
from batch_revoke.html_report import write_report
from batch_revoke.journal import Journal, JournalIdentity
from batch_revoke.lookup import Lookups
from batch_revoke.model import (
    Counts,
    Endpoint,
    IdentifierType,
    LookupAnswer,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.pacing import Pacer
from batch_revoke.sandbox import RateLimitSpec
from batch_revoke.sender import Sender
from batch_revoke.source import Source
from batch_revoke.writer import RESULT_COLUMNS, result_cells, result_header
from tests.conftest import (
    HEADER,
    SAMPLE,
    cli_env,
    customers_batch,
    read_rows,
    run_cli,
    sandbox,
)

BASE = "http://127.0.0.1:9"
HEADER_NAME = "X-Cap-Requestid"  # the vendor's spelling; headers are case-insensitive
WELCOME = "654bb48766a87827bb61e631"
REVOKED_1 = {
    "data": {"revokedIssuedBadges": [{"customerId": 1, "issuedId": "I1", "error": None}]},
    "errors": [],
}

# The run, as the lookups tell it: no calls to keep, no refusal to hear of.
QUIET_RUN = SimpleNamespace(now=lambda: (Counts(), None), lookup_refused=lambda answer: None)


def answer(status: int, request_id: str, **kwargs) -> httpx.Response:
    return httpx.Response(status, headers={HEADER_NAME: request_id}, **kwargs)


async def no_wait(_seconds: float) -> None:
    return None


def sender_for(http: httpx.AsyncClient, attempts: int = 3) -> Sender:
    return Sender(
        CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))),
        RetryPolicy(max_attempts=attempts),
        pacer=Pacer(sleep=no_wait),
        sleep=no_wait,
    )


class Kept:
    """A recorder that keeps the outcomes."""

    def __init__(self) -> None:
        self.outcomes: list[RowOutcome] = []

    def sending(self, batch) -> None: ...

    def sending_again(self, batch) -> None: ...

    def nothing_done(self, batch) -> None: ...

    def abandoned(self, batch) -> None: ...

    def answered(self, batch, outcomes: list[RowOutcome]) -> None:
        self.outcomes.extend(outcomes)


async def outcomes_of(respx_mock, *answers: httpx.Response, attempts: int = 3):
    respx_mock.post(f"{BASE}{REVOKE_ISSUE_PATH}").mock(side_effect=list(answers))
    kept = Kept()
    async with httpx.AsyncClient(base_url=BASE) as http:
        await sender_for(http, attempts).send_recorded(customers_batch("1", "2"), kept)
    return kept.outcomes


# --- the client keeps it, the answers hand it to the rows they decide --------------------


async def test_a_reply_keeps_the_answers_request_id(respx_mock):
    respx_mock.get(f"{BASE}{LOOKUP_PATH}").mock(return_value=answer(200, "r-1", json={"id": 7}))
    async with httpx.AsyncClient(base_url=BASE) as http:
        client = CapillaryClient(http, TillAuth(BasicCredentials("u", "p")))
        reply = await client.send(lookup_request(IdentifierType.EMAIL, "a@b.c"))
    assert reply.request_id == "r-1"


async def test_each_row_has_the_id_of_the_answer_that_decided_it(respx_mock, caplog):
    with caplog.at_level(logging.DEBUG, logger="batch_revoke"):
        outcomes = await outcomes_of(
            respx_mock, answer(503, "busy-1"), answer(200, "final-2", json=REVOKED_1)
        )
    assert [(o.status, o.request_id) for o in outcomes] == [
        (Status.REVOKED, "final-2"),
        (Status.UNCONFIRMED, "final-2"),  # not in the answer: the same answer decided it
    ]
    # -v: the retry line names the answer that did nothing, the request line the final one.
    retry = next(r for r in caplog.records if getattr(r, "event", "") == "retry")
    assert retry.request_id == "busy-1"
    assert "busy-1" in retry.getMessage()
    request = next(r for r in caplog.records if getattr(r, "event", "") == "request")
    assert request.request_id == "final-2"
    assert "final-2" in request.getMessage()


async def test_rows_whose_retries_ran_out_have_the_last_answers_id(respx_mock):
    outcomes = await outcomes_of(
        respx_mock, answer(500, "a"), answer(500, "b"), answer(500, "c"), attempts=3
    )
    assert {(o.status, o.error_code, o.request_id) for o in outcomes} == {
        (Status.UNCONFIRMED, "http_500", "c")
    }


async def test_rows_no_answer_decided_have_none(respx_mock):
    outcomes = await outcomes_of(respx_mock, httpx.ConnectError("refused"), attempts=1)
    assert {(o.status, o.request_id) for o in outcomes} == {(Status.FAILED, "")}


async def test_a_customer_not_found_has_the_lookups_id(respx_mock, journal, caplog):
    not_found = {"errors": [{"code": 816, "message": "Customer not found for organization"}]}
    respx_mock.get(f"{BASE}{LOOKUP_PATH}").mock(
        return_value=answer(400, "lookup-9", json=not_found)
    )
    lookups = Lookups(journal)
    with caplog.at_level(logging.DEBUG, logger="batch_revoke"):
        async with httpx.AsyncClient(base_url=BASE) as http:
            await lookups.look_up(sender_for(http), [(IdentifierType.EMAIL, "a@b.c")], QUIET_RUN)
    row = Row(1, "B", "a@b.c", identifier_type=IdentifierType.EMAIL)
    (found,) = lookups.answers([row]).values()
    assert isinstance(found, LookupAnswer)
    assert lookup_refused(row, found).request_id == "lookup-9"
    said = [r for r in caplog.records if getattr(r, "request_id", None) == "lookup-9"]
    assert said
    assert "lookup-9" in said[0].getMessage()


def test_a_row_settled_by_read_back_has_the_read_backs_id():
    lost = RowOutcome(1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "lost", (), None, 1)
    item = InDoubt(Row(1, "B1", "777", "I1"), lost, None)
    issuals = [{"issueId": "I1", "issuedStatus": "REVOKED", "revokedOn": 1.0}]
    body = {"data": {"issualDetails": {"issuals": issuals}, "earnDetails": {"earns": []}}}
    settled = read_back_verdict(item, ApiReply(200, body, "", None, 1, "read-back-5"))
    assert isinstance(settled, RowOutcome)
    assert (settled.status, settled.request_id) == (Status.REVOKED, "read-back-5")


def test_a_row_revoked_through_a_covering_row_has_that_rows_id():
    covering = RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I1", "I2"))
    through = revoked_through(Row(5, "B", "1", "I2"), 1, replace(covering, request_id="cov"))
    assert through is not None
    assert through.request_id == "cov"


# --- the result file, the journal, the report and the logs keep it -----------------------


def test_the_result_file_has_a_request_id_column_and_fed_back_in_it_is_input_request_id():
    assert RESULT_COLUMNS[-1] == "request_id"
    outcome = RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, request_id="r-7")
    assert result_cells(outcome)[-1] == "r-7"
    header = result_header(["badgeMetaId", "customerId", *RESULT_COLUMNS])
    assert header.count("request_id") == 1
    assert "input_request_id" in header


def test_a_result_file_read_back_keeps_each_rows_request_id(write_csv):
    cells = ["B", "1", "1", "revokeIssue", "revoked", "", "", "I1", "200", "1", "", "r-3"]
    path = write_csv(
        ",".join(["badgeMetaId", "customerId", *RESULT_COLUMNS]) + "\n" + ",".join(cells) + "\n"
    )
    source = Source.open(RunConfig(path, input_is_result=True), whole=True)
    assert source.columns == ("badgeMetaId", "customerId")
    ((_, (outcome,)),) = list(source.chunks())
    assert outcome.request_id == "r-3"
    plain = Source.open(RunConfig(path), whole=True)  # fed to `run`: input columns all
    assert plain.columns[-1] == RESULT_COLUMNS[-1]


IDENTITY = JournalIdentity("0" * 64, {"host": "https://eu.example", "batch_size": "20"})


def test_the_journal_keeps_the_ids_so_a_resumed_run_writes_them(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, IDENTITY)
    decided = RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, request_id="r-1")
    journal.record([decided], Counts(), None)
    journal.looked_up(
        "email:a@b.c", LookupAnswer("", "816", "not found", 400, "r-2"), Counts(), None
    )
    journal.close()
    again = Journal.resume(path, IDENTITY)
    assert again.outcome(1) == decided
    assert again.lookups(["email:a@b.c"])["email:a@b.c"].request_id == "r-2"
    again.close()


def test_json_log_lines_carry_the_request_id():
    record = logging.makeLogRecord({"msg": "request 1", "event": "request", "request_id": "r-1"})
    assert json.loads(JsonLines().format(record))["request_id"] == "r-1"


# --- end to end: the sandbox's ids, in the result file and its report --------------------


def answered_ids(running) -> dict[str, str]:
    """Every id the sandbox answered with, and the path it answered."""
    return {entry.request_id: entry.path for entry in running.answers}


@pytest.mark.e2e
def test_the_sandbox_sends_a_unique_id_on_every_answer():
    from batch_revoke.client import basic_header

    one_window = RateLimitSpec.parse(
        "5/1000000000s"
    )  # windows align to the epoch: none ends before 2033
    with sandbox("503:#2", rate_limit=one_window) as (running, _state):
        good = {"Authorization": basic_header(running.credentials)}
        with httpx.Client(base_url=running.base_url) as http:
            token = {"key": "demo-key", "secret": "demo-secret"}
            got = [
                http.post("/v3/oauth/token/generate", json=token),
                http.post("/v3/oauth/token/generate", json={"key": "x", "secret": "y"}),
                http.post(REVOKE_ISSUE_PATH, json={}),  # no credentials: 401
                http.get(
                    LOOKUP_PATH,
                    params={"source": "INSTORE", "identifierName": "mobile"},
                    headers=good,
                ),  # 400
                http.post(REVOKE_ISSUE_PATH, json={"badgeMetaId": "B"}, headers=good),  # fault 503
                http.get(READ_BACK_PATH.format(customerId="1", badgeMetaId=WELCOME), headers=good),
                http.get("/no/such/route", headers=good),  # 404
                http.post(REVOKE_ISSUE_PATH, json={"badgeMetaId": "B"}, headers=good),  # 400
                http.post(REVOKE_ISSUE_PATH, json={"badgeMetaId": "B"}, headers=good),  # 429
            ]
            logged = list(running.requests)
            known = answered_ids(running)
    assert [a.status_code for a in got] == [200, 401, 401, 400, 503, 200, 404, 400, 429]
    ids = [a.headers.get(HEADER_NAME, "") for a in got]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)
    assert set(ids) <= set(known)
    # The request log names each revoke and lookup by the id of its answer.
    assert [entry.request_id for entry in logged] == [ids[3], ids[4], ids[7], ids[8]]


@pytest.mark.e2e
def test_every_decided_row_has_the_id_of_the_answer_that_decided_it(tmp_path, write_csv):
    path = write_csv(
        HEADER
        + "\n"
        + f"{WELCOME},123,,,\n"  # revoked by a revokeIssue
        + f"{WELCOME},919900099999,,,mobile\n"  # no such customer: the lookup decided
        + f"{WELCOME},777,654cc0456bccde1274b6d3b4,,\n"  # its answer lost: the read-back
        + f"{WELCOME},,,,\n"  # invalid: nothing answered it
    )
    out = tmp_path / "out.csv"
    # Calls: #1 the lookup, then the revokes; the apply-drop is the revokeIssuals request.
    with sandbox("apply-drop:#3") as (running, _state):
        done = run_cli(
            running, str(path), "-o", str(out), "--batch-size", "1", "--concurrency", "1"
        )
        known = answered_ids(running)
        logged = {entry.number: entry for entry in running.requests}
    assert done.returncode == 1, done.stderr
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["revoked", "failed", "revoked", "invalid"]
    assert known[rows[0]["request_id"]] == REVOKE_ISSUE_PATH
    assert rows[0]["request_id"] == logged[2].request_id
    assert known[rows[1]["request_id"]] == LOOKUP_PATH
    assert "confirmed by read-back" in rows[2]["error_message"]
    assert known[rows[2]["request_id"]].startswith("/api_gateway/v1/badges/management/777/")
    assert rows[3]["request_id"] == ""
    # The report lists the rows that need a person with their ids.
    html = write_report(out, tmp_path / "report.html").read_text(encoding="utf-8")
    assert rows[1]["request_id"] in html
    (group,) = [g for g in read_results(out).groups if g.code == "816"]
    assert group.shown[0].request_id == rows[1]["request_id"]


@pytest.mark.e2e
def test_a_resumed_run_writes_the_ids_of_the_answers_its_first_session_got(tmp_path, write_csv):
    path = write_csv(HEADER + "\n" + "\n".join(f"{WELCOME},{c},,," for c in (123, 777)) + "\n")
    out = tmp_path / "out.csv"
    args = (str(path), "-o", str(out), "--batch-size", "1", "--concurrency", "1")
    # #1 revokes the first row; #2 and #3 say nothing was done, long enough to stop the run.
    with sandbox("503:#2,#3") as (running, _state):
        first = run_cli(running, *args, "--max-throttle-wait", "0.5")
        assert first.returncode == 3, first.stderr
        resumed = run_cli(running, *args, "--resume")
        logged = {entry.number: entry for entry in running.requests}
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["revoked", "revoked"]
    assert [r["request_id"] for r in rows] == [logged[1].request_id, logged[4].request_id]


@pytest.mark.e2e
def test_the_json_log_names_each_answers_id(tmp_path):
    with sandbox() as (running, _state):
        done = subprocess.run(
            [
                *(sys.executable, "-m", "batch_revoke", "--log-format", "json", "-v", "run"),
                *(str(SAMPLE), "-o", str(tmp_path / "out.csv")),
            ],
            capture_output=True,
            text=True,
            env=cli_env(running),
            timeout=120,
            check=False,
        )
        known = answered_ids(running)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert requests
    for line in requests:
        assert known.get(line["request_id"]) is not None
        assert line["request_id"] in line["message"]
