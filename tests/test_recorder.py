"""Outcomes as they come (batch_revoke/recorder.py): into the journal, into the run's one
tally, and against --max-errors; what a revokeIssuals 404 means when a customers row later in
the file was sent; a journal that cannot be written stops the run. No HTTP: the outcomes are
made here, as the sender would hand them on."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from batch_revoke.config import ErrorLimit
from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.journal import Journal, JournalIdentity
from batch_revoke.lookup import Lookups
from batch_revoke.model import Batch, Endpoint, ErrorCode, Mode, Row, RowOutcome, Status
from batch_revoke.readback import ReadBack
from batch_revoke.recorder import RunRecorder


def outcome(row: int, status: Status, code: str = "", *ids: str) -> RowOutcome:
    return RowOutcome(row, status, Endpoint.REVOKE_ISSUE, code, "", ids, 200, 1)


def recorder(journal: Journal, limit: str | None = None, rows: int = 10) -> RunRecorder:
    return RunRecorder(journal, ErrorLimit.parse(limit) if limit else None, rows, Lookups(journal))


# --- record(): the journal and the tally --------------------------------------------------


def test_record_writes_each_outcome_to_the_journal_and_counts_it(journal):
    run = recorder(journal)
    run.record(
        [
            outcome(1, Status.REVOKED, "", "I1"),
            outcome(2, Status.INVALID, ErrorCode.MISSING_VALUE),
            outcome(3, Status.FAILED, "404"),
        ]
    )
    stored = {o.row: (o.status, o.error_code, o.issued_ids) for o in journal.outcomes()}
    assert stored == {
        1: (Status.REVOKED, "", ("I1",)),
        2: (Status.INVALID, "missing_value", ()),
        3: (Status.FAILED, "404", ()),
    }
    assert run.tally().by_status == {Status.REVOKED: 1, Status.INVALID: 1, Status.FAILED: 1}


def test_only_rows_the_api_answered_count_towards_max_errors(journal):
    run = recorder(journal, "2")
    run.record([outcome(1, Status.INVALID, ErrorCode.MISSING_VALUE)] * 3)  # never sent
    run.record([outcome(2, Status.FAILED, "404"), outcome(3, Status.REVOKED)])
    assert not run.stop.requested
    run.record([outcome(4, Status.FAILED, "404")])
    assert run.stop.reason == "--max-errors 2 reached: 2 of 3 rows sent were not revoked"


def test_record_takes_a_generator(journal):
    run = recorder(journal)
    run.record(outcome(n, Status.REVOKED) for n in (4, 5))
    assert [o.row for o in journal.outcomes()] == [4, 5]
    assert run.tally().total == 2


def test_an_earlier_sessions_outcome_is_counted_not_written_again(journal):
    run = recorder(journal, "1")
    run.kept(outcome(7, Status.REVOKED, "", "I7"))
    run.kept(outcome(8, Status.FAILED, "404"))
    assert journal.outcome(7) is None
    assert run.tally().by_status == {Status.REVOKED: 1, Status.FAILED: 1}
    assert not run.stop.requested  # an earlier session's rows do not count towards --max-errors


# --- --max-errors ------------------------------------------------------------------------


def test_max_errors_stops_the_run_once_that_many_rows_sent_were_not_revoked(journal):
    run = recorder(journal, "2")
    run.record([outcome(1, Status.FAILED, "404"), outcome(2, Status.REVOKED)])
    run.record([outcome(3, Status.INVALID, ErrorCode.MISSING_VALUE)] * 3)
    assert not run.stop.requested
    run.record([outcome(4, Status.UNCONFIRMED, ErrorCode.TIMEOUT)])
    assert run.stop.requested
    assert run.stop.reason == "--max-errors 2 reached: 2 of 3 rows sent were not revoked"


def test_max_errors_as_a_share_waits_for_100_rows_sent(journal):
    run = recorder(journal, "5%")
    run.record([outcome(n, Status.FAILED, "404") for n in range(1, 6)])
    run.record([outcome(n, Status.REVOKED) for n in range(6, 100)])
    assert not run.stop.requested  # too few rows to tell a share
    run.record([outcome(100, Status.REVOKED)])
    assert run.stop.reason == "--max-errors 5% reached: 5 of 100 rows sent were not revoked"


def test_without_max_errors_nothing_stops_the_run(journal):
    run = recorder(journal)
    run.record([outcome(n, Status.FAILED, "404") for n in range(1, 201)])
    assert run.tally().not_revoked == 200
    assert not run.stop.requested


def test_the_first_reason_to_stop_is_the_one_reported(journal):
    run = recorder(journal, "1")
    run.stop.request("interrupted")
    run.record([outcome(1, Status.FAILED, "404")])
    assert run.stop.reason == "interrupted"


def test_a_percentage_of_max_errors_counts_from_100_rows():
    limit = ErrorLimit.parse("5%")
    assert not limit.exceeded(errors=99, answered=99)  # too few rows to tell a share
    assert limit.exceeded(errors=5, answered=100)
    assert not limit.exceeded(errors=4, answered=100)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("0", "below 1 row", id="zero"),
        pytest.param("101%", "above 100%", id="over-100-percent"),
        pytest.param("many", "not a number of rows or a percentage", id="words"),
    ],
)
def test_a_max_errors_that_cannot_be_met_is_refused(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ErrorLimit.parse(text)


# --- answered(): what the sender hands on -------------------------------------------------


def test_an_attempt_after_nothing_was_done_may_be_applied_again_and_is_counted(journal):
    # A 429 said nothing was done: a kill then would send the rows again. The retry that
    # follows may be applied: a kill during it must read them back, and it counts as a send.
    run = recorder(journal)
    batch = Batch(1, Mode.CUSTOMERS, "B", (Row(1, "B", "1"), Row(2, "B", "2")))
    run.sending(batch)
    run.nothing_done(batch)
    assert journal.in_flight() == set()
    run.sending_again(batch)
    assert journal.in_flight() == {1, 2}
    assert {row: sends for row, (_, sends) in journal.last_requests([1, 2]).items()} == {
        1: 2,
        2: 2,
    }


def test_an_answer_closes_its_request_and_unknown_rows_wait_for_a_read_back(journal):
    run = recorder(journal)
    rows = (Row(1, "B", "1"), Row(2, "B", "2"))
    batch = Batch(1, Mode.CUSTOMERS, "B", rows)
    run.sending(batch)
    assert set(journal.in_flight()) == {1, 2}
    run.answered(
        batch,
        [outcome(1, Status.REVOKED, "", "I1"), outcome(2, Status.UNCONFIRMED, "not_in_response")],
    )
    assert journal.in_flight() == set()
    assert journal.outcome(2).status is Status.UNCONFIRMED
    (waiting,) = run.take_unconfirmed()
    assert waiting.row is rows[1]
    assert waiting.previous.error_code == "not_in_response"
    assert waiting.sent_at is not None
    tally = run.tally()
    assert tally.by_status == {Status.REVOKED: 1, Status.UNCONFIRMED: 1}
    assert tally.requests == {Endpoint.REVOKE_ISSUE: 1}


def sent(run: RunRecorder, number: int, http_calls: int, retries: int, throttled: int) -> None:
    """The run's sender made these calls, and request `number` was answered."""
    pacer = SimpleNamespace(throttled_calls=throttled, pauses=0, paused_seconds=0.0, pace=None)
    run.attach(SimpleNamespace(http_calls=http_calls, retries=retries, pacer=pacer))
    batch = Batch(number, Mode.CUSTOMERS, "B", (Row(number, "B", str(number)),))
    run.sending(batch)
    run.answered(batch, [outcome(number, Status.REVOKED)])


def test_the_answer_keeps_the_runs_call_counts_for_a_resume(journal):
    """Each answer's commit keeps the calls so far, so a resume after a kill -9 (which ends
    nothing) counts every session's."""
    first = recorder(journal)
    first.record_read_back(ReadBack(), calls=1)
    sent(first, 1, http_calls=5, retries=2, throttled=4)
    journal.close()
    assert journal.path is not None
    identity = JournalIdentity("0" * 64, {"host": "https://eu.example", "batch_size": "20"})
    again = Journal.resume(journal.path, identity)
    run = recorder(again)
    run.record_read_back(ReadBack(), calls=2)
    sent(run, 2, http_calls=3, retries=1, throttled=0)
    tally = run.tally()
    assert (tally.http_calls, tally.retries, tally.read_backs, tally.throttled) == (8, 3, 3, 4)
    assert tally.requests == {Endpoint.REVOKE_ISSUE: 2}
    assert again.counts() == replace(tally, by_status={})
    again.close()


def raced_run(journal: Journal) -> tuple[RunRecorder, Batch]:
    """Row 1 asks for enrolment I1 of customer 7; row 2, later in the file, for every
    enrolment of that customer: row 1 does not wait for it, and its request says so."""
    return recorder(journal, rows=2), Batch(1, Mode.ISSUALS, "B", (Row(1, "B", "7", "I1"),), {1: 2})


def test_a_404_while_a_later_customers_row_is_unanswered_is_unconfirmed(journal):
    run, batch = raced_run(journal)
    run.sending(batch)
    run.answered(batch, [outcome(1, Status.FAILED, "404")])
    stored = journal.outcome(1)
    assert (stored.status, stored.error_code) == (Status.UNCONFIRMED, "404")
    assert "row 2" in stored.error_message
    assert [u.row.row for u in run.take_unconfirmed()] == [1]


def test_a_404_after_a_later_customers_row_revoked_the_enrolment_is_revoked_through_it(journal):
    run, batch = raced_run(journal)
    run.record([outcome(2, Status.REVOKED, "", "I1", "I2")])
    run.sending(batch)
    run.answered(batch, [outcome(1, Status.FAILED, "404")])
    stored = journal.outcome(1)
    assert (stored.status, stored.issued_ids) == (Status.REVOKED, ("I1",))
    assert "through row 2" in stored.error_message
    assert run.take_unconfirmed() == []


def test_a_refusal_of_its_own_is_not_blamed_on_a_later_customers_row(journal):
    run, batch = raced_run(journal)
    run.sending(batch)
    run.answered(batch, [outcome(1, Status.FAILED, "1051")])
    assert (journal.outcome(1).status, journal.outcome(1).error_code) == (Status.FAILED, "1051")


def test_an_abandoned_request_leaves_its_rows_without_an_outcome(journal):
    run = recorder(journal)
    batch = Batch(1, Mode.CUSTOMERS, "B", (Row(1, "B", "1"),))
    run.sending(batch)
    run.abandoned(batch)
    assert journal.in_flight() == set()
    assert journal.outcome(1) is None
    assert run.tally().total == 0


# --- a journal that cannot be written -------------------------------------------------------


def test_a_journal_write_that_fails_stops_the_run_and_counts_nothing(journal, monkeypatch):
    run = recorder(journal)

    def full(outcomes, *_):
        raise StorageError(journal.path, "No space left on device")

    monkeypatch.setattr(journal, "record", full)
    run.record([outcome(1, Status.REVOKED)])
    assert run.stop.requested
    assert "No space left on device" in run.stop.reason
    assert run.storage_error is not None
    assert run.tally().total == 0
    monkeypatch.undo()
    run.record([outcome(2, Status.REVOKED)])  # the run stopped: nothing more is written
    assert journal.outcome(2) is None
    assert run.tally().total == 0


def test_no_request_leaves_without_its_intent_in_the_journal(journal, monkeypatch):
    from batch_revoke.stop import Stopped

    run = recorder(journal)

    def full(batch):
        raise StorageError(journal.path, "disk I/O error")

    monkeypatch.setattr(journal, "sending", full)
    with pytest.raises(Stopped):
        run.sending(Batch(1, Mode.CUSTOMERS, "B", (Row(1, "B", "1"),)))
    assert run.stop.requested


def test_a_journal_whose_folder_was_deleted_stops_the_run(journal):
    run = recorder(journal)
    assert journal.path is not None
    journal.path.unlink()
    run.record([outcome(1, Status.REVOKED)])
    assert run.stop.requested
    assert "the journal disappeared" in run.stop.reason
    assert run.tally().total == 0
