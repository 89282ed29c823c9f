"""Rows that name their customer by mobile or email, once the lookup has answered: what each
row becomes (sent as the customer's id, failed, not attempted or a duplicate, with the words
a user reads), across chunks, and which customers rows cover or follow a revokeIssuals row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_revoke.chunker import Planner, Validator
from batch_revoke.customers import NOT_ASKED, ByCustomer
from batch_revoke.journal import Journal
from batch_revoke.lookup import Lookups
from batch_revoke.model import (
    Counts,
    Endpoint,
    ErrorCode,
    IdentifierType,
    LookupAnswer,
    Record,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.source import map_fields
from tests.conftest import planner, records

COLUMNS = "badgeMetaId,customerId,issueId,identifierType"
MOBILE, EMAIL, ID = IdentifierType.MOBILE, IdentifierType.EMAIL, IdentifierType.ID


@pytest.fixture
def lookups(journal: Journal) -> Lookups:
    return Lookups(journal)


@pytest.fixture
def customers(lookups: Lookups) -> Iterator[ByCustomer]:
    by_customer = ByCustomer(planner(COLUMNS), lookups)
    yield by_customer
    by_customer.close()
    by_customer.planner.close()


def answered(lookups: Lookups, kind: IdentifierType, value: str, customer: str) -> None:
    """The lookup of (kind, value) answered: this customer ("" for not found)."""
    answer = (
        LookupAnswer(customer, http_status=200)
        if customer
        else LookupAnswer("", "816", "Customer not found for organization", 400, "req-816")
    )
    lookups.journal.looked_up(lookups.key(kind, value), answer, Counts(), None)


def rows_of(by_customer: ByCustomer, chunk: list[Record]) -> list[Row]:
    verdicts = by_customer.planner.classify(chunk)
    assert all(isinstance(v, Row) for v in verdicts), verdicts
    return [v for v in verdicts if isinstance(v, Row)]


def same_customer(row: int, first: int, customer: str) -> RowOutcome:
    """The outcome a user reads for a row whose customer the lookup made another row's."""
    return RowOutcome(
        row,
        Status.DUPLICATE,
        Endpoint.REVOKE_ISSUE,
        ErrorCode.DUPLICATE_ROW,
        f"same badge, customer and ids as row {first} (one names the customer by id or "
        "another identifier, the lookup says it is the same customer); not sent again",
        duplicate_of=first,
        resolved_customer_id=customer,
    )


def test_each_row_becomes_its_customers_id_or_says_why_not(customers, lookups):
    answered(lookups, MOBILE, "+919900000013", "777")
    answered(lookups, EMAIL, "ana@example.com", "")
    answered(lookups, MOBILE, "+919900000031", "888")
    answered(lookups, EMAIL, "li@example.com", "888")
    chunk = records(
        "B1,777,I1,id",
        "B1,+919900000013,I1,mobile",  # the lookup says: customer 777, as row 1
        "B1,ana@example.com,I1,email",  # no such customer
        "B1,bo@example.com,I1,email",  # never asked: the run stopped first
        "B1,+919900000031,I2,mobile",  # customer 888
        "B1,li@example.com,I2,email",  # customer 888 too: as row 5
        "B1,+919900000031,I3,mobile",  # customer 888, another enrolment
    )
    items = customers.resolve(rows_of(customers, chunk))
    assert items == [
        Row(1, "B1", "777", "I1"),
        same_customer(2, 1, "777"),
        RowOutcome(
            3,
            Status.FAILED,
            Endpoint.REVOKE_ISSUE,
            "816",
            "customer lookup of email ana@example.com: Customer not found for organization; "
            "nothing was sent",
            http_status=400,
            request_id="req-816",
        ),
        RowOutcome(
            4,
            Status.NOT_ATTEMPTED,
            Endpoint.REVOKE_ISSUE,
            ErrorCode.LOOKUP_FAILED,
            f"customer lookup of email bo@example.com got no answer ({NOT_ASKED}); nothing "
            "was sent, and batch-revoke retry (or --resume while the run is unfinished) looks it "
            "up again",
        ),
        Row(5, "B1", "888", "I2", identifier_type=ID, resolved=True),
        same_customer(6, 5, "888"),
        Row(7, "B1", "888", "I3", identifier_type=ID, resolved=True),
    ]


def test_a_row_sent_already_stays_what_it_was_sent_as(customers, lookups):
    answered(lookups, MOBILE, "+919900000013", "777")
    chunk = records("B1,777,I1,id", "B1,+919900000013,I1,mobile")
    items = customers.resolve(rows_of(customers, chunk), keep={2})
    assert items == [Row(1, "B1", "777", "I1"), Row(2, "B1", "777", "I1", resolved=True)]


def test_one_customer_is_one_customer_across_chunks(customers, lookups):
    answered(lookups, MOBILE, "+919900000013", "777")
    answered(lookups, EMAIL, "ana@example.com", "777")
    answered(lookups, EMAIL, "li@example.com", "888")
    first = customers.resolve(rows_of(customers, records("B1,+919900000013,I1,mobile")))
    assert first == [Row(1, "B1", "777", "I1", resolved=True)]
    # Another chunk, no row by an identifier: still compared with the customers found so far.
    by_id = customers.resolve(rows_of(customers, records("B1,777,I1,id", first=2)))
    assert by_id == [same_customer(2, 1, "")]
    later = customers.resolve(
        rows_of(
            customers, records("B1,li@example.com,I1,email", "B1,ana@example.com,I1,email", first=3)
        )
    )
    assert later == [Row(3, "B1", "888", "I1", resolved=True), same_customer(4, 1, "777")]


def test_a_duplicate_names_its_earliest_row(customers, lookups):
    """Row 5 is the customer of row 1 (by id) and of row 3 (by mobile): it names row 1."""
    answered(lookups, MOBILE, "+919900000013", "777")
    answered(lookups, EMAIL, "ana@example.com", "777")
    chunk = records(
        "B1,777,I1,id",
        "B2,1,I9,id",
        "B1,+919900000013,I1,mobile",
        "B2,2,I9,id",
        "B1,ana@example.com,I1,email",
    )
    items = customers.resolve(rows_of(customers, chunk))
    assert [(i.row, i.duplicate_of) for i in items if isinstance(i, RowOutcome)] == [
        (3, 1),
        (5, 1),
    ]


def test_a_file_of_ids_only_is_left_as_it_is(customers):
    chunk = records("B1,777,I1,id", "B1,0777,I2,id")
    rows = rows_of(customers, chunk)
    assert customers.resolve(rows) == rows


def test_customers_rows_named_by_an_identifier_cover_and_follow_revoke_issuals_rows(
    customers, lookups
):
    answered(lookups, EMAIL, "ana@example.com", "777")
    answered(lookups, EMAIL, "li@example.com", "888")
    chunk = records(
        "B1,ana@example.com,,email",  # customer 777's every enrolment of B1
        "B1,777,I1,id",  # covered by row 1
        "B1,888,I2,id",  # followed by row 4 (customer 888, by id) and row 5 (by email)
        "B1,888,,id",
        "B1,li@example.com,,email",
        "B1,999,I3,id",  # nobody's
    )
    items = customers.resolve(rows_of(customers, chunk))
    rows = [item for item in items if isinstance(item, Row)]
    assert customers.customers_rows(rows, earlier=True) == {2: 1}
    # Not row 6 (nobody's), row 2 (row 1 is earlier), row 1 (a customers row itself).
    assert customers.customers_rows(rows, earlier=False) == {3: 4}


def test_a_revoke_issuals_row_waits_for_the_earliest_customers_row_that_covers_it(
    customers, lookups
):
    answered(lookups, EMAIL, "ana@example.com", "777")
    chunk = records("B1,777,,id", "B1,ana@example.com,,email", "B1,777,I1,id")
    rows = [item for item in customers.resolve(rows_of(customers, chunk)) if isinstance(item, Row)]
    assert customers.customers_rows(rows, earlier=True) == {3: 1}


def test_a_customers_row_by_identifier_alone_follows_a_revoke_issuals_row(customers, lookups):
    answered(lookups, EMAIL, "li@example.com", "888")
    chunk = records("B1,888,I2,id", "B1,li@example.com,,email")
    rows = [item for item in customers.resolve(rows_of(customers, chunk)) if isinstance(item, Row)]
    assert customers.customers_rows(rows, earlier=False) == {1: 2}


def test_a_file_that_names_every_customer_by_id_keeps_the_planners_covering_rows(customers):
    # No row is looked up: the rows' order alone says which customers row covers which.
    chunk = records("B1,777,,id", "B1,777,I1,id", "B1,888,I2,id", "B1,888,,id")
    rows = [item for item in customers.resolve(rows_of(customers, chunk)) if isinstance(item, Row)]
    assert len(rows) == 4
    assert customers.customers_rows(rows, earlier=True) == {2: 1}
    assert customers.customers_rows(rows, earlier=False) == {3: 4}


def duplicates_named(
    by_customer: ByCustomer, chunk: list[Record]
) -> list[tuple[int, int | None, str]]:
    verdicts = [v for v in by_customer.planner.classify(chunk) if isinstance(v, RowOutcome)]
    found = by_customer.with_customer_ids(verdicts, chunk)
    return [(v.row, v.duplicate_of, v.resolved_customer_id) for v in found]


def test_a_duplicate_spelt_like_its_first_row_shows_the_customer_found(customers, lookups):
    answered(lookups, MOBILE, "+919900000013", "777")
    answered(lookups, EMAIL, "li@example.com", "888")
    chunk = records(
        "B1,+919900000013,I1,mobile",
        "B1,+919900000013,I1,mobile",
        "B1,555,I1,id",
        "B1,555,I1,id",  # by id: nothing to show
        "B1,li@example.com,I2,email",
        "B1,li@example.com,I2,email",
        "B1,nobody@example.com,I2,email",
        "B1,nobody@example.com,I2,email",  # not looked up (yet): nothing to show
    )
    assert duplicates_named(customers, chunk) == [
        (2, 1, "777"),
        (4, 3, ""),
        (6, 5, "888"),
        (8, 7, ""),
    ]


def test_a_chunk_of_one_duplicate_row_shows_the_customer_found(customers, lookups):
    answered(lookups, MOBILE, "+919900000013", "777")
    assert duplicates_named(customers, records("B1,+919900000013,I1,mobile")) == []
    again = records("B1,+919900000013,I1,mobile", first=2)
    assert duplicates_named(customers, again) == [(2, 1, "777")]


def test_rows_numbered_with_gaps_show_each_rows_own_customer(customers, lookups):
    """Rows are numbered as the file's lines: a blank line leaves a gap in the numbers."""
    answered(lookups, MOBILE, "+919900000013", "777")
    answered(lookups, EMAIL, "li@example.com", "888")
    chunk = [
        Record(1, ("B1", "+919900000013", "I1", "mobile")),
        Record(2, ("B1", "li@example.com", "I2", "email")),
        Record(4, ("B1", "+919900000013", "I1", "mobile")),
        Record(5, ("B1", "li@example.com", "I2", "email")),
    ]
    assert duplicates_named(customers, chunk) == [(4, 1, "777"), (5, 2, "888")]


@pytest.mark.parametrize(
    ("default", "line"),
    [
        pytest.param(MOBILE, "B1,+919900000013,I1", id="mobile-by-default"),
        pytest.param(ID, "B1,+919900000013,I1,mobile", id="typed-column"),
    ],
)
def test_a_duplicate_shows_the_customer_whichever_way_the_kind_is_given(journal, default, line):
    columns = "badgeMetaId,customerId,issueId" + (",identifierType" if line.count(",") == 3 else "")
    names = tuple(columns.split(","))
    by_customer = ByCustomer(
        Planner(Validator(map_fields(Path("input.csv"), names), default)), Lookups(journal)
    )
    answered(by_customer.lookups, MOBILE, "+919900000013", "777")
    try:
        assert duplicates_named(by_customer, records(line, line)) == [(2, 1, "777")]
    finally:
        by_customer.close()
        by_customer.planner.close()
