"""The input made into requests (batch_revoke/plan.py) when rows name their customer by mobile:
what a row looked up becomes, which verdicts an earlier session settled and a resume keeps,
which rows a resume reads back rather than calls duplicates, what `verify` reads back, and
what the lookups before the first revoke are asked and say in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import SimpleNamespace

import pytest

from batch_revoke.chunker import planner_for
from batch_revoke.config import RunConfig
from batch_revoke.journal import Journal
from batch_revoke.lookup import Lookups
from batch_revoke.model import (
    Batch,
    Counts,
    Endpoint,
    ErrorCode,
    IdentifierType,
    LookupAnswer,
    Mode,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.plan import Plan
from batch_revoke.recorder import RunRecorder
from batch_revoke.source import Source
from batch_revoke.writer import RESULT_COLUMNS

HEADER = "badgeMetaId,customerId,issueId,identifierType\n"
MOBILE = "919900000013"  # customer 7, once looked up
UNKNOWN = "919900000099"  # no such customer
# Row 1 by mobile, row 2 blank, row 3 row 1 again as spelt, row 4 row 1's customer by id,
# row 5 a mobile the lookup does not find, row 6 another customer by id.
FILE = HEADER + f"B,{MOBILE},,mobile\nB,,,\nB,{MOBILE},,mobile\nB,7,,\nB,{UNKNOWN},,mobile\nB,8,,\n"


def plan_by_customer(path, journal: Journal, *, settle: bool = False) -> Plan:
    config = RunConfig(path, input_is_result=settle)
    source = Source.open(config, whole=True)
    planner = planner_for(config, source)
    return Plan(source, RunRecorder(journal, None, source.records, Lookups(journal)), planner)


def answered(journal: Journal) -> None:
    """The lookups answered: MOBILE is customer 7, UNKNOWN no customer."""
    lookups = Lookups(journal)
    journal.looked_up(lookups.key(IdentifierType.MOBILE, MOBILE), LookupAnswer("7"), Counts(), None)
    journal.looked_up(
        lookups.key(IdentifierType.MOBILE, UNKNOWN),
        LookupAnswer("", "816", "Customer not found for organization", 400, "req-816"),
        Counts(),
        None,
    )


def sent(batches: Iterable[Batch]) -> list[tuple[int, str]]:
    return sorted((row.row, row.customer_id) for batch in batches for row in batch.rows)


def stored(journal: Journal) -> dict[int, tuple[Status, str, int | None, str]]:
    return {
        o.row: (o.status, o.error_code, o.duplicate_of, o.resolved_customer_id)
        for o in journal.outcomes()
    }


def test_rows_looked_up_are_sent_by_id_and_every_other_verdict_is_recorded(write_csv, journal):
    answered(journal)
    plan = plan_by_customer(write_csv(FILE), journal)
    assert sent(plan.batches()) == [(1, "7"), (6, "8")]
    assert stored(journal) == {
        2: (Status.INVALID, ErrorCode.MISSING_VALUE, None, ""),
        # found before any lookup, spelt like row 1: it shows the customer row 1 resolved to
        3: (Status.DUPLICATE, ErrorCode.DUPLICATE_ROW, 1, "7"),
        4: (Status.DUPLICATE, ErrorCode.DUPLICATE_ROW, 1, ""),  # the same customer by id
        5: (Status.FAILED, "816", None, ""),
    }
    assert plan.run.tally().total == 4
    assert plan.unsettled() == []


def test_a_resume_keeps_every_verdict_an_earlier_session_settled(write_csv, journal):
    answered(journal)
    first = plan_by_customer(write_csv(FILE), journal)
    list(first.batches())
    before = stored(journal)
    again = plan_by_customer(write_csv(FILE), journal)
    assert sent(again.batches()) == [(1, "7"), (6, "8")]  # not answered in the first session
    assert stored(journal) == before  # nothing recorded twice
    tally = again.run.tally()
    assert tally.by_status == {Status.INVALID: 1, Status.DUPLICATE: 2, Status.FAILED: 1}
    assert tally.total == 4


@pytest.mark.parametrize("sent_before", ["in flight", "unconfirmed"])
def test_a_row_sent_by_an_earlier_session_is_read_back_not_made_a_duplicate(
    write_csv, journal, sent_before
):
    """Row 4 names row 1's customer by id: a duplicate, unless an earlier session sent it
    already (its request in flight when the run stopped, or answered with no definite
    outcome). What was sent stands: it is read back."""
    answered(journal)
    if sent_before == "in flight":
        journal.sending(Batch(1, Mode.CUSTOMERS, "B", (Row(4, "B", "7"),)))
    else:
        unconfirmed = RowOutcome(4, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout")
        journal.record([unconfirmed], Counts(), None)
    plan = plan_by_customer(write_csv(FILE), journal)
    assert sent(plan.batches()) == [(1, "7"), (6, "8")]
    assert [item.row.row for item in plan.unsettled()] == [4]
    status = journal.outcome(4).status if journal.outcome(4) else None
    assert status is not Status.DUPLICATE  # its read-back will say what it is


def test_a_row_read_back_that_no_request_sent_counts_no_sends(write_csv, journal):
    """An unconfirmed verdict recorded without a request (a covering row's, say): the read-back
    knows neither when it left nor how often."""
    unconfirmed = RowOutcome(1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout")
    journal.record([unconfirmed], Counts(), None)
    plan = plan_by_customer(write_csv(HEADER + "B,7,,\n"), journal)
    assert list(plan.batches()) == []
    (item,) = plan.unsettled()
    assert (item.row.row, item.sent_at, item.sends) == (1, None, 0)


def test_verify_reads_back_every_unconfirmed_row_whatever_comes_before_it(write_csv, journal):
    def line(row: int, status: str, code: str = "") -> str:
        cells = ["B", str(row), "", "", str(row), "revokeIssue", status, code, "", "", "", "1"]
        return ",".join([*cells, "", ""]) + "\n"

    header = HEADER.rstrip("\n") + "," + ",".join(RESULT_COLUMNS) + "\n"
    path = write_csv(
        header
        + line(1, "not_attempted", "run_aborted")
        + line(2, "unconfirmed", "timeout")
        + line(3, "not_attempted", "run_aborted")
        + line(4, "unconfirmed", "timeout")
    )
    plan = plan_by_customer(path, journal, settle=True)
    assert list(plan.batches()) == []
    assert [item.row.row for item in plan.unsettled()] == [2, 4]


# --- the lookups before the first revoke -------------------------------------------------


@pytest.fixture
def asked(monkeypatch):
    """Lookups.look_up replaced: what it is asked, and as if it made 2 lookups in 3 calls."""
    calls: list[tuple[object, list[object], object]] = []

    async def look_up(self: Lookups, sender, wanted, run) -> None:
        calls.append((sender, list(wanted), run))
        self.made += asked.made
        sender.http_calls += asked.calls
        self.unanswered.update(asked.unanswered)

    asked = SimpleNamespace(calls=3, made=2, unanswered={}, asked=calls)
    monkeypatch.setattr(Lookups, "look_up", look_up)
    return asked


def sender(calls: int = 10) -> SimpleNamespace:
    return SimpleNamespace(http_calls=calls)


async def test_the_lookups_are_asked_for_the_rows_still_to_send_with_the_run(
    write_csv, journal, asked
):
    plan = plan_by_customer(write_csv(FILE), journal)
    to = sender()
    await plan.look_up(to)  # type: ignore[arg-type]
    ((by, wanted, run),) = asked.asked
    assert by is to
    assert run is plan.run
    assert wanted == [(IdentifierType.MOBILE, MOBILE)] * 2 + [(IdentifierType.MOBILE, UNKNOWN)]


async def test_no_lookup_for_a_finished_run_or_a_stopped_one(write_csv, journal, asked):
    plan = plan_by_customer(write_csv(FILE), journal)
    plan.run.stop.request("interrupted")
    await plan.look_up(sender())  # type: ignore[arg-type]
    assert [wanted for _, wanted, _ in asked.asked] == [[]]
    journal.set_meta(state="finished")
    await plan_by_customer(write_csv(FILE), journal).look_up(sender())  # type: ignore[arg-type]
    assert len(asked.asked) == 1


@pytest.mark.parametrize(
    ("unanswered", "said"),
    [
        ({}, "looked up 2 customers (3 calls)"),
        ({"k1": "timeout"}, "looked up 2 customers (3 calls); 1 got no answer"),
    ],
)
async def test_the_log_says_how_many_customers_were_looked_up_in_how_many_calls(
    write_csv, journal, asked, caplog, unanswered, said
):
    asked.unanswered = unanswered
    plan = plan_by_customer(write_csv(FILE), journal)
    plan.run.lookups.made = 5  # an earlier step of this session's
    caplog.set_level(logging.INFO, logger="batch_revoke.plan")
    await plan.look_up(sender(calls=10))  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records if r.name == "batch_revoke.plan"] == [said]


async def test_the_log_says_nothing_when_no_customer_was_looked_up(
    write_csv, journal, asked, caplog
):
    asked.made = asked.calls = 0
    plan = plan_by_customer(write_csv(FILE), journal)
    caplog.set_level(logging.INFO, logger="batch_revoke.plan")
    await plan.look_up(sender())  # type: ignore[arg-type]
    assert len(asked.asked) == 1
    assert [r for r in caplog.records if r.name == "batch_revoke.plan"] == []


def test_a_result_file_run_again_reads_back_its_unconfirmed_rows_with_what_they_carry(
    write_csv, journal
):
    """`retry` feeds an earlier result file to `run`: a row it left unconfirmed may have been
    applied, so it is read back (with the outcome it carries) before it is sent again; a
    failed row is sent."""

    def line(row: int, status: str, code: str, message: str) -> str:
        cells = ["B", str(row), "", "", str(row), "revokeIssue", status, code, message]
        return ",".join([*cells, "", "", "1", "", ""]) + "\n"

    header = HEADER.rstrip("\n") + "," + ",".join(RESULT_COLUMNS) + "\n"
    path = write_csv(
        header + line(1, "unconfirmed", "timeout", "no answer") + line(2, "failed", "500", "x")
    )
    plan = plan_by_customer(path, journal)
    assert sent(plan.batches()) == [(2, "2")]
    (item,) = plan.unsettled()
    assert item.row.row == 1
    assert item.previous is not None
    assert (item.previous.row, item.previous.status, item.previous.error_code) == (
        1,
        Status.UNCONFIRMED,
        "timeout",
    )
    assert item.previous.error_message == "no answer"
