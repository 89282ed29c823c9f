"""The input made into requests for this run (batch_revoke/plan.py): batches as the sender
asks for them, rows set aside to wait for the customers row that covers them, what a resume
skips or reads back, and what becomes of the waiting rows once the rounds are over. No HTTP:
the journal says what earlier requests did."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace

import pytest

from batch_revoke.chunker import Planner, Validator
from batch_revoke.config import RunConfig
from batch_revoke.journal import Journal
from batch_revoke.lookup import Lookups
from batch_revoke.model import (
    Batch,
    Counts,
    Endpoint,
    ErrorCode,
    IdentifierType,
    Mode,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.plan import Plan
from batch_revoke.recorder import RunRecorder
from batch_revoke.source import Source
from batch_revoke.writer import RESULT_COLUMNS

HEADER = "badgeMetaId,customerId,issueId\n"


def plan_of(path, journal: Journal, *, batch_size: int = 20, settle: bool = False) -> Plan:
    source = Source.open(RunConfig(path, input_is_result=settle), whole=True)
    planner = Planner(Validator(source.field_index), batch_size)
    return Plan(source, RunRecorder(journal, None, source.records, Lookups(journal)), planner)


def shape(batches: list[Batch]) -> list[tuple[Mode, str, list[int]]]:
    return [(b.mode, b.badge_meta_id, [r.row for r in b.rows]) for b in batches]


def revoked(row: int, *ids: str) -> RowOutcome:
    return RowOutcome(row, Status.REVOKED, Endpoint.REVOKE_ISSUE, "", "", ids, 200, 1)


# --- batches from records ----------------------------------------------------------------


def test_rows_of_a_badge_fill_batches_wherever_they_are_in_the_file(write_csv, journal):
    path = write_csv(HEADER + "B,1,\nC,2,\nB,3,\nB,4,I4\nB,5,\nC,6,I6\n")
    plan = plan_of(path, journal, batch_size=2)
    batches = list(plan.batches())
    assert shape(batches) == [
        (Mode.CUSTOMERS, "B", [1, 3]),  # full: sent at once
        (Mode.CUSTOMERS, "C", [2]),
        (Mode.ISSUALS, "B", [4]),
        (Mode.CUSTOMERS, "B", [5]),
        (Mode.ISSUALS, "C", [6]),
    ]
    assert [b.number for b in batches] == [1, 2, 3, 4, 5]


def test_invalid_and_duplicate_rows_go_to_the_journal_not_into_a_batch(write_csv, journal):
    path = write_csv(HEADER + "B,1,\nB,,\nB,1,\nB,2,\n")
    plan = plan_of(path, journal)
    assert shape(list(plan.batches())) == [(Mode.CUSTOMERS, "B", [1, 4])]
    stored = {o.row: (o.status, o.error_code, o.duplicate_of) for o in journal.outcomes()}
    assert stored == {
        2: (Status.INVALID, ErrorCode.MISSING_VALUE, None),
        3: (Status.DUPLICATE, ErrorCode.DUPLICATE_ROW, 1),
    }
    assert plan.run.tally().total == 2


def test_rows_sent_again_are_placed_in_batches_and_the_open_batches_closed(write_csv, journal):
    plan = plan_of(write_csv(HEADER + "B,1,\nB,2,\nB,3,\nC,4,I4\nC,4,\n"), journal, batch_size=2)
    list(plan.batches())
    rows = [Row(1, "B", "1"), Row(2, "B", "2"), Row(3, "B", "3"), Row(4, "C", "4", "I4")]
    again = plan.batches_of(rows)
    assert shape(again) == [
        (Mode.CUSTOMERS, "B", [1, 2]),
        (Mode.CUSTOMERS, "B", [3]),
        (Mode.ISSUALS, "C", [4]),
    ]
    assert again[2].later == {4: 5}  # row 5 revokes every enrolment of customer 4 of C


def test_a_request_says_which_customers_row_later_in_the_file_may_revoke_its_rows_first(
    write_csv, journal, monkeypatch
):
    """Row 1 (enrolment I1 of customer 7) leaves, in a full request, before row 3 (every
    enrolment of customer 7) is read from the file: once row 3 is planned, the request still
    out says so, for `answers.raced` to read when its answer comes. Row 2 is another
    customer's."""
    whole = Source.chunks
    monkeypatch.setattr(
        Source, "chunks", lambda self: (([r], e) for c, e in whole(self) for r in c)
    )
    plan = plan_of(write_csv(HEADER + "B,7,I1\nB,8,I2\nB,7,\n"), journal, batch_size=1)
    batches = plan.batches()
    first = next(batches)
    assert (shape([first]), first.later) == ([(Mode.ISSUALS, "B", [1])], {})
    rest = list(batches)
    assert first.later == {1: 3}
    assert [(b.rows[0].row, b.later) for b in rest] == [(2, {}), (3, {})]


# --- rows that wait for the customers row that covers them -----------------------------------


def test_an_issue_row_after_a_customers_row_of_its_customer_waits_for_it(write_csv, journal):
    path = write_csv(HEADER + "B,7,\nB,7,I1\nB,8,I2\nB,7,I3\nC,7,I4\n")
    plan = plan_of(path, journal)
    batches = list(plan.batches())
    assert {row: [r.row for r in rows] for row, rows in plan.deferred.items()} == {1: [2, 4]}
    sent = sorted(r.row for b in batches for r in b.rows)
    assert sent == [1, 3, 5]  # another customer, another badge: not covered


def test_an_issue_row_before_the_customers_row_does_not_wait(write_csv, journal):
    path = write_csv(HEADER + "B,7,I1\nB,7,\n")
    plan = plan_of(path, journal)
    assert sorted(r.row for b in plan.batches() for r in b.rows) == [1, 2]
    assert plan.deferred == {}


def test_waiting_rows_are_released_once_their_covering_row_is_settled(write_csv, journal):
    path = write_csv(HEADER + "B,7,\nB,7,I1\nB,7,I9\nB,8,\nB,8,I5\n")
    plan = plan_of(path, journal)
    list(plan.batches())
    assert plan.release_deferred() == []  # no answer yet: they keep waiting
    plan.run.record([RowOutcome(1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout")])
    assert plan.release_deferred() == []  # an unknown answer: wait for the read-back
    assert set(plan.deferred) == {1, 4}
    plan.run.record([revoked(1, "I1", "I2")])
    send = plan.release_deferred()
    # I1 went with row 1's request; I9 was not among what it revoked, so row 3 is sent.
    assert [r.row for r in send] == [3]
    through = journal.outcome(2)
    assert (through.status, through.issued_ids) == (Status.REVOKED, ("I1",))
    assert "through row 1" in through.error_message
    assert journal.outcome(3) is None
    assert set(plan.deferred) == {4}  # row 4 is still unanswered


def test_a_covering_row_answered_releases_its_rows_while_an_earlier_one_still_waits(
    write_csv, journal
):
    """Covering rows answer in any order: rows waiting for the second one answered go on
    even while the first one in the file has no answer yet."""
    path = write_csv(HEADER + "B,7,\nB,7,I1\nB,8,\nB,8,I5\n")
    plan = plan_of(path, journal)
    list(plan.batches())
    plan.run.record([RowOutcome(3, Status.FAILED, Endpoint.REVOKE_ISSUE, "404")])
    assert [r.row for r in plan.release_deferred()] == [4]
    assert set(plan.deferred) == {1}  # row 1 still unanswered: row 2 keeps waiting


def test_a_failed_covering_row_sends_its_waiting_rows_on_their_own(write_csv, journal):
    path = write_csv(HEADER + "B,7,\nB,7,I1\n")
    plan = plan_of(path, journal)
    list(plan.batches())
    plan.run.record([RowOutcome(1, Status.FAILED, Endpoint.REVOKE_ISSUE, "404")])
    assert [r.row for r in plan.release_deferred()] == [2]
    assert plan.deferred == {}


def test_rows_still_waiting_when_the_rounds_end_are_unconfirmed(write_csv, journal):
    path = write_csv(HEADER + "B,7,\nB,7,I1\nB,8,\nB,8,I2\n")
    plan = plan_of(path, journal)
    list(plan.batches())
    plan.run.record([RowOutcome(1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout")])
    plan.give_up_deferred()
    assert plan.deferred == {}
    for row, covering, said in ((2, 1, "unconfirmed"), (4, 3, "no outcome")):
        outcome = journal.outcome(row)
        assert (outcome.status, outcome.error_code) == (
            Status.UNCONFIRMED,
            ErrorCode.COVERING_ROW_UNKNOWN,
        )
        assert f"row {covering} revokes every enrolment" in outcome.error_message
        assert f"its outcome is {said}" in outcome.error_message


# --- a resume ----------------------------------------------------------------------------


def test_a_resume_keeps_settled_rows_and_sends_the_rest(write_csv, journal):
    path = write_csv(HEADER + "B,1,\nB,2,\nB,3,\nB,4,\n")
    journal.record(
        [
            revoked(1, "I1"),
            RowOutcome(2, Status.FAILED, Endpoint.REVOKE_ISSUE, "404"),
            RowOutcome(3, Status.FAILED, Endpoint.REVOKE_ISSUE, "http_429"),  # nothing done
        ],
        Counts(),
        None,
    )
    plan = plan_of(path, journal)
    assert shape(list(plan.batches())) == [(Mode.CUSTOMERS, "B", [3, 4])]
    assert plan.run.tally().total == 2
    assert plan.run.tally().by_status == {Status.REVOKED: 1, Status.FAILED: 1}
    assert plan.unsettled() == []


def test_a_resume_reads_back_rows_in_flight_or_unconfirmed_instead_of_sending(write_csv, journal):
    path = write_csv(HEADER + "B,1,\nB,2,\nB,3,\n")
    journal.sending(Batch(1, Mode.CUSTOMERS, "B", (Row(1, "B", "1"),)))  # never answered
    journal.record(
        [RowOutcome(2, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout")], Counts(), None
    )
    plan = plan_of(path, journal)
    assert shape(list(plan.batches())) == [(Mode.CUSTOMERS, "B", [3])]
    unsettled = {u.row.row: u for u in plan.unsettled()}
    assert set(unsettled) == {1, 2}
    assert unsettled[1].previous is None
    assert unsettled[1].sent_at is not None  # when its request left, for the read-back
    assert unsettled[2].previous.error_code == "timeout"
    assert plan.unsettled() == []  # handed over once


def test_a_finished_run_resumed_plans_nothing(write_csv, journal):
    path = write_csv(HEADER + "B,1,\n")
    journal.set_meta(state="finished")
    plan = plan_of(path, journal)
    assert list(plan.batches()) == []
    assert plan.run.tally().total == 0


def test_nothing_more_is_planned_once_the_run_is_asked_to_stop(write_csv, journal):
    path = write_csv(HEADER + "B,1,\n")
    plan = plan_of(path, journal)
    plan.run.stop.request("interrupted")
    assert list(plan.batches()) == []


def test_an_input_changed_during_the_run_stops_it_rather_than_raising(write_csv, journal):
    path = write_csv(HEADER + "B,1,\nB,2,\n")
    plan = plan_of(path, journal)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("B,3,\nB,4,\n")
    assert list(plan.batches()) == []
    assert plan.run.stop.requested
    assert str(path) in plan.run.stop.reason


# --- verify: a result file as the starting point -----------------------------------------


def test_verify_reads_back_the_unconfirmed_rows_of_a_result_file_and_sends_nothing(
    write_csv, journal
):
    def line(row: int, customer: str, status: str, code: str = "", ids: str = "") -> str:
        cells = ["B", customer, "", str(row), "revokeIssue", status, code, "", ids, "200", "1"]
        return ",".join([*cells, "", ""]) + "\n"

    header = HEADER.rstrip("\n") + "," + ",".join(RESULT_COLUMNS) + "\n"
    path = write_csv(
        header
        + line(1, "1", "revoked", ids="I1")
        + line(2, "2", "unconfirmed", "timeout")
        + line(3, "3", "failed", "404")
    )
    plan = plan_of(path, journal, settle=True)
    assert list(plan.batches()) == []
    assert [u.row.row for u in plan.unsettled()] == [2]
    stored = {o.row: (o.status, o.error_code, o.issued_ids) for o in journal.outcomes()}
    assert stored == {
        1: (Status.REVOKED, "", ("I1",)),
        2: (Status.UNCONFIRMED, "timeout", ()),
        3: (Status.FAILED, "404", ()),
    }


@pytest.mark.parametrize(
    ("line", "reads"),
    [("B,7,,", False), ("B,919900000013,E1,mobile", False), ("B,919900000013,,mobile", True)],
)
async def test_the_lookups_read_the_file_only_when_a_row_may_name_a_customer_otherwise(
    write_csv, journal, monkeypatch, line, reads
):
    """A file whose rows all name customer ids (or revokeEarn rows by identifier) is not read
    for lookups: the first revoke leaves once the structure pass is done."""
    path = write_csv(f"badgeMetaId,customerId,earnedBadgeId,identifierType\n{line}\n")
    source = Source.open(RunConfig(path), whole=True)
    planner = Planner(Validator(source.field_index))
    plan = Plan(source, RunRecorder(journal, None, source.records, Lookups(journal)), planner)
    read: list[int] = []
    chunks = Source.chunks

    def counted(self: Source):
        read.append(1)
        return chunks(self)

    async def asked(self: Lookups, sender: object, wanted: Iterable[object], *_: object) -> None:
        asked.keys = list(wanted)  # type: ignore[attr-defined]

    monkeypatch.setattr(Source, "chunks", counted)
    monkeypatch.setattr(Lookups, "look_up", asked)
    await plan.look_up(SimpleNamespace(http_calls=0))  # type: ignore[arg-type]
    assert bool(read) is reads
    assert getattr(asked, "keys", []) == (
        [(IdentifierType.MOBILE, "919900000013")] if reads else []
    )
    planner.close()
