from __future__ import annotations

import pytest

from batch_revoke.chunker import Planner, validate
from batch_revoke.model import Batch, ErrorCode, IdentifierType, Mode, Record, RowOutcome, Status

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3, "identifiertype": 4}


def record(row: int, *values: str) -> Record:
    padded = values + ("",) * (5 - len(values))
    return Record(row, padded)


@pytest.mark.parametrize(
    ("values", "code", "fragment"),
    [
        pytest.param(("", "1"), ErrorCode.MISSING_VALUE, "badgeMetaId is blank", id="no-badge"),
        pytest.param(
            ("B1", "  "), ErrorCode.MISSING_VALUE, "customerId is blank", id="no-customer"
        ),
        pytest.param(("B1", "1", "I1", "E1"), ErrorCode.CONFLICTING_IDS, "split it", id="both-ids"),
        pytest.param(
            ("B1", "1", "", "E1", "phone"), ErrorCode.BAD_IDENTIFIER_TYPE, "'phone'", id="bad-type"
        ),
        pytest.param(
            ("B1", "a@b.c", "", "", "email"),
            ErrorCode.BAD_IDENTIFIER_TYPE,
            "revokeEarn rows only",
            id="type-on-issue",
        ),
        pytest.param(
            ("B1", "1.23E+11"), ErrorCode.BAD_CUSTOMER_ID, "not a numeric", id="excel-number"
        ),
        pytest.param(
            ("B1", "a@b.c", "", "E1"),
            ErrorCode.BAD_CUSTOMER_ID,
            "set identifierType",
            id="email-as-id",
        ),
    ],
)
def test_invalid_rows_say_why(values, code, fragment):
    verdict = validate(record(7, *values), FIELDS, IdentifierType.ID)
    assert isinstance(verdict, RowOutcome)
    assert (verdict.row, verdict.status, verdict.error_code) == (7, Status.INVALID, code)
    assert fragment in verdict.error_message


def test_malformed_record_is_invalid_with_its_defect():
    verdict = validate(
        Record(3, ("B1", "1", "", "", ""), "too many fields"), FIELDS, IdentifierType.ID
    )
    assert isinstance(verdict, RowOutcome)
    assert verdict.error_code == ErrorCode.MALFORMED_RECORD
    assert verdict.error_message == "too many fields"


@pytest.mark.parametrize(
    ("values", "default", "mode", "identifier"),
    [
        pytest.param(
            (" B1 ", " 42 "), IdentifierType.ID, Mode.CUSTOMERS, IdentifierType.ID, id="customers"
        ),
        pytest.param(
            ("B1", "42", "I9"), IdentifierType.ID, Mode.ISSUALS, IdentifierType.ID, id="issuals"
        ),
        pytest.param(
            ("B1", "42", "", "E1"), IdentifierType.ID, Mode.EARN, IdentifierType.ID, id="earn"
        ),
        pytest.param(
            ("B1", "9199", "", "E1", "MOBILE"),
            IdentifierType.ID,
            Mode.EARN,
            IdentifierType.MOBILE,
            id="column-type",
        ),
        pytest.param(
            ("B1", "a@b.c", "", "E1"),
            IdentifierType.EMAIL,
            Mode.EARN,
            IdentifierType.EMAIL,
            id="default-type",
        ),
    ],
)
def test_valid_rows_pick_their_call(values, default, mode, identifier):
    row = validate(record(1, *values), FIELDS, default)
    assert not isinstance(row, RowOutcome)
    assert (row.mode, row.identifier_type) == (mode, identifier)
    assert row.badge_meta_id == values[0].strip()


def plan(records: list[Record], batch_size: int = 20) -> tuple[list[Batch], list[RowOutcome]]:
    planner = Planner(FIELDS, batch_size=batch_size)
    items = [item for r in records for item in planner.add(r)] + list(planner.finish())
    return (
        [i for i in items if isinstance(i, Batch)],
        [i for i in items if isinstance(i, RowOutcome)],
    )


def test_batches_hold_at_most_batch_size_rows_of_one_badge_and_mode():
    records = []
    for n in range(1, 46):  # interleaved badges and modes, not adjacent in the file
        badge = "B1" if n % 2 else "B2"
        records.append(record(n, badge, str(1000 + n), f"I{n}" if n % 3 == 0 else ""))
    batches, verdicts = plan(records)
    assert verdicts == []
    assert sorted(r.row for b in batches for r in b.rows) == list(range(1, 46))
    for batch in batches:
        assert len(batch.rows) <= 20
        assert {r.badge_meta_id for r in batch.rows} == {batch.badge_meta_id}
        assert {r.mode for r in batch.rows} == {batch.mode}
    b1_customers = [b for b in batches if b.badge_meta_id == "B1" and b.mode is Mode.CUSTOMERS]
    assert sorted(len(b.rows) for b in b1_customers) == [15]


def test_batch_size_option_is_respected():
    batches, _ = plan([record(n, "B1", str(n)) for n in range(1, 8)], batch_size=3)
    assert [len(b.rows) for b in batches] == [3, 3, 1]


def test_a_customer_appears_once_per_request():
    # Three enrolments of one customer: the API's 404 names no issue, so they must not share.
    records = [record(n, "B1", "42", f"I{n}") for n in range(1, 4)] + [record(4, "B1", "43", "I4")]
    batches, _ = plan(records)
    for batch in batches:
        keys = [r.customer_key for r in batch.rows]
        assert len(keys) == len(set(keys))
    assert sum(len(b.rows) for b in batches) == 4


def test_duplicates_point_at_the_first_row_and_are_not_sent():
    records = [
        record(1, "B1", "000777"),
        record(2, "B1", "777"),  # the same customer id as the API reads it
        record(3, "B1", "777", "I1"),
        record(4, "B1", "9199", "", "E1", "mobile"),
        record(5, "B1", "9199", "", "E1"),  # a customer id, not a mobile: not the same row
    ]
    batches, verdicts = plan(records)
    assert [(v.row, v.status, v.duplicate_of) for v in verdicts] == [(2, Status.DUPLICATE, 1)]
    assert "row 1" in verdicts[0].error_message
    assert sorted(r.row for b in batches for r in b.rows) == [1, 3, 4, 5]


def test_earn_rows_are_one_request_each():
    batches, _ = plan([record(n, "B1", str(n), "", f"E{n}") for n in range(1, 4)])
    assert [(b.mode, len(b.rows)) for b in batches] == [(Mode.EARN, 1)] * 3


@pytest.mark.parametrize("issue", [False, True], ids=["customers", "revokeIssuals"])
def test_a_badge_with_more_than_20_rows_gets_full_batches_and_the_rest(issue):
    records = [record(n, "B1", str(1000 + n), f"I{n}" if issue else "") for n in range(1, 46)]
    batches, _ = plan(records)
    assert sorted(len(b.rows) for b in batches) == [5, 20, 20]
