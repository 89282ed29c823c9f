"""What an answer means, where a one-line slip would report the wrong thing: revoke answers
that are not the usual shape, lookup answers that carry more than an id, and customer ids
whose digits are not ASCII or carry leading zeros."""

from __future__ import annotations

import time

import httpx
import pytest

from batch_revoke.answers.readbacks import InDoubt
from batch_revoke.answers.replies import interpret, lookup_answer
from batch_revoke.answers.rows import raced
from batch_revoke.client import READ_BACK_PATH, CapillaryClient, TillAuth
from batch_revoke.credentials import BasicCredentials
from batch_revoke.model import (
    ApiReply,
    Endpoint,
    ErrorCode,
    LookupAnswer,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.readback import read_back
from batch_revoke.sender import Sender
from tests.conftest import EVERY_VALIDATION_PATH, issue_batch, planner, records

BASE = "http://127.0.0.1:9"


NOT_ISSUED = {"code": 404, "message": "Customer doesn't have issue instance"}


def reply(body, status: int = 200, text: str = "") -> ApiReply:
    return ApiReply(status, body, text, None, 1)


# --- revoke answers ------------------------------------------------------------------------


def test_a_400_whose_body_is_not_json_is_failed_not_unconfirmed():
    # A 400 is a refusal, whatever its body: nothing was revoked, so nothing to read back.
    page = "<html><body>400 Bad Request</body></html>"
    outcomes = interpret(issue_batch(("7", "I1"), ("8", "I2")), reply(None, 400, page), 1)
    assert [(o.status, o.error_code, o.http_status) for o in outcomes] == [
        (Status.FAILED, "http_400", 400)
    ] * 2
    assert "not JSON" in outcomes[0].error_message


def test_rows_of_one_customer_in_one_request_each_keep_their_own_error():
    # Customer 7's two enrolments in one request: I1 is someone else's (the entry names it),
    # I2 is not there (the 404 names no issue). Each row gets its own answer, not the other's.
    entries = [
        {
            "customerId": 7,
            "issuedId": "I1",
            "error": {"message": "issue doesn't belong to customer", "reference": None},
        },
        {"customerId": 7, "error": NOT_ISSUED},
        {"customerId": 8, "issuedId": "I3", "error": None},
    ]
    body = {"data": {"badgeMetaId": "B1", "revokedIssuedBadges": entries}, "errors": []}
    outcomes = interpret(issue_batch(("7", "I1"), ("7", "I2"), ("8", "I3")), reply(body, 201), 1)
    assert [(o.status, o.error_code) for o in outcomes] == [
        (Status.FAILED, ErrorCode.ISSUE_NOT_OF_CUSTOMER),
        (Status.FAILED, "404"),
        (Status.REVOKED, ""),
    ]
    assert "belong" in outcomes[0].error_message
    assert "issue instance" in outcomes[1].error_message
    assert "belong" not in outcomes[1].error_message


def test_a_200_listing_entries_is_judged_entry_by_entry_even_with_errors_beside_them():
    # `errors` filled beside a `data` that lists per-entry results: the entries say what
    # happened to each customer, and a revoked enrolment is revoked.
    entries = [
        {"customerId": 7, "issuedId": "I1", "error": None},
        {"customerId": 8, "error": NOT_ISSUED},
    ]
    body = {
        "data": {"badgeMetaId": "B1", "revokedIssuedBadges": entries},
        "errors": [{"code": 404, "message": "Customer doesn't have issue instance"}],
    }
    outcomes = interpret(issue_batch(("7", "I1"), ("8", "I2")), reply(body, 200), 1)
    assert [(o.status, o.error_code, o.issued_ids) for o in outcomes] == [
        (Status.REVOKED, "", ("I1",)),
        (Status.FAILED, "404", ()),
    ]


def test_a_404_that_raced_a_customers_row_whose_answer_was_lost_is_read_back():
    # Row 1 (customer 7, enrolment I1) was told 404 while row 5, which revokes every
    # enrolment of customer 7, was sent at the same time and its answer lost: row 5 may have
    # revoked I1 first, so row 1 is unknown (read back), not failed.
    row = Row(1, "B1", "7", "I1")
    told = RowOutcome(
        1, Status.FAILED, Endpoint.REVOKE_ISSUE, "404", "Customer doesn't have issue instance"
    )
    lost = RowOutcome(
        5, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, ErrorCode.TIMEOUT, "ReadTimeout"
    )
    for covering in (lost, None):  # lost, or still in flight
        outcome = raced(row, told, 5, covering)
        assert outcome.status is Status.UNCONFIRMED
        assert "row 5" in outcome.error_message


# --- customer lookups ----------------------------------------------------------------------


def test_a_2xx_that_carries_618_beside_an_id_is_fraud_never_a_customer_to_revoke():
    body = {
        "id": 565261498,
        "profiles": [],
        "errors": [{"code": 618, "message": "customer is marked as fraud"}],
    }
    for status in (200, 201):
        answer = lookup_answer(reply(body, status))
        assert answer == LookupAnswer("", "618", "customer is marked as fraud", status)


@pytest.mark.parametrize(
    "body", [None, {}, {"message": "Bad Request"}], ids=["not-json", "empty", "no-envelope"]
)
def test_a_400_without_an_error_envelope_is_a_final_answer(body):
    # A refusal: the lookup is answered (no customer), not left for --resume to ask again.
    answer = lookup_answer(reply(body, 400, "Bad Request"))
    assert isinstance(answer, LookupAnswer)
    assert (answer.customer_id, answer.code, answer.http_status) == ("", "http_400", 400)


# --- customer ids --------------------------------------------------------------------------

ARABIC_INDIC = "\u0661\u0662\u0663"  # ١٢٣: str.isdigit() says yes, the API says no
FULLWIDTH = "\uff11\uff12\uff13"  # １２３


@pytest.mark.parametrize("customer", [ARABIC_INDIC, FULLWIDTH], ids=["arabic-indic", "fullwidth"])
@EVERY_VALIDATION_PATH
def test_digits_that_are_not_ascii_make_a_customer_id_invalid_on_every_path(
    customer, columns, neighbour, odd
):
    odd = odd.format(customer=customer, issue="I1")
    good, bad = planner(columns).classify(records(neighbour, odd))
    assert isinstance(good, Row)
    assert isinstance(bad, RowOutcome), bad
    assert (bad.status, bad.error_code) == (Status.INVALID, ErrorCode.BAD_CUSTOMER_ID)


async def test_read_backs_of_000777_and_777_are_one_call(respx_mock):
    data = {
        "badgeMetaId": "B1",
        "customerId": 777,
        "issualDetails": {
            "issuals": [
                {"issueId": "I1", "issuedStatus": "REVOKED", "revokedOn": time.time()},
                {"issueId": "I2", "issuedStatus": "REVOKED", "revokedOn": time.time()},
            ]
        },
        "earnDetails": {"earns": []},
    }
    route = respx_mock.get(url__regex=r".*/badges/management/0*777/badge/B1").mock(
        return_value=httpx.Response(200, json={"data": data, "errors": []})
    )
    lost = RowOutcome(1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "ReadTimeout")
    sent = time.time() - 1
    items = [
        InDoubt(Row(1, "B1", "000777", "I1"), lost, sent),
        InDoubt(Row(2, "B1", "777", "I2"), lost, sent),
    ]
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = Sender(CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))))
        found = await read_back(items, sender)
    assert route.call_count == 1
    assert READ_BACK_PATH.split("{")[0] in str(route.calls[0].request.url)
    assert sorted((o.row, o.status) for o in found.outcomes) == [
        (1, Status.REVOKED),
        (2, Status.REVOKED),
    ]
