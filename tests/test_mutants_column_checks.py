"""A chunk's usual records made into Rows a column at a time (`chunker.check_columns`): which
records take that path, that it takes them right up to the limits of an id, and that a chunk
with a value one past a limit is left to the Validator record by record, which rejects it."""

from __future__ import annotations

from batch_revoke.chunker import MAX_ID_CHARS, Validator, check_columns
from batch_revoke.model import ErrorCode, IdentifierType, Record, Row, RowOutcome, Status

ID_DIGITS = 18  # a customer id this long is always below 2^63


def columns(
    *, issue: int | None = None, earned: int | None = None, type: int | None = None
) -> dict[str, int]:
    """Badge in column 0, customer in column 1, the others where given."""
    at = {"badgemetaid": 0, "customerid": 1}
    for key, index in (("issueid", issue), ("earnedbadgeid", earned), ("identifiertype", type)):
        if index is not None:
            at[key] = index
    return at


def usual_rows(chunk, at):
    return check_columns(chunk, Validator(at))


def records(*values: tuple[str, ...]) -> list[Record]:
    return [Record(row, fields) for row, fields in enumerate(values, start=1)]


def test_a_file_of_badges_and_customer_ids_alone_is_made_into_rows_a_column_at_a_time():
    """No issueId, earnedBadgeId or identifierType column: every record is usual, up to an
    18-digit customer id and ids of MAX_ID_CHARS characters together."""
    longest = "9" * ID_DIGITS
    badge = "b" * (MAX_ID_CHARS - ID_DIGITS)
    chunk = records(("B1", "7"), ("B2", "007"), (badge, longest))
    assert usual_rows(chunk, columns()) == (
        [True, True, True],
        [Row(1, "B1", "7"), Row(2, "B2", "007"), Row(3, badge, longest)],
    )
    validate = Validator({"badgemetaid": 0, "customerid": 1}, IdentifierType.ID)
    assert validate.many(chunk) == [validate(record) for record in chunk]


def test_rows_of_revoke_issue_and_revoke_earn_alike_are_checked_a_column_at_a_time():
    """Customers named by id: a revokeEarn row is as plain as a revokeIssue row."""
    chunk = records(("B1", "7", "", "E1"), ("B1", "8", "I2", ""), ("B2", "9", "", ""))
    at = {"issue": 2, "earned": 3}
    assert usual_rows(chunk, columns(**at)) == (
        [True, True, True],
        [Row(1, "B1", "7", "", "E1"), Row(2, "B1", "8", "I2"), Row(3, "B2", "9")],
    )


def test_rows_after_one_with_an_identifier_type_keep_their_own_values():
    chunk = records(("B0", "7", "id"), ("B1", "8", ""), ("B2", "919900000013", "mobile"))
    assert usual_rows(chunk, columns(type=2)) == ([False, True, False], [Row(2, "B1", "8")])


def test_a_chunk_with_ids_past_their_limits_is_left_to_the_validator():
    """One past each limit: the column checks give up on the chunk (None), and the Validator,
    record by record, says what is wrong."""
    longest = "9" * ID_DIGITS
    too_long = "b" * (MAX_ID_CHARS - ID_DIGITS + 1)
    for odd in ((too_long, longest), ("B1", longest + "9")):
        assert usual_rows(records(("B1", "7"), odd), columns()) is None
    # A badge too long for an id, whatever the customer's length: rejected.
    badge = "b" * (MAX_ID_CHARS + 4)
    chunk = records(("B1", "7"), (badge, longest))
    assert usual_rows(chunk, columns()) is None
    validate = Validator({"badgemetaid": 0, "customerid": 1}, IdentifierType.ID)
    verdicts = validate.many(chunk)
    assert verdicts[0] == Row(1, "B1", "7")
    assert isinstance(verdicts[1], RowOutcome)
    assert (verdicts[1].status, verdicts[1].error_code) == (
        Status.INVALID,
        ErrorCode.VALUE_TOO_LONG,
    )


def test_a_chunk_with_a_space_or_a_quote_inside_an_id_is_left_to_the_validator():
    for odd in (("B 1", "7"), ('B"1', "7")):
        assert usual_rows(records(("B1", "7"), odd), columns()) is None
