"""What a user reads of a row refused for a value too long to be an id (batch_revoke/chunker.py):
which column, the value cut short, the most an id may have, what to look for, and the endpoint
the row would have gone to (so the result file says which kind of revoke it was)."""

from __future__ import annotations

import pytest

from batch_revoke.chunker import Planner
from batch_revoke.model import (
    Endpoint,
    ErrorCode,
    IdentifierType,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
)

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3, "identifiertype": 4}
LONG = "x" * 300


def verdict(*values: str) -> RowOutcome:
    planner = Planner(FIELDS, IdentifierType.ID)
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


def test_a_value_of_the_longest_length_shown_whole_is_shown_whole():
    """A rejected value of 40 characters is quoted whole; one of 41 is cut with its length."""
    whole, cut = 'B"' + "x" * 38, 'B"' + "x" * 39
    assert verdict(whole, "1").error_message == (
        f"badgeMetaId {whole!r} holds a quote, which no id has: a stray quote in the file? "
        "fix the cell"
    )
    assert verdict(cut, "1").error_message.startswith(f"badgeMetaId {cut[:40]!r}… (41 characters)")


def test_batches_are_numbered_in_the_order_they_leave_with_their_badge_and_call():
    planner = Planner(FIELDS, IdentifierType.ID, batch_size=2)
    rows = planner.classify(
        [
            Record(1, ("B1", "7", "", "", "")),
            Record(2, ("B2", "8", "", "E2", "")),
            Record(3, ("B1", "9", "", "", "")),
            Record(4, ("B3", "7", "I4", "", "")),
            Record(5, ("B1", "6", "", "", "")),
        ]
    )
    left = [batch for row in rows if isinstance(row, Row) and (batch := planner.place(row))]
    left += list(planner.finish())
    planner.close()
    assert [(b.number, b.mode, b.badge_meta_id, [r.row for r in b.rows]) for b in left] == [
        (1, Mode.EARN, "B2", [2]),
        (2, Mode.CUSTOMERS, "B1", [1, 3]),
        (3, Mode.ISSUALS, "B3", [4]),  # the open batches in the order they were opened
        (4, Mode.CUSTOMERS, "B1", [5]),
    ]
