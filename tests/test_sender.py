"""The sender: retries, Retry-After, definite vs unknown outcomes, abort, rate limit."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import httpx
import pytest

from batch_revoke.client import (
    LOOKUP_PATH,
    REVOKE_EARN_PATH,
    REVOKE_ISSUE_PATH,
    TOKEN_PATH,
    CapillaryClient,
    TillAuth,
    auth_for,
)
from batch_revoke.config import RetryPolicy
from batch_revoke.credentials import BasicCredentials, Credentials, OAuthCredentials
from batch_revoke.lookup import Lookups
from batch_revoke.model import Batch, Counts, IdentifierType, LookupAnswer, Mode, Row, Status
from batch_revoke.pacing import Pacer
from batch_revoke.sender import Sender
from tests.conftest import customers_batch, earn_batch

BASE = "http://127.0.0.1:9"
TILL = BasicCredentials("u", "p")
ISSUE_URL = f"{BASE}{REVOKE_ISSUE_PATH}"
EARN_URL = f"{BASE}{REVOKE_EARN_PATH}"
REVOKED_1 = {
    "data": {"revokedIssuedBadges": [{"customerId": 1, "issuedId": "I1", "error": None}]},
    "errors": [],
}
NOT_ISSUED_1 = {
    "data": {
        "revokedIssuedBadges": [
            {
                "customerId": 1,
                "error": {"code": 404, "message": "Customer doesn't have issue instance"},
            }
        ]
    },
    "errors": [],
}


class Recorded:
    """A recorder that keeps what the sender reports."""

    def __init__(self) -> None:
        self.outcomes: list = []
        self.sent: list[int] = []
        self.dropped: list[int] = []
        self.said: list[str] = []  # what the journal hears, in order, from the first attempt
        self.sent_again: list[int] = []  # later attempts announced, for the journal's count

    def sending(self, batch: Batch) -> None:
        self.sent.append(batch.number)
        self.said.append("sending")

    def answered(self, batch: Batch, outcomes: list) -> None:
        self.outcomes.extend(outcomes)

    def abandoned(self, batch: Batch) -> None:
        self.dropped.append(batch.number)

    def nothing_done(self, batch: Batch) -> None:
        self.said.append("nothing done")

    def sending_again(self, batch: Batch) -> None:
        self.sent_again.append(batch.number)
        self.said.append("sending again")  # from here on it may be applied


class Sleeps:
    """Records the waits the sender asks for, without waiting: a fake clock they move."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_000_000.0 + self.now


def make_sender(
    http: httpx.AsyncClient,
    sleeps: Sleeps,
    attempts: int = 5,
    throttle_wait: float = 1800.0,
    credentials: Credentials = TILL,
) -> Sender:
    policy = RetryPolicy(
        max_attempts=attempts, initial_wait=0.5, max_wait=30, max_throttle_wait=throttle_wait
    )
    return Sender(
        CapillaryClient(http, auth_for(credentials, http)),
        policy,
        pacer=Pacer(clock=sleeps.clock, wall=sleeps.wall, sleep=sleeps),
        sleep=sleeps,
        clock=sleeps.clock,
    )


async def outcomes_of(sender: Sender, batch: Batch) -> list:
    """One batch sent to the end as a run sends it: its outcomes as the recorder heard them."""
    recorded = Recorded()
    await sender.send_recorded(batch, recorded)
    assert recorded.sent == [batch.number]
    return recorded.outcomes


async def send(batch: Batch, attempts: int = 5, sleeps: Sleeps | None = None) -> list:
    async with httpx.AsyncClient(base_url=BASE) as http:
        return await outcomes_of(make_sender(http, sleeps or Sleeps(), attempts), batch)


async def test_429_honours_retry_after_then_succeeds(respx_mock):
    route = respx_mock.post(ISSUE_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json=REVOKED_1),
        ]
    )
    sleeps = Sleeps()
    (outcome,) = await send(customers_batch("1"), attempts=1, sleeps=sleeps)
    # 429s never use up --max-attempts (1 here); the pauses are what the server asked.
    assert (outcome.status, outcome.attempts, outcome.issued_ids) == (Status.REVOKED, 3, ("I1",))
    assert 9.0 <= sleeps.now < 10.0
    assert route.call_count == 3


async def test_backoff_without_retry_after_grows_with_jitter(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.Response(503)] * 4 + [httpx.Response(200, json=REVOKED_1)]
    )
    sleeps = Sleeps()
    (outcome,) = await send(customers_batch("1"), sleeps=sleeps)
    assert outcome.status is Status.REVOKED
    assert len(sleeps.waits) == 4
    # wait_exponential_jitter(0.5): 0.5 * 2**n plus up to 1 s of jitter
    for n, wait in enumerate(sleeps.waits):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 1


@pytest.mark.parametrize("status", [429, 503, 521])
async def test_answers_that_did_nothing_never_use_up_attempts(respx_mock, status):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.Response(status)] * 6 + [httpx.Response(200, json=REVOKED_1)]
    )
    (outcome,) = await send(customers_batch("1"), attempts=2)
    assert (outcome.status, outcome.attempts) == (Status.REVOKED, 7)


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param([500, 429, 200], id="500-429"),
        pytest.param([429, 500, 200], id="429-500"),
        pytest.param([503, 503, 502, 200], id="503-503-502"),
    ],
)
async def test_every_attempt_is_announced_so_the_journal_counts_the_sends(respx_mock, answers):
    """The first attempt as `sending`, each later one as `sending_again`: the journal's
    count is the outcome's attempts."""
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.Response(s, json=REVOKED_1 if s == 200 else {}) for s in answers]
    )
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        await make_sender(http, Sleeps()).send_recorded(customers_batch("1"), recorded)
    (outcome,) = recorded.outcomes
    assert outcome.attempts == len(answers)
    assert len(recorded.sent) + len(recorded.sent_again) == len(answers)


@pytest.mark.parametrize("status", [429, 503, 521])
async def test_answers_that_did_nothing_are_bounded_by_time(respx_mock, status):
    respx_mock.post(ISSUE_URL).mock(return_value=httpx.Response(status))
    sleeps = Sleeps()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, sleeps, attempts=2, throttle_wait=600.0)
        recorded = Recorded()
        await sender.send_recorded(customers_batch("1"), recorded)
    # Stopped while every answer said nothing was done: no outcome, the rows not sent.
    assert (recorded.sent, recorded.dropped, recorded.outcomes) == ([1], [1], [])
    assert "--max-throttle-wait" in sender.stop.reason
    assert 600.0 <= sleeps.now < 700.0


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        pytest.param(httpx.Response(500), "http_500", id="500"),
        pytest.param(httpx.Response(502), "http_502", id="502"),
        pytest.param(httpx.ReadTimeout("slow"), "timeout", id="read-timeout"),
        pytest.param(
            httpx.RemoteProtocolError("Server disconnected"), "connection_error", id="dropped"
        ),
        pytest.param(httpx.Response(200, text="<html>oops</html>"), "bad_response", id="non-json"),
    ],
)
async def test_exhausted_without_a_definite_answer_is_unconfirmed(respx_mock, failure, code):
    respx_mock.post(ISSUE_URL).mock(side_effect=[failure] * 2)
    (outcome,) = await send(customers_batch("1"), attempts=2)
    assert (outcome.status, outcome.error_code, outcome.attempts) == (Status.UNCONFIRMED, code, 2)
    assert "may or may not" in outcome.error_message


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")])
async def test_connection_never_made_is_failed(respx_mock, error):
    respx_mock.post(ISSUE_URL).mock(side_effect=error)
    (outcome,) = await send(customers_batch("1"), attempts=2)
    assert outcome.status is Status.FAILED
    assert "none carried out" in outcome.error_message


async def test_applied_then_dropped_then_not_present_is_unconfirmed(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[
            httpx.RemoteProtocolError("Server disconnected"),
            httpx.Response(200, json=NOT_ISSUED_1),
        ]
    )
    (outcome,) = await send(customers_batch("1"))
    assert (outcome.status, outcome.error_code, outcome.attempts) == (Status.UNCONFIRMED, "404", 2)


async def test_dropped_then_revoked_is_revoked(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.ReadTimeout("x"), httpx.Response(200, json=REVOKED_1)]
    )
    (outcome,) = await send(customers_batch("1"))
    assert (outcome.status, outcome.attempts) == (Status.REVOKED, 2)


async def test_other_4xx_is_not_retried(respx_mock):
    route = respx_mock.post(EARN_URL).mock(
        return_value=httpx.Response(
            400,
            json={
                "data": None,
                "errors": [{"code": 814, "message": "Active earn instance is not present"}],
            },
        )
    )
    (outcome,) = await send(earn_batch())
    assert (outcome.status, outcome.error_code, route.call_count) == (Status.FAILED, "814", 1)


def many(count: int) -> list[Batch]:
    return [Batch(n, Mode.CUSTOMERS, "B1", (Row(n, "B1", str(n)),)) for n in range(1, count + 1)]


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refusal_stops_the_run(respx_mock, status):
    route = respx_mock.post(ISSUE_URL).mock(return_value=httpx.Response(status))
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        sender.concurrency = 1
        await sender.send_all(many(5), recorded)
    assert sender.stop.requested
    assert sender.stop.reason.startswith(f"the API refused the credentials: HTTP {status} ")
    assert route.call_count == 1
    # A refused request did nothing: it is abandoned, and nothing else is sent.
    assert (recorded.sent, recorded.dropped, recorded.outcomes) == ([1], [1], [])


async def test_concurrency_caps_requests_in_flight(respx_mock):
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        customer = int(request.read().decode().split('"customers":["')[1].split('"')[0])
        body = {
            "data": {
                "revokedIssuedBadges": [{"customerId": customer, "issuedId": "I", "error": None}]
            }
        }
        return httpx.Response(200, json=body)

    respx_mock.post(ISSUE_URL).mock(side_effect=slow)
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = Sender(CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))), concurrency=3)
        await sender.send_all(many(12), recorded)
    assert peak == 3
    assert sorted(recorded.sent) == list(range(1, 13))
    assert sorted(o.row for o in recorded.outcomes if o.status is Status.REVOKED) == list(
        range(1, 13)
    )


async def test_a_retry_after_past_the_throttle_limit_stops_at_once(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "600"})
    )
    sleeps = Sleeps()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, sleeps, throttle_wait=10.0)
        recorded = Recorded()
        await sender.send_recorded(customers_batch("1"), recorded)
    assert (recorded.sent, recorded.dropped, recorded.outcomes) == ([1], [1], [])
    assert "past --max-throttle-wait 10" in sender.stop.reason
    assert sleeps.now < 10.0
    assert (sender.http_calls, sender.retries) == (1, 0)  # no retry was sent


async def test_retries_are_counted_when_they_leave(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.Response(500), httpx.Response(429), httpx.Response(200, json=REVOKED_1)]
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        (outcome,) = await outcomes_of(sender, customers_batch("1"))
    assert outcome.status is Status.REVOKED
    assert (sender.http_calls, sender.retries) == (3, 2)


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        pytest.param(
            [httpx.Response(429), httpx.Response(503), httpx.Response(200, json=REVOKED_1)],
            ["sending", "nothing done", "sending again", "nothing done", "sending again"],
            id="throttled-then-answered",
        ),
        pytest.param(
            [
                httpx.Response(429),
                httpx.ReadError("dropped"),
                httpx.Response(429),
                httpx.Response(200, json=REVOKED_1),
            ],
            # After the lost answer, the 429 does not make it "nothing done" again.
            ["sending", "nothing done", "sending again", "sending again", "sending again"],
            id="a-lost-answer-may-have-applied-for-good",
        ),
        pytest.param(
            [httpx.Response(500), httpx.Response(429), httpx.Response(200, json=REVOKED_1)],
            ["sending", "sending again", "sending again"],
            id="a-500-may-have-applied",
        ),
    ],
)
async def test_the_journal_hears_whether_every_answer_did_nothing(respx_mock, answers, said):
    respx_mock.post(ISSUE_URL).mock(side_effect=answers)
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        await sender.send_recorded(customers_batch("1"), recorded)
    assert recorded.sent == [1]
    assert recorded.said == said
    assert [o.status for o in recorded.outcomes] == [Status.REVOKED]


async def test_a_request_httpx_refuses_to_send_is_failed_and_not_retried(respx_mock):
    route = respx_mock.post(ISSUE_URL).mock(
        side_effect=httpx.LocalProtocolError("Illegal header value")
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        (outcome,) = await outcomes_of(sender, customers_batch("1"))
    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        Status.FAILED,
        "client_error",
        0,
    )
    assert "LocalProtocolError: Illegal header value" in outcome.error_message
    assert "nothing was sent" in outcome.error_message
    assert route.call_count == 1  # the same request would be refused the same way
    assert sender.http_calls == 0


async def test_an_unexpected_error_while_sending_is_unconfirmed(respx_mock):
    respx_mock.post(ISSUE_URL).mock(side_effect=RuntimeError("boom"))
    (outcome,) = await send(customers_batch("1"))
    # Raised once the request was handed to the transport: it may have left.
    assert (outcome.status, outcome.error_code) == (Status.UNCONFIRMED, "client_error")
    assert "unexpected error while sending: RuntimeError: boom" in outcome.error_message
    assert "may or may not" in outcome.error_message


async def test_not_sent_after_an_attempt_whose_answer_was_lost_is_unconfirmed(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.LocalProtocolError("refused")]
    )
    (outcome,) = await send(customers_batch("1"))
    assert (outcome.status, outcome.error_code) == (Status.UNCONFIRMED, "client_error")
    assert "ReadTimeout" in outcome.error_message


async def test_one_request_failing_unexpectedly_does_not_stop_the_others(respx_mock):
    def answer(request: httpx.Request) -> httpx.Response:
        customer = json.loads(request.content)["customers"][0]
        if customer == "3":
            raise RuntimeError("boom")
        entry = {"customerId": int(customer), "issuedId": f"I{customer}", "error": None}
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": [entry]}})

    respx_mock.post(ISSUE_URL).mock(side_effect=answer)
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        await sender.send_all(many(6), recorded)
    assert not sender.stop.requested
    by_row = {o.row: (o.status, o.error_code) for o in recorded.outcomes}
    assert by_row == {n: (Status.REVOKED, "") for n in (1, 2, 4, 5, 6)} | {
        3: (Status.UNCONFIRMED, "client_error")
    }


async def test_a_recorder_that_fails_stops_the_run_in_one_line(respx_mock):
    respx_mock.post(ISSUE_URL).mock(return_value=httpx.Response(200, json=REVOKED_1))

    class Failing(Recorded):
        def answered(self, batch: Batch, outcomes: list) -> None:
            if batch.number == 2:
                raise RuntimeError("journal says no")
            super().answered(batch, outcomes)

    recorded = Failing()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        sender.concurrency = 1
        await sender.send_all(many(4), recorded)  # no ExceptionGroup
    assert sender.stop.requested
    assert "request 2 went wrong: RuntimeError: journal says no" in sender.stop.reason
    assert "\n" not in sender.stop.reason
    assert recorded.sent == [1, 2]  # nothing new starts after the stop


async def test_a_plan_that_fails_stops_the_run(respx_mock):
    respx_mock.post(ISSUE_URL).mock(return_value=httpx.Response(200, json=REVOKED_1))

    def batches():
        yield from many(1)
        raise ValueError("unreadable")

    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        await sender.send_all(batches(), Recorded())
    assert "planning went wrong: ValueError: unreadable" in sender.stop.reason


# --- customer lookups: what the answers of "Get Customer Details" lead to ------------------

LOOKUP_URL = f"{BASE}{LOOKUP_PATH}"
FOUND_7 = {"id": 7, "profiles": [], "warnings": []}
SOMEONE = (IdentifierType.EMAIL, "ana@example.com")


def v2_error(code: int, message: str) -> dict:
    return {"errors": [{"code": code, "message": message, "reference": None}], "warnings": []}


# The run, as the lookups tell it: no calls to keep, no refusal to hear of.
QUIET_RUN = SimpleNamespace(now=lambda: (Counts(), None), lookup_refused=lambda answer: None)

BUSY = v2_error(461, "Search Engine is busy, try after some time")


async def look_up(
    journal, attempts: int = 5, sleeps: Sleeps | None = None, throttle_wait: float = 1800.0
) -> tuple[LookupAnswer | str | None, Sender]:
    """SOMEONE looked up as a run looks customers up: the journal's answer (a reason when
    there is none), and the sender."""
    lookups = Lookups(journal)
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, sleeps or Sleeps(), attempts, throttle_wait)
        await lookups.look_up(sender, [SOMEONE], QUIET_RUN)
    key = lookups.key(*SOMEONE)
    return lookups.answers([Row(1, "B", SOMEONE[1], identifier_type=SOMEONE[0])]).get(key), sender


@pytest.mark.parametrize("status", [400, 404, 500, 503])
@pytest.mark.parametrize(
    ("code", "message"),
    [
        (816, "Customer not found for organization"),
        (8015, "Customer not found for the given identifiers"),
    ],
)
async def test_a_customer_not_found_is_one_call_whatever_the_status(
    respx_mock, journal, status, code, message
):
    route = respx_mock.get(LOOKUP_URL).mock(
        side_effect=[httpx.Response(status, json=v2_error(code, message))] * 5
    )
    answer, _ = await look_up(journal)
    assert answer == LookupAnswer("", str(code), message, status)
    assert route.call_count == 1  # the body said not found: nothing to retry


@pytest.mark.parametrize(
    "busy",
    [
        pytest.param(httpx.Response(461, json=BUSY), id="461-in-both"),
        pytest.param(httpx.Response(461, text="busy"), id="http-461"),
        pytest.param(httpx.Response(200, json=BUSY), id="461-in-a-200"),
        pytest.param(httpx.Response(500, json=BUSY), id="461-in-a-500"),
    ],
)
async def test_a_busy_search_engine_is_retried_like_a_503(respx_mock, journal, busy):
    route = respx_mock.get(LOOKUP_URL).mock(
        side_effect=[busy] * 4 + [httpx.Response(200, json=FOUND_7)]
    )
    sleeps = Sleeps()
    answer, _ = await look_up(journal, attempts=2, sleeps=sleeps)
    assert answer == LookupAnswer("7", http_status=200)
    # Never uses up --max-attempts (2), and waits as after a 503: backoff with jitter.
    assert route.call_count == 5
    assert len(sleeps.waits) == 4
    for n, wait in enumerate(sleeps.waits):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 1


@pytest.mark.parametrize("status", [461, 503])
async def test_a_search_engine_busy_past_max_throttle_wait_leaves_the_lookup_unanswered(
    respx_mock, journal, status
):
    respx_mock.get(LOOKUP_URL).mock(return_value=httpx.Response(status, json=BUSY))
    sleeps = Sleeps()
    answer, sender = await look_up(journal, attempts=2, sleeps=sleeps, throttle_wait=600.0)
    assert answer is None  # not answered: its rows are not sent, and --resume asks again
    assert journal.lookups([Lookups(journal).key(*SOMEONE)]) == {}
    assert "--max-throttle-wait" in sender.stop.reason
    assert 600.0 <= sleeps.now < 700.0


@pytest.mark.parametrize(
    "marked",
    [
        pytest.param(httpx.Response(200, json={**FOUND_7, **v2_error(618, "fraud")}), id="200"),
        pytest.param(
            httpx.Response(200, json={**FOUND_7, "warnings": v2_error(618, "fraud")["errors"]}),
            id="200-warned",
        ),
        pytest.param(httpx.Response(500, json=v2_error(618, "fraud")), id="500"),
    ],
)
async def test_a_customer_marked_as_fraud_is_no_customer_to_revoke(respx_mock, journal, marked):
    route = respx_mock.get(LOOKUP_URL).mock(side_effect=[marked] * 5)
    answer, _ = await look_up(journal)
    assert isinstance(answer, LookupAnswer)
    assert (answer.customer_id, answer.code) == ("", "618")
    assert route.call_count == 1


async def test_an_answer_python_cannot_parse_is_a_bad_response(respx_mock):
    # Valid JSON, but a number of more digits than Python's int conversion allows.
    body = '{"data": {"revokedIssuedBadges": [{"customerId": ' + "1" * 5000 + "}]}}"
    respx_mock.post(ISSUE_URL).mock(return_value=httpx.Response(200, text=body))
    (outcome,) = await send(customers_batch("1"), attempts=2)
    assert (outcome.status, outcome.error_code) == (Status.UNCONFIRMED, "bad_response")


async def test_a_retry_after_on_a_503_is_capped_too(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=REVOKED_1),
        ]
    )
    sleeps = Sleeps()
    (outcome,) = await send(customers_batch("1"), sleeps=sleeps)
    assert outcome.status is Status.REVOKED
    assert sleeps.waits == [300.0]  # the cap (RetryPolicy.max_retry_after), not an hour


async def test_a_retry_after_on_a_429_pauses_everyone_for_the_cap_only(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=REVOKED_1),
        ]
    )
    sleeps = Sleeps()
    (outcome,) = await send(customers_batch("1"), sleeps=sleeps)
    assert outcome.status is Status.REVOKED
    assert 300.0 <= sleeps.now < 301.0  # the cap (RetryPolicy.max_retry_after), not an hour


async def test_max_throttle_wait_counts_answers_that_did_nothing_in_a_row_only(respx_mock):
    """Each 429 pauses 2 s; an answer between them starts the count again, so two runs of
    4 s each never reach a 5 s --max-throttle-wait."""
    throttled = httpx.Response(429, headers={"Retry-After": "2"})
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[throttled, throttled, httpx.Response(200, json=REVOKED_1)] * 2
    )
    sleeps = Sleeps()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, sleeps, throttle_wait=5.0)
        first = await outcomes_of(sender, customers_batch("1"))
        second = await outcomes_of(sender, customers_batch("1"))
    assert [o.status for o in first + second] == [Status.REVOKED, Status.REVOKED]
    assert not sender.stop.requested
    assert sleeps.now >= 8.0  # the scenario really spent more than 5 s throttled in all


async def test_max_unanswered_counts_calls_in_a_row_only(respx_mock):
    respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=REVOKED_1)] * 2
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        sender.max_unanswered = 2
        first = await outcomes_of(sender, customers_batch("1"))
        second = await outcomes_of(sender, customers_batch("1"))
    assert [o.status for o in first + second] == [Status.REVOKED, Status.REVOKED]
    assert not sender.stop.requested


async def test_a_request_cancelled_on_the_wire_stays_in_flight(respx_mock):
    """A second Ctrl-C cancels a request whose answer has not come: it may have been applied,
    so it is not reported abandoned (its rows are read back, not sent blind, on --resume)."""
    arrived = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    respx_mock.post(ISSUE_URL).mock(side_effect=hang)
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps())
        task = asyncio.ensure_future(sender.send_recorded(customers_batch("1"), recorded))
        await asyncio.wait_for(arrived.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert recorded.sent == [1]
    assert recorded.dropped == []
    assert recorded.outcomes == []


def token(value: str) -> httpx.Response:
    return httpx.Response(200, json={"data": {"accessToken": value, "ttlSeconds": 300}})


async def test_a_token_not_to_be_had_is_retried_before_the_request_leaves(respx_mock):
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[httpx.Response(500), httpx.ConnectError("refused"), token("t1")]
    )
    route = respx_mock.post(ISSUE_URL).mock(return_value=httpx.Response(200, json=REVOKED_1))
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps(), credentials=OAuthCredentials("k", "s"))
        (outcome,) = await outcomes_of(sender, customers_batch("1"))
    assert (outcome.status, outcome.attempts) == (Status.REVOKED, 1)
    assert (tokens.call_count, route.call_count) == (3, 1)
    # Token calls are not requests: the revoke left once, and was no retry.
    assert (sender.http_calls, sender.retries) == (1, 0)


async def test_a_401_resent_with_a_new_token_counts_two_calls(respx_mock):
    respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(side_effect=[token("old"), token("new")])
    route = respx_mock.post(ISSUE_URL).mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json=REVOKED_1)]
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps(), credentials=OAuthCredentials("k", "s"))
        (outcome,) = await outcomes_of(sender, customers_batch("1"))
    assert (outcome.status, outcome.attempts) == (Status.REVOKED, 2)
    assert (sender.http_calls, sender.retries) == (2, 0)
    assert not sender.stop.requested
    assert [c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in route.calls] == ["old", "new"]


async def test_a_refused_oauth_key_stops_the_run_before_anything_is_sent(respx_mock):
    respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(return_value=httpx.Response(401))
    recorded = Recorded()
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = make_sender(http, Sleeps(), credentials=OAuthCredentials("k", "bad"))
        await sender.send_all(many(3), recorded)
    assert "the token endpoint refused CAP_OAUTH_KEY" in sender.stop.reason
    assert (recorded.sent, recorded.dropped, recorded.outcomes) == ([], [1], [])
    assert sender.http_calls == 0
