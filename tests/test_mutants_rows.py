"""What a user reads of a row's outcome among the others (batch_revoke/answers/rows.py): a row
revoked through a later customers row, one that raced it, one waiting on a row left unknown,
one in flight when the run stopped, one left unknown by --no-verify: its endpoint, HTTP
status, attempts, the customer id its lookup found and what its message tells them to do."""

from __future__ import annotations

import pytest

from batch_revoke.answers.readbacks import NOT_READ_BACK, InDoubt, not_read_back
from batch_revoke.answers.rows import (
    as_the_run_left_them,
    covering_unknown,
    join_outcomes,
    raced,
    revoked_through,
    same_customer,
)
from batch_revoke.model import Endpoint, ErrorCode, IdentifierType, Record, Row, RowOutcome, Status

# A revokeIssuals row whose customer was named by mobile and found by its lookup, and one
# that named the customer's id itself.
RESOLVED = Row(3, "B1", "565261498", "I1", "", IdentifierType.ID, resolved=True)
BY_ID = Row(3, "B1", "565261498", "I1")
COVERING = RowOutcome(
    9, Status.REVOKED, Endpoint.REVOKE_ISSUE, "", "", ("I1", "I2"), 201, 2, request_id="cov-1"
)


@pytest.mark.parametrize(
    ("row", "resolved"), [(RESOLVED, "565261498"), (BY_ID, "")], ids=["by-mobile", "by-id"]
)
def test_a_row_revoked_through_a_later_customers_row_shows_that_rows_answer(row, resolved):
    through = revoked_through(row, 9, COVERING)
    assert through is not None
    assert (through.row, through.status, through.endpoint) == (
        3,
        Status.REVOKED,
        Endpoint.REVOKE_ISSUE,
    )
    assert (through.error_code, through.issued_ids) == ("", ("I1",))
    assert (through.http_status, through.attempts, through.request_id) == (201, 0, "cov-1")
    assert through.resolved_customer_id == resolved
    assert through.error_message == (
        "revoked through row 9, which revoked every enrolment of this customer for this badge"
    )


def test_a_404_that_raced_a_later_customers_row_says_it_may_have_revoked_it_first():
    told = RowOutcome(3, Status.FAILED, Endpoint.REVOKE_ISSUE, "404", "no issue instance")
    outcome = raced(BY_ID, told, 9, None)
    assert (outcome.status, outcome.error_code) == (Status.UNCONFIRMED, "404")
    assert outcome.error_message == (
        "no issue instance; row 9, which revokes every enrolment of this customer for this "
        "badge, was sent at the same time and may have revoked it first"
    )


@pytest.mark.parametrize(
    ("code", "status"), [("814", Status.FAILED), ("1051", Status.FAILED), ("", Status.REVOKED)]
)
def test_only_not_there_can_be_a_later_customers_rows_doing(code, status):
    """An 814 is "not there" too; a 1051 or a revocation is the row's own answer, whatever a
    later customers row did."""
    told = RowOutcome(3, status, Endpoint.REVOKE_ISSUE, code, "said")
    outcome = raced(BY_ID, told, 9, COVERING)
    if code == "814":
        assert (outcome.status, outcome.error_message) == (Status.REVOKED, RAN_THROUGH)
    else:
        assert outcome is told


RAN_THROUGH = "revoked through row 9, which revoked every enrolment of this customer for this badge"


@pytest.mark.parametrize(
    ("row", "resolved"), [(RESOLVED, "565261498"), (BY_ID, "")], ids=["by-mobile", "by-id"]
)
def test_a_row_waiting_on_a_covering_row_left_unknown_says_so(row, resolved):
    lost = RowOutcome(9, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, ErrorCode.TIMEOUT, "lost")
    outcome = covering_unknown(row, 9, lost)
    assert (outcome.row, outcome.status, outcome.endpoint) == (
        3,
        Status.UNCONFIRMED,
        Endpoint.REVOKE_ISSUE,
    )
    assert outcome.error_code == ErrorCode.COVERING_ROW_UNKNOWN
    assert outcome.resolved_customer_id == resolved
    assert "row 9" in outcome.error_message
    assert "its outcome is unconfirmed" in outcome.error_message


def test_a_row_waiting_on_a_covering_row_with_no_outcome_at_all_says_so():
    outcome = covering_unknown(BY_ID, 9, None)
    assert outcome.error_message == (
        "not sent: row 9 revokes every enrolment of this customer for this badge and its "
        "outcome is no outcome, so this enrolment may be revoked already"
    )


def test_a_row_in_flight_when_the_run_stopped_keeps_its_row_and_endpoint():
    earlier = RowOutcome(12, Status.UNCONFIRMED, Endpoint.REVOKE_EARN, "timeout", "ReadTimeout")
    (outcome,) = as_the_run_left_them([12], [earlier], {12}, "not sent")
    assert (outcome.row, outcome.status, outcome.endpoint, outcome.error_code) == (
        12,
        Status.UNCONFIRMED,
        Endpoint.REVOKE_EARN,
        ErrorCode.RUN_ABORTED,
    )
    assert outcome.error_message.startswith("in flight when the run stopped: ")
    assert "--resume settles it" in outcome.error_message


# --- --no-verify: a row left unknown says how to read it back ---------------------------------


@pytest.mark.parametrize(
    ("row", "endpoint", "resolved"),
    [
        pytest.param(RESOLVED, Endpoint.REVOKE_ISSUE, "565261498", id="issue-by-mobile"),
        pytest.param(Row(4, "B1", "7", "", "E1"), Endpoint.REVOKE_EARN, "", id="earn-by-id"),
    ],
)
def test_a_row_left_in_flight_by_no_verify_says_how_to_read_it_back(row, endpoint, resolved):
    outcome = not_read_back(InDoubt(row, None, None, sends=3))
    assert outcome is not None
    assert (outcome.row, outcome.status, outcome.endpoint, outcome.error_code) == (
        row.row,
        Status.UNCONFIRMED,
        endpoint,
        ErrorCode.RUN_ABORTED,
    )
    assert (outcome.attempts, outcome.resolved_customer_id) == (3, resolved)
    assert outcome.error_message == f"in flight when the run stopped: {NOT_READ_BACK}"
    assert "batch-revoke verify RESULT.csv" in outcome.error_message


def test_a_row_whose_answer_was_lost_says_how_to_read_it_back_once():
    lost = RowOutcome(3, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "ReadTimeout")
    outcome = not_read_back(InDoubt(BY_ID, lost, None, sends=2))
    assert outcome is not None
    assert (outcome.status, outcome.error_code) == (Status.UNCONFIRMED, "timeout")
    assert outcome.error_message == f"ReadTimeout; {NOT_READ_BACK}"
    # A later session with --no-verify again: the message says so already, nothing to add.
    assert not_read_back(InDoubt(BY_ID, outcome, None, sends=2)) is None


# --- every row as the run left it, for the result file -------------------------------------

NOT_SENT = "the run stopped before this row was sent; --resume sends it"


def test_each_row_as_the_run_left_it():
    recorded = [
        RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I1",)),
        RowOutcome(2, Status.FAILED, Endpoint.REVOKE_ISSUE, "1051", "mandatory"),  # not asked
        RowOutcome(3, Status.UNCONFIRMED, Endpoint.REVOKE_EARN, "timeout", "ReadTimeout"),
        RowOutcome(5, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I5",)),
    ]
    left = list(
        as_the_run_left_them([1, 3, 4, 5, 6, 7], recorded, in_flight={3, 5, 7}, not_sent=NOT_SENT)
    )
    assert [(o.row, o.status, o.endpoint, o.error_code) for o in left] == [
        (1, Status.REVOKED, Endpoint.REVOKE_ISSUE, ""),
        # in flight when the run stopped, its earlier answer unsettled: it may be revoked now
        (3, Status.UNCONFIRMED, Endpoint.REVOKE_EARN, ErrorCode.RUN_ABORTED),
        (4, Status.NOT_ATTEMPTED, None, ErrorCode.RUN_ABORTED),
        (5, Status.REVOKED, Endpoint.REVOKE_ISSUE, ""),  # settled: the answer stands
        (6, Status.NOT_ATTEMPTED, None, ErrorCode.RUN_ABORTED),
        (7, Status.UNCONFIRMED, None, ErrorCode.RUN_ABORTED),  # in flight, no answer at all
    ]
    assert left[1].error_message == (
        "in flight when the run stopped: it may or may not have been revoked; --resume settles "
        "it (reads it back, and sends it again if it was not applied)"
    )
    assert left[2].error_message == NOT_SENT


def test_a_row_after_the_last_recorded_outcome_was_not_sent():
    # The journal's last outcome is of a row the file no longer holds (row 2): row 3 after
    # it has none, so it was not sent.
    recorded = [
        RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I1",)),
        RowOutcome(2, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I2",)),
    ]
    left = list(as_the_run_left_them([1, 3], recorded, in_flight=set(), not_sent=NOT_SENT))
    assert [(o.row, o.status) for o in left] == [(1, Status.REVOKED), (3, Status.NOT_ATTEMPTED)]


def test_a_run_stopped_before_any_outcome_was_recorded_sent_no_row():
    left = list(as_the_run_left_them([1, 2], [], in_flight=set(), not_sent=NOT_SENT))
    assert [(o.row, o.status, o.error_message) for o in left] == [
        (1, Status.NOT_ATTEMPTED, NOT_SENT),
        (2, Status.NOT_ATTEMPTED, NOT_SENT),
    ]


def test_the_result_file_says_why_a_row_was_not_sent():
    records = [Record(1, ("B1", "7")), Record(2, ("B1", "8"))]
    recorded = [RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, issued_ids=("I1",))]
    joined = list(join_outcomes(records, recorded, in_flight=set(), not_sent=NOT_SENT))
    assert [(record.row, o.row, o.status, o.error_message) for record, o in joined] == [
        (1, 1, Status.REVOKED, ""),
        (2, 2, Status.NOT_ATTEMPTED, NOT_SENT),
    ]


def test_a_duplicate_found_through_a_lookup_names_its_first_row_and_the_id_found():
    assert same_customer(RESOLVED, 2) == RowOutcome(
        3,
        Status.DUPLICATE,
        Endpoint.REVOKE_ISSUE,
        ErrorCode.DUPLICATE_ROW,
        "same badge, customer and ids as row 2 (one names the customer by id or another "
        "identifier, the lookup says it is the same customer); not sent again",
        resolved_customer_id="565261498",
        duplicate_of=2,
    )
