"""What an answer means for a row (batch_revoke/answers.py): the cases where a wrong reading
would silently report a badge revoked that is not."""

from __future__ import annotations

import pytest

from batch_revoke.answers import interpret, sent_blind
from batch_revoke.client import ApiReply
from batch_revoke.model import Endpoint, ErrorCode, IdentifierType, Row, RowOutcome, Status
from tests.conftest import customers_batch, earn_batch, issue_batch

EARNED = "698daf848644c157e72d83f3"
MISSING = object()


def earn_answer(is_active: object) -> ApiReply:
    data: dict[str, object] = {
        "badgeMetaId": "698dae82d30c4f6b3da9dc06",
        "customerId": 566135941,
        "earnedBadgeId": EARNED,
    }
    if is_active is not MISSING:
        data["isActive"] = is_active
    return ApiReply(200, {"data": data, "errors": [], "warnings": []}, "", None, 1)


@pytest.mark.parametrize(
    ("is_active", "status", "code"),
    [
        pytest.param(False, Status.REVOKED, "", id="false-is-revoked"),
        pytest.param(True, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="true"),
        pytest.param("false", Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="text-false"),
        pytest.param("False", Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="text-False"),
        pytest.param(0, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="zero"),
        pytest.param("", Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="empty-text"),
        pytest.param(None, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="null"),
        pytest.param(MISSING, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE, id="missing"),
    ],
)
def test_an_earn_is_revoked_only_on_a_definite_false(is_active, status, code):
    (outcome,) = interpret(earn_batch("566135941", EARNED), earn_answer(is_active), attempts=1)
    assert (outcome.status, outcome.error_code) == (status, code)
    if status is Status.REVOKED:
        assert outcome.issued_ids == (EARNED,)


def issue_answer(*entries: dict[str, object]) -> ApiReply:
    body = {"data": {"revokedIssuedBadges": list(entries)}, "errors": [], "warnings": []}
    return ApiReply(200, body, "", None, 1)


def test_a_customer_echoed_with_the_zeros_it_was_sent_with_is_matched():
    # Ids are sent as text, zeros kept: the API may echo them back as sent, or as a number.
    batch = customers_batch("000777", "62090013")
    answer = issue_answer(
        {"customerId": "000777", "issuedId": "I1", "error": None},
        {"customerId": 62090013, "issuedId": "I9", "error": None},
    )
    first, second = interpret(batch, answer, attempts=1)
    assert (first.status, first.issued_ids) == (Status.REVOKED, ("I1",))
    assert (second.status, second.issued_ids) == (Status.REVOKED, ("I9",))


def test_an_issue_id_echoed_as_a_number_is_matched_to_its_row():
    batch = issue_batch(("5", "0042"), ("5", "0043"))
    answer = issue_answer(
        {"customerId": 5, "issuedId": 43, "error": None},
        {"customerId": 5, "issuedId": 42, "error": None},
    )
    first, second = interpret(batch, answer, attempts=1)
    assert (first.status, first.issued_ids) == (Status.REVOKED, ("42",))
    assert (second.status, second.issued_ids) == (Status.REVOKED, ("43",))


def test_an_earned_badge_id_echoed_as_a_number_is_this_rows():
    body = {"data": {"earnedBadgeId": 123, "isActive": False}, "errors": []}
    (outcome,) = interpret(earn_batch("5", "000123"), ApiReply(200, body, "", None, 1), 1)
    assert (outcome.status, outcome.issued_ids) == (Status.REVOKED, ("123",))


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("814", Status.UNCONFIRMED, id="814-may-be-the-lost-attempt"),
        pytest.param("404", Status.UNCONFIRMED, id="404-may-be-the-lost-attempt"),
        pytest.param("1051", Status.FAILED, id="1051-is-the-apis-word"),
        pytest.param("813", Status.FAILED, id="813-is-the-apis-word"),
    ],
)
def test_a_blind_resend_doubts_only_not_present_answers(code, status):
    # Sent again without a read-back (a mobile): only "nothing there" may be the lost
    # attempt's doing; any other refusal is the API's answer and stays failed.
    row = Row(1, "B3", "919900000013", "", "E1", IdentifierType.MOBILE)
    answer = RowOutcome(1, Status.FAILED, Endpoint.REVOKE_EARN, code, "refused", (), 400, 1)
    blind = sent_blind(answer, row)
    assert (blind.status, blind.error_code) == (status, code)
