"""The journal: what a resume reads back from it, and what it refuses."""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

import pytest

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError
from batch_revoke.journal import Journal, JournalIdentity
from batch_revoke.model import Batch, Counts, Endpoint, LookupAnswer, Mode, Row, RowOutcome, Status
from batch_revoke.outputs import journal_path, runs_in, this_input_run
from tests.conftest import customers_batch

IDENTITY = JournalIdentity("abc", {"host": "https://eu.example", "batch_size": "20"})


def outcome(row: int, status: Status, code: str = "") -> RowOutcome:
    return RowOutcome(row, status, Endpoint.REVOKE_ISSUE, code, "", ("I1",), 200, 1)


def test_a_request_without_its_answer_is_in_flight_after_reopening(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, IDENTITY)
    answered = customers_batch("1", "2")
    lost = Batch(2, Mode.CUSTOMERS, "B1", (Row(3, "B1", "3"),))
    journal.sending(answered)
    journal.sending(lost)
    journal.answered(answered, [outcome(1, Status.REVOKED), outcome(2, Status.FAILED, "404")])
    journal.close()  # as if killed: nothing more is written

    again = Journal.resume(path, IDENTITY)
    assert {row for row, o in again.outcomes_between(1, 3).items() if o.final} == {1, 2}
    assert set(again.in_flight()) == {3}
    assert next(iter(again.outcomes())) == outcome(1, Status.REVOKED)


def test_nothing_done_failures_and_unconfirmed_rows_are_not_settled(tmp_path):
    journal = Journal.create(tmp_path / "j", IDENTITY)
    journal.record(
        [
            outcome(1, Status.FAILED, "http_429"),
            outcome(2, Status.FAILED, "connection_error"),
            outcome(3, Status.UNCONFIRMED, "timeout"),
            outcome(4, Status.FAILED, "814"),
            outcome(5, Status.INVALID, "missing_value"),
        ],
        Counts(),
        None,
    )
    known = journal.outcomes_between(1, 5)
    assert {row for row, o in known.items() if o.final} == {4, 5}
    assert {row for row, o in known.items() if not o.final} == {1, 2, 3}


def test_an_abandoned_request_leaves_its_rows_unsent(tmp_path):
    journal = Journal.create(tmp_path / "j", IDENTITY)
    batch = customers_batch("1")
    journal.sending(batch)
    journal.answered(batch)  # abandoned: no outcomes
    assert journal.in_flight() == set()
    assert journal.outcomes_between(1, 1) == {}


@pytest.mark.parametrize(
    ("identity", "fragment"),
    [
        (JournalIdentity("other", IDENTITY.options), "another input"),
        (
            JournalIdentity("abc", {**IDENTITY.options, "host": "https://us.example"}),
            "host 'https://us.example' (was 'https://eu.example')",
        ),
    ],
)
def test_a_journal_of_another_run_is_refused(tmp_path, identity, fragment):
    path = tmp_path / "j"
    Journal.create(path, IDENTITY).close()
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        Journal.resume(path, identity)


def test_no_journal_and_not_a_journal_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        Journal.resume(tmp_path / "missing", IDENTITY)
    junk = tmp_path / "junk"
    junk.write_text("hello", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a batch-revoke journal"):
        Journal.resume(junk, IDENTITY)


def test_the_newest_journal_of_the_same_input_is_found(tmp_path):
    older, newer = tmp_path / "in-results-1.csv", tmp_path / "in-results-2.csv"
    Journal.create(journal_path(older), IDENTITY).close()
    Journal.create(journal_path(newer), IDENTITY).close()
    Journal.create(journal_path(tmp_path / "in-results-3.csv"), JournalIdentity("x", {})).close()
    settings = RunConfig(tmp_path / "in.csv", output_dir=tmp_path)
    found = this_input_run(settings, "abc")
    assert found is not None
    assert (found.output, found.finished) == (newer, False)
    assert this_input_run(settings, "nope") is None


def test_runs_in_a_folder_say_which_finished_and_what_their_input_was(tmp_path):
    done, stopped = tmp_path / "a-results-1.csv", tmp_path / "b-results-2.csv"
    journal = Journal.create(journal_path(done), IDENTITY)
    journal.set_meta(state="finished", input="in/a.csv")
    journal.close()
    Journal.create(journal_path(stopped), JournalIdentity("def", {})).close()
    (tmp_path / "c-results-3.csv.journal").write_text("not a journal", encoding="utf-8")
    runs = runs_in(tmp_path)
    assert [(r.output, r.finished, r.input_name) for r in runs] == [
        (done, True, "in/a.csv"),
        (stopped, False, ""),
    ]
    assert runs[0].copy == tmp_path / "a-results-1.csv.input.csv"


def test_one_run_at_a_time_per_journal(tmp_path):
    path = tmp_path / "out.csv.journal"
    first = Journal.create(path, IDENTITY)
    with pytest.raises(ConfigError, match="another batch-revoke run is using"):
        Journal.resume(path, IDENTITY)
    with pytest.raises(ConfigError, match="another batch-revoke run is using"):
        Journal.create(path, IDENTITY)  # --overwrite of a journal in use
    first.close()
    Journal.resume(path, IDENTITY).close()  # untouched: still this run's


def test_a_journal_deleted_mid_run_is_restored_from_the_open_file(tmp_path):
    folder = tmp_path / "out"
    journal = Journal.create(folder / "r.csv.journal", IDENTITY)
    journal.record([outcome(1, Status.REVOKED)], Counts(), None)
    for item in sorted(folder.iterdir(), reverse=True):
        item.unlink()
    folder.rmdir()
    assert not journal.path.exists()
    journal.restore()
    journal.close()
    again = Journal.resume(folder / "r.csv.journal", IDENTITY)
    assert [o.row for o in again.outcomes()] == [1]


def test_a_request_whose_every_answer_did_nothing_is_sent_again_not_read_back(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, IDENTITY)
    throttled, maybe = customers_batch("1"), Batch(2, Mode.CUSTOMERS, "B1", (Row(2, "B1", "2"),))
    journal.sending(throttled)
    journal.attempt(throttled, may_be_applied=False)  # a 429: nothing was done
    journal.sending(maybe)
    journal.attempt(maybe, may_be_applied=False)
    journal.attempt(maybe, may_be_applied=True)  # the retry left: it may be applied now
    journal.close()  # as if killed

    again = Journal.resume(path, IDENTITY)
    assert set(again.in_flight()) == {2}  # row 1 is not read back: it is sent again
    assert again.outcomes_between(1, 2) == {}
    assert set(again.last_requests([1, 2])) == {1, 2}  # though it was sent


def test_a_new_attempt_supersedes_an_unsettled_outcome_and_an_outcome_ends_pending(tmp_path):
    journal = Journal.create(tmp_path / "j", IDENTITY)
    batch = customers_batch("1")
    journal.record([outcome(1, Status.UNCONFIRMED, "timeout")], Counts(), None)
    journal.sending(batch)
    assert journal.outcomes_between(1, 1) == {}  # the latest word is "in flight"
    assert set(journal.in_flight()) == {1}
    journal.record([outcome(1, Status.UNCONFIRMED, "814")], Counts(), None)  # a read-back's word
    assert journal.in_flight() == set()
    assert journal.outcomes_between(1, 1)[1].error_code == "814"


def test_a_row_sent_twice_was_last_sent_by_its_latest_request(tmp_path, monkeypatch):
    # The read-back compares revokedOn with when the row's latest request left: taking the
    # first one instead would call a revocation by someone else in between ours.
    journal = Journal.create(tmp_path / "j", IDENTITY)
    clock = iter([1000.0, 2000.0])
    monkeypatch.setattr("batch_revoke.journal.time", SimpleNamespace(time=lambda: next(clock)))
    journal.sending(customers_batch("1", "2"))
    journal.sending(Batch(2, Mode.CUSTOMERS, "B1", (Row(2, "B1", "2"),)))
    assert journal.last_requests([1, 2]) == {1: (1000.0, 1), 2: (2000.0, 1)}


def test_every_attempt_of_a_request_is_counted_for_its_rows(tmp_path):
    """A row read back after a kill shows how many times it was sent: the journal counts
    every attempt as it leaves, retries after an answer that did nothing included."""
    journal = Journal.create(tmp_path / "j", IDENTITY)
    first = customers_batch("1", "2")
    journal.sending(first)
    journal.attempt(first, may_be_applied=True)  # after a 500 or a timeout
    journal.attempt(first, may_be_applied=False)  # a 429 answered that one
    journal.attempt(first, may_be_applied=True)  # and one more attempt leaves
    journal.sending(Batch(2, Mode.CUSTOMERS, "B1", (Row(3, "B1", "3"),)))
    sent = journal.last_requests([1, 2, 3, 4])
    assert {row: sends for row, (_, sends) in sent.items()} == {1: 3, 2: 3, 3: 1}
    journal.close()


def test_the_run_over_time_is_kept_per_session_in_the_commits_of_outcomes(tmp_path):
    import sqlite3

    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, IDENTITY)
    batch = customers_batch("1", "2")
    journal.sending(batch)
    session = Counts(http_calls=3, retries=1, throttled=1, pauses=1, paused_seconds=2.5)
    journal.answered(
        batch, [outcome(1, Status.REVOKED), outcome(2, Status.FAILED, "404")], session, (8, 60.0)
    )
    # An invalid row is counted neither revoked nor answered.
    journal.record([outcome(3, Status.INVALID, "missing_value")], session, (8, 60.0))
    journal.close()
    Journal.resume(path, IDENTITY).close()
    db = sqlite3.connect(path)
    assert [n for (n,) in db.execute("SELECT id FROM sessions")] == [1, 2]
    points = db.execute("SELECT session, revoked, not_revoked, http_calls, pace FROM timeline")
    assert points.fetchall() == [(1, 1, 1, 3, 8), (1, 0, 0, 3, 8)]
    db.close()
    Journal.create(path, IDENTITY).close()  # --overwrite starts the timeline afresh
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM timeline").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM sessions").fetchone() == (1,)
    db.close()


def test_lookup_answers_and_resolved_ids_survive_a_reopening(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, IDENTITY)
    journal.looked_up(
        "mobile:919900000013", LookupAnswer("62090013", http_status=200), Counts(), None
    )
    journal.looked_up(
        "email:x@y.z", LookupAnswer("", "816", "Customer not found", 400), Counts(), None
    )
    resolved = replace(outcome(1, Status.REVOKED), resolved_customer_id="62090013")
    journal.record([resolved], Counts(), None)
    journal.close()
    again = Journal.resume(path, IDENTITY)
    assert again.lookups(["mobile:919900000013", "email:x@y.z", "mobile:1"]) == {
        "mobile:919900000013": LookupAnswer("62090013", http_status=200),
        "email:x@y.z": LookupAnswer("", "816", "Customer not found", 400),
    }
    assert again.outcome(1) == resolved
    again.close()


def test_a_journal_started_without_default_region_still_resumes_and_one_with_it_must_repeat_it():
    old = JournalIdentity("abc", {"host": "h", "identifier_type": "id", "batch_size": "20"})
    assert old.mismatch(replace(old, options={**old.options, "default_region": "IN"}), "j") is None
    new = JournalIdentity("abc", {**old.options, "default_region": "IN"})
    problem = new.mismatch(replace(new, options={**new.options, "default_region": ""}), "j")
    assert problem is not None
    assert "default_region" in str(problem)


def test_the_run_over_time_counts_each_row_once_at_its_latest_outcome(tmp_path):
    """A row answered "nothing done" (503) in one session and revoked by the resume, and a
    row left unconfirmed then read back: each counted once, where its latest outcome was
    recorded, so the whole run's chart adds up to the result file's counts."""
    from batch_revoke.history import read_journal

    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, IDENTITY)
    first = customers_batch("1", "2", "3")
    journal.sending(first)
    lost = [outcome(2, Status.UNCONFIRMED, "timeout"), outcome(3, Status.REVOKED)]
    journal.answered(first, [outcome(1, Status.FAILED, "http_503"), *lost], Counts())
    journal.record([outcome(2, Status.REVOKED)], Counts(read_backs=1), None)  # read back
    journal.close()
    again = Journal.resume(path, IDENTITY)
    resent = customers_batch("1")
    again.sending(resent)
    again.answered(resent, [outcome(1, Status.REVOKED)], Counts(http_calls=1))
    again.close()
    timeline = read_journal(path).timeline
    first_session, second_session = timeline.sessions
    assert (first_session.total("revoked"), first_session.total("not_revoked")) == (2, 0)
    assert (second_session.total("revoked"), second_session.total("not_revoked")) == (1, 0)
    assert (timeline.total("revoked"), timeline.total("not_revoked")) == (3, 0)
