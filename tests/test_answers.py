"""What an answer means for a row (batch_revoke/answers.py): the cases where a wrong reading
would silently report a badge revoked that is not."""

from __future__ import annotations

import pytest

from batch_revoke.answers import interpret
from batch_revoke.client import ApiReply
from batch_revoke.model import ErrorCode, Status
from tests.conftest import earn_batch

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
