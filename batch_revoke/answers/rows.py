"""What a row's outcome is among the others and when the run ends: a row covered by a later
customers row, a 404 that raced one, a duplicate found through a lookup, one in flight when
the run stopped, and every row as the run left it."""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterable, Iterator
from dataclasses import replace

from batch_revoke.answers.replies import NOT_PRESENT_CODES, outcome
from batch_revoke.model import ErrorCode, Record, Row, RowOutcome, Status, id_key


def revoked_through(row: Row, first: int, covering: RowOutcome) -> RowOutcome | None:
    """Revoked through the customers row `first`, when its answer lists this enrolment."""
    if id_key(row.issue_id) not in {id_key(i) for i in covering.issued_ids}:
        return None
    return outcome(
        row,
        Status.REVOKED,
        "",
        f"revoked through row {first}, which revoked every enrolment of this customer for "
        "this badge",
        (row.issue_id,),
        covering.http_status,
        request_id=covering.request_id,  # that row's answer decided this one
    )


def raced(row: Row, outcome: RowOutcome, later: int, covering: RowOutcome | None) -> RowOutcome:
    """A revokeIssuals row's outcome, when the later customers row `later` may have revoked
    its enrolment first: told it is not there, revoked through that row when its final answer
    lists the enrolment, else unknown (read back)."""
    if outcome.status is not Status.FAILED or outcome.error_code not in NOT_PRESENT_CODES:
        return outcome  # not "nothing there to revoke" (404, 814)
    if covering is not None and covering.final:
        return revoked_through(row, later, covering) or outcome
    return replace(
        outcome,
        status=Status.UNCONFIRMED,
        error_message=f"{outcome.error_message}; row {later}, which revokes every enrolment of "
        "this customer for this badge, was sent at the same time and may have revoked it first",
    )


def same_customer(row: Row, first: int) -> RowOutcome:
    """A duplicate of row `first` found through a lookup of the customer one of them names."""
    duplicate = outcome(
        row,
        Status.DUPLICATE,
        ErrorCode.DUPLICATE_ROW,
        f"same badge, customer and ids as row {first} (one names the customer by id or "
        "another identifier, the lookup says it is the same customer); not sent again",
    )
    return replace(duplicate, duplicate_of=first)


def covering_unknown(row: Row, first: int, covering: RowOutcome | None) -> RowOutcome:
    """A row never sent because the customers row `first` covers it, and that row's outcome
    stayed unknown: this enrolment may be revoked already."""
    status = covering.status.value if covering else "no outcome"
    return outcome(
        row,
        Status.UNCONFIRMED,
        ErrorCode.COVERING_ROW_UNKNOWN,
        f"not sent: row {first} revokes every enrolment of this customer for this badge and "
        f"its outcome is {status}, so this enrolment may be revoked already",
    )


IN_FLIGHT = "in flight when the run stopped: "


def as_the_run_left_them(
    rows: Iterable[int],
    recorded: Iterable[RowOutcome],
    in_flight: Container[int],
    not_sent: str,
) -> Iterator[RowOutcome]:
    """Each row's outcome when the run ended, in row order: the journal's (`recorded`, in row
    order), `unconfirmed` for a row in flight (its request may have been applied, whatever an
    earlier attempt that was not final said), else `not_attempted` because `not_sent`."""
    pending = iter(recorded)
    upcoming = next(pending, None)
    for row in rows:
        outcome = None
        while upcoming is not None and upcoming.row < row:
            upcoming = next(pending, None)
        if upcoming is not None and upcoming.row == row:
            outcome, upcoming = upcoming, next(pending, None)
        if row in in_flight and (outcome is None or not outcome.final):
            why = (
                "it may or may not have been revoked; --resume settles it (reads it back, and "
                "sends it again if it was not applied)"
            )
            endpoint = outcome.endpoint if outcome else None
            outcome = RowOutcome(
                row, Status.UNCONFIRMED, endpoint, ErrorCode.RUN_ABORTED, IN_FLIGHT + why
            )
        elif outcome is None:
            outcome = RowOutcome(row, Status.NOT_ATTEMPTED, None, ErrorCode.RUN_ABORTED, not_sent)
        yield outcome


def join_outcomes(
    records: Iterable[Record],
    recorded: Iterable[RowOutcome],
    in_flight: Container[int],
    not_sent: str,
) -> Iterator[tuple[Record, RowOutcome]]:
    """Each record with its outcome as the run left it, for the result file."""
    shown, numbered = itertools.tee(records)  # streamed: tee holds one record at a time
    rows = (record.row for record in numbered)
    return zip(shown, as_the_run_left_them(rows, recorded, in_flight, not_sent), strict=True)
