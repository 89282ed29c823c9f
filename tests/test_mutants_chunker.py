"""What a user reads of a row refused for a value too long to be an id (batch_revoke/chunker.py):
which column, the value cut short, the most an id may have, what to look for, and the endpoint
the row would have gone to (so the result file says which kind of revoke it was)."""

from __future__ import annotations

import pytest

from batch_revoke.chunker import Planner, Validator
from batch_revoke.model import Endpoint, ErrorCode, IdentifierType, Record, RowOutcome, Status

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3, "identifiertype": 4}
LONG = "x" * 300


def verdict(*values: str) -> RowOutcome:
    planner = Planner(Validator(FIELDS, IdentifierType.ID))
    try:
        (found,) = planner.classify([Record(4, values + ("",) * (5 - len(values)))])
    finally:
        planner.close()
    assert isinstance(found, RowOutcome)
    return found


@pytest.mark.parametrize(
    ("values", "endpoint"),
    [
        pytest.param((LONG, "1", "I1"), Endpoint.REVOKE_ISSUE, id="enrolment"),
        pytest.param((LONG, "1", "", "E1"), Endpoint.REVOKE_EARN, id="earned-badge"),
    ],
)
def test_a_value_too_long_for_an_id_says_what_to_look_for_and_keeps_its_endpoint(values, endpoint):
    outcome = verdict(*values)
    assert (outcome.row, outcome.status, outcome.endpoint) == (4, Status.INVALID, endpoint)
    assert outcome.error_code == ErrorCode.VALUE_TOO_LONG
    assert outcome.error_message == (
        f"badgeMetaId {'x' * 40!r}… (300 characters) is longer than any id (256 characters at "
        "most); look for a value pasted in by mistake"
    )
