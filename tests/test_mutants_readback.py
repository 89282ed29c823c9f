"""What a read-back means for a row whose answer was lost (batch_revoke/readback.py), as a
user reads it: the endpoint, HTTP status and request id of the read-back that settled it, the
words saying what it found, why a read-back it could not read leaves the row unconfirmed, and
when a revocation it shows counts as the lost request's."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from batch_revoke.answers.readbacks import CLOCK_SLACK, InDoubt, read_back_verdict
from batch_revoke.client import (
    READ_BACK_PATH,
    ApiReply,
    CapillaryClient,
    TillAuth,
)
from batch_revoke.config import RetryPolicy
from batch_revoke.credentials import BasicCredentials
from batch_revoke.model import Endpoint, ErrorCode, Row, RowOutcome, Status
from batch_revoke.readback import read_back
from batch_revoke.sender import Sender

SENT = 1_800_000_000.0  # when the lost request left (2027-01-15), exact in a float
TRACE = "rb-42"
ISSUAL = Row(1, "B1", "777", "I1")
CUSTOMER = Row(2, "B1", "777")
EARN = Row(3, "B1", "777", "", "E1")
LOST = RowOutcome(
    1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "ReadTimeout", (), None, 2
)


def answer(issuals=(), earns=(), status: int = 200, body=None, text: str = "") -> ApiReply:
    data = {"issualDetails": {"issuals": list(issuals)}, "earnDetails": {"earns": list(earns)}}
    shown = body if body is not None else {"data": data, "errors": []}
    return ApiReply(status, shown, text, None, 1, TRACE)


def issual(ident: object = "I1", revoked_on: object = SENT + 1, **more: object) -> dict:
    return {"issueId": ident, "issuedStatus": "REVOKED", "revokedOn": revoked_on, **more}


def earn(ident: object = "E1", revoked_on: object = SENT + 1) -> dict:
    return {"earnedBadgeId": ident, "isActive": False, "revokedOn": revoked_on}


@pytest.mark.parametrize(
    ("row", "reply", "endpoint", "ids", "message"),
    [
        pytest.param(
            ISSUAL,
            answer([issual()]),
            Endpoint.REVOKE_ISSUE,
            ("I1",),
            "confirmed by read-back: the enrolment is REVOKED",
            id="issual",
        ),
        pytest.param(
            CUSTOMER,
            answer([issual("I2"), issual("I1")]),
            Endpoint.REVOKE_ISSUE,
            ("I1", "I2"),
            "confirmed by read-back: no ACTIVE enrolment is left",
            id="customer",
        ),
        pytest.param(
            EARN,
            answer(earns=[earn()]),
            Endpoint.REVOKE_EARN,
            ("E1",),
            "confirmed by read-back: the earned badge is inactive",
            id="earn",
        ),
    ],
)
def test_a_row_the_read_back_confirms_says_what_it_found_and_which_answer(
    row, reply, endpoint, ids, message
):
    settled = read_back_verdict(InDoubt(row, LOST, SENT), reply)
    assert isinstance(settled, RowOutcome)
    assert (settled.status, settled.endpoint, settled.error_code, settled.issued_ids) == (
        Status.REVOKED,
        endpoint,
        "",
        ids,
    )
    assert (settled.http_status, settled.attempts, settled.request_id) == (200, 2, TRACE)
    assert settled.error_message == message


def test_a_read_back_of_a_badge_not_found_quotes_the_api_and_keeps_its_request_id():
    body = {"data": None, "errors": [{"code": 404, "message": "Passed badge is not found"}]}
    settled = read_back_verdict(InDoubt(ISSUAL, LOST, SENT), answer(status=404, body=body))
    assert isinstance(settled, RowOutcome)
    assert (settled.error_code, settled.request_id) == (ErrorCode.BADGE_NOT_FOUND, TRACE)
    assert "(404 Passed badge is not found)" in settled.error_message


# --- a read-back this version cannot read: unconfirmed, and the message says why ------------


@pytest.mark.parametrize(
    ("row", "reply", "why"),
    [
        pytest.param(
            ISSUAL,
            answer(body={"data": {"issuals": []}}),
            "no issualDetails.issuals list",
            id="no-list",
        ),
        pytest.param(
            ISSUAL,
            answer(body={"data": {"issualDetails": {"issuals": ["I1"]}}}),
            "issuals entry 'I1'",
            id="entry-not-an-object",
        ),
        pytest.param(
            ISSUAL,
            answer([{"issuedStatus": "REVOKED", "revokedOn": SENT}]),
            "issuals entry without issueId: {'issuedStatus': 'REVOKED', 'revokedOn': 1800000000.0}",
            id="entry-without-id",
        ),
        pytest.param(
            ISSUAL,
            answer([issual("")]),
            "issuals entry without issueId: "
            "{'issueId': '', 'issuedStatus': 'REVOKED', 'revokedOn': 1800000001.0}",
            id="entry-empty-id",
        ),
        pytest.param(
            EARN,
            answer(earns=[{"earnedBadgeId": "E1", "active": False}]),
            "earns entry {'earnedBadgeId': 'E1', 'active': False}",
            id="earn-without-isActive",
        ),
        pytest.param(
            ISSUAL,
            answer([issual(revoked_on=None)]),
            "a revoked entry without revokedOn",
            id="revokedOn-null",
        ),
        pytest.param(
            ISSUAL,
            answer([issual(revoked_on="")]),
            "a revoked entry without revokedOn",
            id="revokedOn-empty",
        ),
        pytest.param(
            ISSUAL,
            answer([issual(revoked_on="last tuesday")]),
            "revokedOn 'last tuesday' is not a date",
            id="revokedOn-text",
        ),
        pytest.param(
            ISSUAL,
            answer([issual(revoked_on=True)]),
            "revokedOn True is not a date",
            id="revokedOn-boolean",
        ),
    ],
)
def test_a_read_back_of_a_shape_this_version_does_not_know_says_what_it_found(row, reply, why):
    settled = read_back_verdict(InDoubt(row, LOST, SENT), reply)
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.UNCONFIRMED
    assert settled.error_message == (
        f"ReadTimeout; read-back has a shape this version does not know ({why})"
    )


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        pytest.param(answer([issual()], status=500, text="oops"), "HTTP 500: 'oops'", id="500"),
        pytest.param(
            answer(status=200, body="<html>", text="<html>"), "HTTP 200: '<html>'", id="not-json"
        ),
    ],
)
def test_a_read_back_that_failed_leaves_the_row_unconfirmed_whatever_its_body(reply, said):
    settled = read_back_verdict(InDoubt(ISSUAL, LOST, SENT), reply)
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.UNCONFIRMED
    assert settled.error_message == f"ReadTimeout; read-back answered {said}"


def test_a_row_a_kill_left_in_flight_says_so_with_its_row_and_endpoint():
    settled = read_back_verdict(
        InDoubt(EARN, None, SENT, sends=2), "read-back failed: ConnectError"
    )
    assert isinstance(settled, RowOutcome)
    assert (settled.row, settled.status, settled.endpoint, settled.attempts) == (
        3,
        Status.UNCONFIRMED,
        Endpoint.REVOKE_EARN,
        2,
    )
    assert settled.error_message == (
        "in flight when the run stopped: read-back failed: ConnectError"
    )


def test_a_row_sent_again_after_nothing_was_done_and_not_read_back_is_unconfirmed():
    # Its last answer said nothing was done (a 503), then its next request was in flight when
    # the run stopped: whatever that answer said, the row may be revoked now.
    nothing = RowOutcome(1, Status.NOT_ATTEMPTED, Endpoint.REVOKE_ISSUE, "http_503", "HTTP 503")
    settled = read_back_verdict(InDoubt(ISSUAL, nothing, SENT), "read-back failed: ConnectError")
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.UNCONFIRMED
    assert settled.error_message == "HTTP 503; read-back failed: ConnectError"


# --- when it was revoked: ours, or somebody else's ---------------------------------------


@pytest.mark.parametrize(
    ("revoked_on", "ours"),
    [
        pytest.param(SENT - CLOCK_SLACK, True, id="exactly-five-minutes-before-is-ours"),
        # The page gives epoch seconds; a number above 1e11 is epoch milliseconds.
        pytest.param(1e11, True, id="1e11-is-seconds-year-5138"),
        pytest.param(1e11 + 1, False, id="above-1e11-is-milliseconds-1973"),
    ],
)
def test_when_a_revocation_counts_as_ours(revoked_on, ours):
    settled = read_back_verdict(
        InDoubt(ISSUAL, LOST, SENT), answer([issual(revoked_on=revoked_on)])
    )
    if ours:
        assert isinstance(settled, RowOutcome)
        assert settled.status is Status.REVOKED
    else:
        assert settled == ISSUAL  # sent again: the API's own answer is the truth


@pytest.fixture
def new_york() -> Iterator[None]:
    """The machine's local time zone is five hours behind UTC in January."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "America/New_York")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.parametrize(
    ("revoked_on", "ours"),
    [
        # 2027-01-15 08:00 UTC is SENT: a stamp without a zone is UTC, whatever the machine's.
        pytest.param("2027-01-15T08:01:00", True, id="naive-is-utc"),
        pytest.param("2027-01-15T03:01:00-05:00", True, id="offset-kept"),
        pytest.param("2027-01-15T07:50:00", False, id="naive-ten-minutes-before"),
        pytest.param("2027-01-15T02:50:00-05:00", False, id="offset-ten-minutes-before"),
    ],
)
@pytest.mark.usefixtures("new_york")
def test_an_iso_revokedon_is_read_in_its_own_zone_or_utc(revoked_on, ours):
    settled = read_back_verdict(
        InDoubt(ISSUAL, LOST, SENT), answer([issual(revoked_on=revoked_on)])
    )
    if ours:
        assert isinstance(settled, RowOutcome)
        assert settled.status is Status.REVOKED
    else:
        assert settled == ISSUAL


# --- what the run says on stderr while it reads back ---------------------------------------

BASE = "http://127.0.0.1:9"


async def no_wait(_: float) -> None:
    return None


async def test_the_run_says_how_many_rows_it_reads_back_in_how_many_calls(respx_mock, caplog):
    respx_mock.get(BASE + READ_BACK_PATH.format(customerId="777", badgeMetaId="B1")).mock(
        return_value=httpx.Response(200, json=answer([issual("I1"), issual("I2")]).body)
    )
    items = [InDoubt(ISSUAL, LOST, SENT), InDoubt(Row(4, "B1", "0777", "I2"), LOST, SENT)]
    auth = TillAuth(BasicCredentials("u", "p"))
    with caplog.at_level(logging.INFO, logger="batch_revoke"):
        async with httpx.AsyncClient(base_url=BASE) as http:
            sender = Sender(CapillaryClient(http, auth), RetryPolicy(max_attempts=2), sleep=no_wait)
            found = await read_back(items, sender)
    assert [o.status for o in found.outcomes] == [Status.REVOKED, Status.REVOKED]
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert "reading back 2 rows whose answer was lost (1 calls)" in said


async def read_back_one(respx_mock, caplog, reply: httpx.Response, item: InDoubt):
    """Read back one row against `reply`, with every log line of the run kept."""
    respx_mock.get(BASE + READ_BACK_PATH.format(customerId="777", badgeMetaId="B1")).mock(
        return_value=reply
    )
    auth = TillAuth(BasicCredentials("u", "p"))
    with caplog.at_level(logging.DEBUG, logger="batch_revoke"):
        async with httpx.AsyncClient(base_url=BASE) as http:
            sender = Sender(CapillaryClient(http, auth), RetryPolicy(max_attempts=2), sleep=no_wait)
            return await read_back([item], sender)


@pytest.mark.parametrize(
    ("headers", "traced", "request_id"),
    [
        pytest.param({"X-Cap-Requestid": "rb-7"}, "; X-Cap-Requestid rb-7", "rb-7", id="traced"),
        pytest.param({}, "", None, id="untraced"),
    ],
)
async def test_the_debug_log_names_each_read_back_call_its_status_and_request_id(
    respx_mock, caplog, headers, traced, request_id
):
    body = answer([issual()]).body
    reply = httpx.Response(200, json=body, headers=headers)
    await read_back_one(respx_mock, caplog, reply, InDoubt(ISSUAL, LOST, SENT))
    lines = [r for r in caplog.records if getattr(r, "event", None) == "read-back"]
    assert [r.getMessage() for r in lines] == [
        f"read-back of customer 777, badge B1: HTTP 200{traced}"
    ]
    assert [r.levelno for r in lines] == [logging.DEBUG]
    assert [r.request_id for r in lines] == [request_id]


async def test_a_row_the_read_back_shows_not_revoked_is_sent_again(respx_mock, caplog):
    active = {"issueId": "I1", "issuedStatus": "ACTIVE"}
    reply = httpx.Response(200, json=answer([active]).body)
    found = await read_back_one(respx_mock, caplog, reply, InDoubt(ISSUAL, LOST, SENT))
    assert found.resend == [ISSUAL]
    assert found.outcomes == []
    assert found.read == 1
