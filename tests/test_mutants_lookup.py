"""Customer lookups as a run makes them: one call per customer, answers kept for a resume,
the lines `-v` shows for each, why a lookup got no answer, and which rows of the input are
looked up at all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batch_revoke.client import LOOKUP_PATH, CapillaryClient, auth_for
from batch_revoke.config import RetryPolicy
from batch_revoke.credentials import BasicCredentials
from batch_revoke.errors import InputError, StorageError
from batch_revoke.identifiers import lookup_key, needs_lookup
from batch_revoke.journal import Journal
from batch_revoke.lookup import Lookups, to_look_up
from batch_revoke.model import (
    Counts,
    Endpoint,
    ErrorCode,
    IdentifierType,
    LookupAnswer,
    Mode,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.pacing import Pacer
from batch_revoke.sender import Sender
from tests.conftest import planner, records

BASE = "http://127.0.0.1:9"
LOOKUP_URL = f"{BASE}{LOOKUP_PATH}"
MOBILE, EMAIL, ID = IdentifierType.MOBILE, IdentifierType.EMAIL, IdentifierType.ID
NOT_FOUND = {
    "errors": [{"code": 816, "message": "Customer not found for organization"}],
    "warnings": [],
}


class NoWait:
    """Sleeps that take no time, on a clock only they move."""

    def __init__(self) -> None:
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_000_000.0 + self.now


def answer_by_value(customers: dict[str, httpx.Response]):
    """The API: each identifier value's answer."""

    def answer(request: httpx.Request) -> httpx.Response:
        return customers[request.url.params["identifierValue"]]

    return answer


class Run:
    """The run as the lookups tell it: the customers refused, and its calls for each answer."""

    def __init__(self) -> None:
        self.refused: list[LookupAnswer] = []

    def now(self) -> tuple[Counts, None]:
        return Counts(), None

    def lookup_refused(self, answer: LookupAnswer) -> None:
        self.refused.append(answer)


async def look_up(
    lookups: Lookups, wanted, attempts: int = 3, run: Run | None = None, concurrency: int = 2
) -> Sender:
    waits = NoWait()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = Sender(
            CapillaryClient(http, auth_for(BasicCredentials("u", "p"), http)),
            RetryPolicy(max_attempts=attempts, initial_wait=0.5, max_wait=1),
            concurrency=concurrency,
            pacer=Pacer(clock=waits.clock, wall=waits.wall, sleep=waits),
            sleep=waits,
            clock=waits.clock,
        )
        await lookups.look_up(sender, wanted, run or Run())
    return sender


def answers(
    lookups: Lookups, *named: tuple[IdentifierType, str]
) -> list[LookupAnswer | str | None]:
    rows = [
        Row(n, "B1", value, "I1", identifier_type=kind) for n, (kind, value) in enumerate(named)
    ]
    found = lookups.answers(rows)
    return [found.get(lookups.key(kind, value)) for kind, value in named]


LONG = "a-very-long-local-part-of-an-address-0123456789@example.com"


async def test_each_customer_is_asked_once_and_what_it_came_to_is_told(respx_mock, journal, caplog):
    route = respx_mock.get(LOOKUP_URL).mock(
        side_effect=answer_by_value(
            {
                "+91 99000 00013": httpx.Response(
                    200, json={"id": 7}, headers={"X-Cap-Requestid": "req-7"}
                ),
                "ana@example.com": httpx.Response(400, json=NOT_FOUND),
                "bo@x.com": httpx.Response(500, text="down"),
                LONG: httpx.Response(200, json={"profiles": []}),
            }
        )
    )
    run = Run()
    lookups = Lookups(journal)
    wanted = [
        (MOBILE, "+91 99000 00013"),
        (MOBILE, "919900000013"),  # the same customer, spelt otherwise
        (EMAIL, "ana@example.com"),
        (EMAIL, "bo@x.com"),
        (EMAIL, LONG),
    ]
    with caplog.at_level(logging.DEBUG, logger="batch_revoke.lookup"):
        sender = await look_up(lookups, wanted, run=run)
    assert route.call_count == 1 + 1 + 3 + 1  # bo@x.com tried --max-attempts times
    assert lookups.made == 4
    assert not sender.stop.requested
    found, not_found, none, odd = answers(lookups, *wanted[1:])
    assert found == LookupAnswer("7", http_status=200, request_id="req-7")
    assert not_found == LookupAnswer("", "816", "Customer not found for organization", 400)
    assert isinstance(none, str)
    assert none.startswith("customer lookup failed: ")
    assert run.refused == [not_found]  # the customer that is not there, as it is answered

    lines = {(r.levelno, r.getMessage()): r for r in caplog.records}
    one = lines[
        (
            logging.DEBUG,
            "customer lookup of mobile +91 99000 00013: HTTP 200, customer 7; "
            "X-Cap-Requestid req-7",
        )
    ]
    assert (one.event, one.request_id) == ("lookup", "req-7")
    other = lines[
        (
            logging.DEBUG,
            "customer lookup of email ana@example.com: HTTP 400, 816 Customer not "
            "found for organization",
        )
    ]
    assert (other.event, other.request_id) == ("lookup", None)
    assert (logging.INFO, f"customer lookup of email bo@x.com: no answer: {none}") in lines
    # An answer of a shape this version does not know is no answer; a long identifier is cut
    # to its first 40 characters.
    assert odd == "HTTP 200 without a customer id: '{\"profiles\":[]}'"
    said = f"customer lookup of email {LONG[:40]}"
    assert (logging.DEBUG, f"{said}: HTTP 200, {odd}") in lines
    assert (logging.INFO, f"{said}: no answer: {odd}") in lines


async def test_what_is_answered_or_refused_this_session_is_not_asked_again(respx_mock, journal):
    route = respx_mock.get(LOOKUP_URL).mock(
        side_effect=answer_by_value(
            {
                "ana@example.com": httpx.Response(200, json={"id": 7}),
                "bo@x.com": httpx.Response(500, text="down"),
            }
        )
    )
    lookups = Lookups(journal)
    wanted = [(EMAIL, "ana@example.com"), (EMAIL, "bo@x.com")]
    await look_up(lookups, wanted, attempts=1)
    assert (route.call_count, lookups.made) == (2, 2)
    await look_up(lookups, wanted)  # a read-back of these rows, later in the session
    assert (route.call_count, lookups.made) == (2, 2)
    # A resume (a new session on the same journal) asks only what got no answer.
    resumed = Lookups(journal)
    await look_up(resumed, wanted, attempts=1)
    assert (route.call_count, resumed.made) == (3, 1)


async def test_a_mobile_is_one_customer_under_the_default_region(respx_mock, journal):
    route = respx_mock.get(LOOKUP_URL).mock(return_value=httpx.Response(200, json={"id": 7}))
    lookups = Lookups(journal, "IN")
    assert lookups.key(MOBILE, "09900000013") == "mobile:919900000013"
    await look_up(lookups, [(MOBILE, "09900000013"), (MOBILE, "+91 99000 00013")])
    assert route.call_count == 1
    assert route.calls[0].request.url.params["identifierValue"] == "09900000013"


async def test_an_input_that_cannot_be_read_midway_stops_the_run_with_its_reason(
    respx_mock, journal
):
    respx_mock.get(LOOKUP_URL).mock(return_value=httpx.Response(200, json={"id": 7}))
    broken = InputError(Path("in.csv"), "line 9: invalid UTF-8")

    def wanted() -> Iterator[tuple[IdentifierType, str]]:
        yield EMAIL, "ana@example.com"
        raise broken

    lookups = Lookups(journal)
    sender = await look_up(lookups, wanted(), concurrency=1)
    assert sender.stop.reason == "in.csv: line 9: invalid UTF-8"


async def test_an_answer_the_journal_cannot_keep_stops_the_run_and_is_asked_again(
    respx_mock, journal: Journal, monkeypatch
):
    respx_mock.get(LOOKUP_URL).mock(return_value=httpx.Response(200, json={"id": 7}))

    def full(key: str, answer: LookupAnswer, *now: object) -> None:
        raise StorageError(journal.path, "No space left on device")

    monkeypatch.setattr(journal, "looked_up", full)
    lookups = Lookups(journal)
    sender = await look_up(lookups, [(EMAIL, "ana@example.com")])
    reason = str(StorageError(journal.path, "No space left on device"))
    assert sender.stop.reason == reason
    assert answers(lookups, (EMAIL, "ana@example.com")) == [reason]


# --- which rows are looked up ---------------------------------------------------------------

COLUMNS = "badgeMetaId,customerId,issueId,identifierType"


def settled(row: int) -> RowOutcome:
    return RowOutcome(row, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I1",))


def not_sent(row: int) -> RowOutcome:
    return RowOutcome(row, Status.NOT_ATTEMPTED, Endpoint.REVOKE_ISSUE, ErrorCode.LOOKUP_FAILED)


def test_only_rows_still_to_send_that_name_a_customer_otherwise_are_looked_up(journal):
    chunk = records(
        "B1,a@x.com,I1,email",  # revoked by an earlier session
        "B1,b@x.com,I1,email",  # its lookup got no answer then: asked again
        "B1,777,I1,id",  # by id: nothing to look up
        "B1,c@x.com,I1,email",  # settled in the result file `verify` reads
        "B1,not-a-mobile,I1,mobile",  # invalid: never sent
        "B1,d@x.com,I1,email",  # unconfirmed in the result file: read back by customer
        "B1,+919900000013,,mobile",
    )
    later = records("B1,e@x.com,I1,email", first=8)
    journal.record([settled(1), not_sent(2)], Counts(), None)
    earlier = [settled(4), RowOutcome(6, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE), settled(8)]
    validate = planner(COLUMNS).validate
    found = to_look_up([(chunk, earlier), (later, None)], validate, journal, lambda: False)
    assert list(found) == [
        (EMAIL, "b@x.com"),
        (EMAIL, "d@x.com"),
        (MOBILE, "919900000013"),
        (EMAIL, "e@x.com"),
    ]


def test_a_stopped_run_reads_no_further_for_lookups(journal):
    chunks = [
        (records("B1,a@x.com,I1,email"), None),
        (records("B1,b@x.com,I1,email", first=2), None),
    ]
    stops = iter([False, True])
    found = to_look_up(chunks, planner(COLUMNS).validate, journal, lambda: next(stops))
    assert list(found) == [(EMAIL, "a@x.com")]


@pytest.mark.parametrize(
    ("row", "looked_up"),
    [
        pytest.param(Row(1, "B1", "a@x.com", "I1", identifier_type=EMAIL), True, id="issuals"),
        pytest.param(Row(1, "B1", "a@x.com", identifier_type=EMAIL), True, id="customers"),
        pytest.param(Row(1, "B1", "a@x.com", "", "E1", EMAIL), False, id="earn-by-email"),
        pytest.param(Row(1, "B1", "777", "I1"), False, id="by-id"),
        pytest.param(
            Row(1, "B1", "777", "I1", identifier_type=ID, resolved=True), False, id="found"
        ),
        pytest.param(
            Row(1, "B1", "777", "I1", identifier_type=MOBILE, resolved=True), False, id="resolved"
        ),
    ],
)
def test_revoke_issue_rows_named_otherwise_than_by_id_are_looked_up(row, looked_up):
    assert row.mode in (Mode.ISSUALS, Mode.CUSTOMERS, Mode.EARN)
    assert needs_lookup(row) is looked_up


@pytest.mark.parametrize(
    ("kind", "value", "region", "key"),
    [
        pytest.param(MOBILE, "+91 (0) 99000 00013", None, "mobile:919900000013", id="mobile"),
        pytest.param(MOBILE, "09900000013", "IN", "mobile:919900000013", id="national"),
        pytest.param(EMAIL, " Ana@Example.COM", None, "email:ana@example.com", id="email"),
        pytest.param(
            IdentifierType.CARD_NUMBER, "4000 1234", None, "cardNumber:40001234", id="card"
        ),
    ],
)
def test_one_lookup_key_per_customer(kind, value, region, key):
    assert lookup_key(kind, value, region) == key


async def test_a_customer_named_again_while_its_lookup_is_out_is_asked_once(respx_mock, journal):
    """The first customer's answer is held back until the last customer is asked: it is
    named again past the first 500 customers, while its lookup is still out."""
    others = [f"c{n}@x.com" for n in range(1, 501)]
    held = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        value = request.url.params["identifierValue"]
        if value == "c0@x.com":
            asked.append(value)
            if len(asked) == 1:
                await held.wait()
        elif value == others[-1]:
            held.set()
        return httpx.Response(200, json={"id": 7})

    asked: list[str] = []
    respx_mock.get(LOOKUP_URL).mock(side_effect=answer)
    wanted = [(EMAIL, "c0@x.com"), *((EMAIL, o) for o in others[:-1])]
    wanted += [(EMAIL, others[-1]), (EMAIL, "c0@x.com")]
    lookups = Lookups(journal)
    await look_up(lookups, wanted)
    assert lookups.made == 501
    assert asked == ["c0@x.com"]


async def test_customers_are_looked_up_as_the_file_is_read_500_at_a_time(respx_mock, journal):
    """A file of many customers is not read whole before its first lookup: memory holds 500
    customers' keys at most, however many the file names."""
    read: list[str] = []
    read_at_each_call: list[int] = []

    def wanted() -> Iterator[tuple[IdentifierType, str]]:
        for n in range(1200):
            read.append(f"c{n}@x.com")
            yield EMAIL, read[-1]

    def answer(request: httpx.Request) -> httpx.Response:
        read_at_each_call.append(len(read))
        return httpx.Response(200, json={"id": 7})

    respx_mock.get(LOOKUP_URL).mock(side_effect=answer)
    lookups = Lookups(journal)
    await look_up(lookups, wanted(), concurrency=1)
    assert lookups.made == 1200
    assert read_at_each_call[0] == 500  # the first 500 customers, then their lookups
    assert read_at_each_call[500] == 1000
    assert read_at_each_call[1000] == 1200
