"""What the report reads back of a run (batch_revoke/history.py), from files and journals made
up here: the result file's counts, the rows that need a person and what each shows, the
reason a run stopped, the files it refuses and why; and the run over time: sessions, their
columns, the pace and where each session begins."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from batch_revoke import history
from batch_revoke.errors import InputError
from batch_revoke.history import (
    MAX_BUCKETS,
    MAX_GROUPS,
    MAX_MESSAGE,
    ROWS_PER_GROUP,
    Session,
    Timeline,
    bucket_seconds,
    read_journal,
    read_results,
)
from batch_revoke.journal import Journal, JournalIdentity, Point, RunRecord
from batch_revoke.model import Batch, Counts, Endpoint, Mode, Row, RowOutcome, Status
from batch_revoke.writer import RESULT_COLUMNS

INPUT = ("badgeMetaId", "customerId", "issueId", "earnedBadgeId")
HEADER = [*INPUT, *RESULT_COLUMNS]


def line(
    row: int | str,
    status: str,
    code: str = "",
    message: str = "",
    *,
    badge: str = "B",
    customer: str = "7",
    issue: str = "",
    earned: str = "",
    request: str = "",
    resolved: str = "",
) -> list[str]:
    """A result file's line: the input's cells, then the run's."""
    endpoint = "revokeEarn" if earned else "revokeIssue"
    run = [str(row), endpoint, status, code, message, "", "", "1", resolved, request]
    return [badge, customer, issue, earned, *run]


def result_file(tmp_path: Path, *lines: list[str], header: list[str] = HEADER) -> Path:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *lines])
    path = tmp_path / "out.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


# --- the result file -----------------------------------------------------------------------


def test_the_counts_are_per_status_and_per_code_and_lines_not_a_runs_are_left_out(tmp_path):
    path = result_file(
        tmp_path,
        line(1, "revoked"),
        line(2, "failed", "404", "no such enrolment"),
        line(3, "failed", "404", "no such enrolment"),
        line(4, "invalid", "missing_value", "badgeMetaId is blank"),
        ["a", "short", "line"],  # not one of the writer's: not counted at all
        line("x", "revoked"),  # a number that does not read: counted in the total only
        line(7, "nonsense"),
        line(8, "duplicate", "duplicate_row", "same badge, customer and ids as row 1; ..."),
    )
    results = read_results(path)
    assert results.path == path
    assert results.total == 7
    assert dict(results.counts.by_status) == {
        Status.REVOKED: 1,
        Status.FAILED: 2,
        Status.INVALID: 1,
        Status.DUPLICATE: 1,
    }
    assert list(results.counts.by_status) == [
        Status.REVOKED,
        Status.FAILED,
        Status.INVALID,
        Status.DUPLICATE,
    ]
    assert dict(results.counts.by_error) == {
        (Status.FAILED, "404"): 2,
        (Status.INVALID, "missing_value"): 1,
        (Status.DUPLICATE, "duplicate_row"): 1,
    }
    assert results.counts.duplicates_pending == 0  # row 1 was revoked
    assert results.not_revoked == 3
    assert (results.stopped_reason, results.stopped_in_flight) == ("", 0)
    assert [(g.status, g.code, g.rows) for g in results.groups] == [
        (Status.FAILED, "404", 2),
        (Status.INVALID, "missing_value", 1),
    ]
    assert results.by_code == [
        (Status.FAILED, "404", 2),
        (Status.DUPLICATE, "duplicate_row", 1),
        (Status.INVALID, "missing_value", 1),
    ]


@pytest.mark.parametrize(
    ("revoked", "original", "pending"),
    [
        pytest.param([], 3, 1, id="original-never-revoked"),
        pytest.param([3], 3, 0, id="original-revoked-before"),
        pytest.param([1], 3, 1, id="original-past-the-last-revoked"),
        pytest.param([1], 2, 1, id="original-just-after-the-last-revoked"),
        pytest.param([1, 2, 3], 2, 0, id="original-among-rows-revoked-one-after-another"),
        pytest.param([1, 9], 3, 1, id="original-among-rows-not-revoked"),
        pytest.param([5], 5, 0, id="original-revoked-after-the-duplicate"),
    ],
)
def test_a_duplicate_is_pending_until_its_original_row_is_revoked(
    tmp_path, revoked, original, pending
):
    lines = [line(row, "revoked") for row in revoked if row < 4]
    lines.append(line(4, "duplicate", "duplicate_row", f"same badge as row {original}; not sent"))
    lines += [line(row, "revoked") for row in revoked if row > 4]
    results = read_results(result_file(tmp_path, *lines))
    assert results.counts.duplicates_pending == pending


def test_a_duplicate_whose_message_names_no_row_is_not_pending(tmp_path):
    path = result_file(tmp_path, line(4, "duplicate", "duplicate_row", "same as arrow 3"))
    assert read_results(path).counts.duplicates_pending == 0


def test_a_stopped_run_says_why_from_its_first_row_not_sent_and_counts_those_in_flight(tmp_path):
    path = result_file(
        tmp_path,
        line(1, "revoked"),
        line(2, "unconfirmed", "run_aborted", "in flight when the run stopped"),
        line(3, "not_attempted", "run_aborted", "not sent: interrupted (Ctrl-C)"),
        line(4, "not_attempted", "run_aborted", "not sent: something else"),
        line(5, "unconfirmed", "run_aborted", "in flight when the run stopped"),
        line(6, "unconfirmed", "timeout", "no answer"),
        line(7, "failed", "run_aborted", "not sent: a third reason"),
        line(8, "unconfirmed", "run_aborted", "in flight when the run stopped"),
    )
    results = read_results(path)
    assert results.stopped_reason == "interrupted (Ctrl-C)"
    assert results.stopped_in_flight == 3


def test_each_row_that_needs_a_person_shows_its_ids_its_answer_and_the_customer_found(tmp_path):
    long = "m" * (MAX_MESSAGE + 5)
    path = result_file(
        tmp_path,
        line(1, "failed", "404", "no such enrolment", issue="I1", request="req-1", resolved="77"),
        line(2, "failed", "404", long, badge="C", customer="8", earned="E2"),
        line(3, "failed", "404", "m" * MAX_MESSAGE, customer="9"),
    )
    results = read_results(path)
    (group,) = results.groups
    assert [(s.row, s.badge, s.customer, s.ids, s.request_id, s.resolved) for s in group.shown] == [
        (1, "B", "7", "I1", "req-1", "77"),
        (2, "C", "8", "E2", "", ""),
        (3, "B", "9", "", "", ""),
    ]
    assert group.shown[0].message == "no such enrolment"
    assert group.shown[1].message == "m" * (MAX_MESSAGE - 1) + "…"
    assert group.shown[2].message == "m" * MAX_MESSAGE
    assert results.shows_resolved


def test_the_rows_shown_leave_out_the_input_columns_a_file_does_not_have(tmp_path):
    header = ["customerId", "badgeMetaId", *RESULT_COLUMNS]
    cells = ["7", "B", "1", "revokeIssue", "failed", "404", "gone", "", "", "1", "", ""]
    (group,) = read_results(result_file(tmp_path, cells, header=header)).groups
    (shown,) = group.shown
    assert (shown.badge, shown.customer, shown.ids) == ("B", "7", "")
    assert not read_results(result_file(tmp_path, cells, header=header)).shows_resolved


def test_a_reason_lists_its_first_rows_and_counts_the_rest(tmp_path):
    rows = range(1, ROWS_PER_GROUP + 4)
    path = result_file(tmp_path, *(line(row, "failed", "404", "gone") for row in rows))
    (group,) = read_results(path).groups
    assert (group.rows, group.more) == (ROWS_PER_GROUP + 3, 3)
    assert [s.row for s in group.shown] == list(range(1, ROWS_PER_GROUP + 1))


def test_reasons_are_listed_most_rows_first_then_by_status_and_code_up_to_the_most_shown(
    tmp_path,
):
    lines = [line(1, "invalid", "missing_value", "blank"), line(2, "failed", "zz", "a")]
    lines += [line(3, "failed", "404", "a"), line(4, "unconfirmed", "404", "a")]
    lines += [line(5, "failed", "500", "a"), line(6, "failed", "500", "a")]
    lines += [line(10 + n, "failed", f"c{n:02}", "a") for n in range(MAX_GROUPS)]
    results = read_results(result_file(tmp_path, *lines))
    assert len(results.groups) == MAX_GROUPS
    assert [(g.status, g.code) for g in results.groups[:5]] == [
        (Status.FAILED, "500"),
        (Status.FAILED, "404"),
        (Status.FAILED, "c00"),
        (Status.FAILED, "c01"),
        (Status.FAILED, "c02"),
    ]
    assert (Status.INVALID, "missing_value") not in [(g.status, g.code) for g in results.groups]
    assert results.by_code[:3] == [
        (Status.FAILED, "500", 2),
        (Status.FAILED, "404", 1),
        (Status.UNCONFIRMED, "404", 1),
    ]
    assert results.not_revoked == 6 + MAX_GROUPS


def test_rows_that_need_no_person_are_not_listed(tmp_path):
    path = result_file(
        tmp_path,
        line(1, "revoked", "already_revoked", "was revoked"),
        line(2, "duplicate", "duplicate_row", "same as row 1"),
        line(3, "not_attempted", "", "no code"),
    )
    results = read_results(path)
    assert results.groups == []
    assert results.by_code == [
        (Status.REVOKED, "already_revoked", 1),
        (Status.DUPLICATE, "duplicate_row", 1),
    ]
    assert not results.shows_resolved


def test_a_result_file_with_a_byte_order_mark_reads(tmp_path):
    path = result_file(tmp_path, line(1, "failed", "404", "gone", badge="Bü"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    results = read_results(path)
    assert results.counts.by_status == {Status.FAILED: 1}
    assert [(s.badge, s.customer) for s in results.groups[0].shown] == [("Bü", "7")]


def test_a_message_keeps_the_line_breaks_it_was_written_with(tmp_path):
    path = result_file(tmp_path, line(1, "failed", "500", "one\r\ntwo\nthree"))
    (group,) = read_results(path).groups
    assert group.shown[0].message == "one\r\ntwo\nthree"


def test_a_result_file_of_an_earlier_version_is_refused_naming_the_file(tmp_path):
    path = result_file(tmp_path, header=[*INPUT, *RESULT_COLUMNS[:-1]])
    with pytest.raises(InputError) as raised:
        read_results(path)
    assert raised.value.path == path
    assert "request_id" in raised.value.problem


def test_a_missing_file_is_refused_with_the_fix(tmp_path):
    with pytest.raises(InputError) as raised:
        read_results(tmp_path / "none.csv")
    assert raised.value.fix == "pass a result file of batch-revoke"
    assert raised.value.problem == "No such file or directory"


def test_a_file_that_cannot_be_opened_for_a_reason_with_no_errno_says_that_reason(
    tmp_path, monkeypatch
):
    def refuse(*_: object, **__: object) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(InputError) as raised:
        read_results(tmp_path / "out.csv")
    assert raised.value.problem == "the disk went away"


def test_an_incomplete_result_file_is_refused_with_the_command_that_finishes_it(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("INCOMPLETE: the run stopped; to finish it: batch-revoke run x --resume\n")
    with pytest.raises(InputError) as raised:
        read_results(path)
    assert raised.value.problem == (
        "the result file is marked INCOMPLETE: its run has not finished writing it"
    )
    assert raised.value.fix == "batch-revoke run x --resume"
    path.write_text("INCOMPLETE: the run stopped\n")
    with pytest.raises(InputError) as raised:
        read_results(path)
    assert raised.value.fix == "resume the run first"


@pytest.mark.parametrize("text", ["", "badgeMetaId,customerId\nB,7\n"])
def test_a_file_that_is_no_result_file_is_refused_with_the_fix(tmp_path, text):
    path = tmp_path / "out.csv"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        read_results(path)
    assert raised.value.problem == (
        f"not a batch-revoke result file (its last columns are not {', '.join(RESULT_COLUMNS)})"
    )
    assert raised.value.fix == "pass the result CSV a run wrote"


def test_a_result_file_that_is_no_readable_csv_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text(",".join(HEADER) + '\nB,7,,,1,revokeIssue,"rev"oked,,,,,1,,\n')
    with pytest.raises(InputError) as raised:
        read_results(path)
    assert raised.value.problem.startswith("not a readable CSV (")
    assert raised.value.fix == "pass the result CSV a run wrote"


# --- the journal: sessions and the run over time -----------------------------------------


def counts(revoked: int = 0, failed: int = 0, **calls: int) -> Counts:
    by_status = {Status.REVOKED: revoked} if revoked else {}
    if failed:
        by_status[Status.FAILED] = failed
    return Counts(by_status, **calls)


def session_of(
    number: int, started: float, points: list[Point], end_hint: float | None = None
) -> Session:
    """The session `number` as the report reads it from a journal whose last session it is
    (started at `started`, with `points`), the result file written at `end_hint`."""
    earlier: list[tuple[float, list[Point]]] = [(0.0, [])] * (number - 1)
    record = RunRecord({}, Counts(), [*earlier, (started, points)])
    reading = pytest.MonkeyPatch()
    reading.setattr(history, "read_run", lambda path: record)
    try:
        return read_journal(Path("out.csv.journal"), end_hint).timeline.sessions[-1]
    finally:
        reading.undo()


def test_a_sessions_steps_have_its_rows_and_the_calls_since_the_step_before():
    points = [
        (105.0, counts(1, http_calls=3, retries=1), 2.0),
        (110.0, counts(2, http_calls=5, retries=1), None),
        (112.0, counts(0, http_calls=4), 1.5),  # a count that went down: none since
    ]
    session = session_of(3, 100.0, points)
    assert (session.number, session.started, session.ended, session.seconds) == (
        3,
        100.0,
        112.0,
        12.0,
    )
    assert [(at, c.revoked, c.http_calls, c.retries, pace) for at, c, pace in session.steps] == [
        (5.0, 1, 3, 1, 2.0),
        (10.0, 2, 2, 0, None),
        (12.0, 0, 0, 0, 1.5),
    ]
    assert session.total("calls") == 5
    assert session.total("revoked") == 3
    assert not session.sent_nothing


@pytest.mark.parametrize(
    ("hint", "ended"),
    [
        pytest.param(None, 112.0, id="no-result-file"),
        pytest.param(150.0, 150.0, id="result-written-after-the-last-point"),
        pytest.param(112.0 + 3600, 112.0 + 3600, id="an-hour-after"),
        pytest.param(112.0 + 3601, 112.0, id="more-than-an-hour-after-a-copy"),
        pytest.param(99.0, 112.0, id="before-the-session"),
        pytest.param(100.0, 112.0, id="at-its-start"),
    ],
)
def test_a_session_ends_when_its_result_file_was_written_if_that_is_close(hint, ended):
    points = [(105.0, counts(1), None), (112.0, counts(2), None)]
    assert session_of(1, 100.0, points, hint).ended == ended


def test_a_session_with_no_points_lasts_nothing_and_sent_nothing():
    session = session_of(1, 100.0, [], 50.0)
    assert (session.ended, session.seconds, session.steps) == (100.0, 0.0, ())
    assert session.sent_nothing
    assert Session(1, 100.0, 90.0, ()).seconds == 0.0


@pytest.mark.parametrize(
    "counted",
    [counts(http_calls=1), counts(1), counts(failed=1), Counts({Status.UNCONFIRMED: 1})],
)
def test_a_session_that_made_a_call_or_settled_a_row_sent_something(counted):
    assert not session_of(1, 0.0, [(1.0, counted, None)]).sent_nothing


def test_the_run_over_time_draws_the_sessions_that_sent_something_one_after_another():
    first = session_of(1, 1000.0, [(1010.0, counts(2, http_calls=2), 1.0)])
    idle = session_of(2, 5000.0, [])
    second = session_of(3, 9000.0, [(9001.0, counts(1, http_calls=4), None)], 9030.0)
    timeline = Timeline.of([first, idle, second])
    assert timeline.sessions == (first, idle, second)
    assert [(m.number, m.at, m.seconds) for m in timeline.marks] == [
        (1, 0.0, 10.0),
        (3, 10.0, 30.0),
    ]
    assert timeline.seconds == 40.0
    assert timeline.width == 1
    assert len(timeline.buckets) == 40
    assert [(b.start, b.session) for b in timeline.buckets[9:12]] == [
        (9, 1),
        (10, 3),
        (11, 3),
    ]
    assert timeline.buckets[0].session == 1
    drawn = {b.start: (b.counts.revoked, b.counts.http_calls) for b in timeline.buckets}
    assert drawn[10] == (2, 2)  # first's point, 10 s in: the last column of its stretch
    assert drawn[11] == (1, 4)
    assert timeline.total("revoked") == 3
    assert timeline.total("calls") == 6


def test_a_run_that_sent_nothing_has_its_sessions_and_no_chart():
    idle = session_of(1, 5000.0, [])
    timeline = Timeline.of([idle])
    assert (timeline.sessions, timeline.width, timeline.buckets, timeline.marks) == (
        (idle,),
        1,
        (),
        (),
    )
    assert timeline.seconds == 0


def test_each_column_has_the_pace_at_its_end_kept_across_columns_without_points():
    steps = [
        (0.5, counts(1), 2.0),
        (0.9, counts(1), 3.0),  # the later point of the column sets its pace
        (3.2, counts(1), None),  # no pace known: none
        (6.0, counts(1), 0.0),
    ]
    session = Session(1, 0.0, 8.0, tuple(steps))
    timeline = Timeline.of([session])
    assert timeline.width == 1
    assert [b.pace for b in timeline.buckets] == [3.0, 3.0, 3.0, None, None, None, None, None]
    assert [b.counts.revoked for b in timeline.buckets] == [2, 0, 0, 1, 0, 0, 1, 0]


def test_a_columns_pace_is_per_column_and_points_past_the_end_fall_in_the_last():
    steps = [(0.0, counts(1), 0.5), (45.0, counts(1), None), (600.0, counts(1), 0.25)]
    session = Session(1, 0.0, 599.0, tuple(steps))
    timeline = Timeline.of([session])
    assert timeline.width == bucket_seconds(599.0) == 10
    assert len(timeline.buckets) == 60
    assert timeline.buckets[0].pace == 5.0  # 0.5 calls a second, 10 s a column
    assert timeline.buckets[4].counts.revoked == 1  # 45 s in
    assert (timeline.buckets[-1].counts.revoked, timeline.buckets[-1].pace) == (1, 2.5)
    assert [b.start for b in timeline.buckets[:3]] == [0, 10, 20]


def test_points_before_a_sessions_start_fall_in_the_first_column():
    session = Session(1, 10.0, 13.0, ((-2.0, counts(1), None), (2.5, counts(1), None)))
    timeline = Timeline.of([session])
    assert [b.counts.revoked for b in timeline.buckets] == [1, 0, 1]


@pytest.mark.parametrize(
    ("span", "width"),
    [
        (0.0, 1),
        (90.0, 1),
        (91.0, 2),
        (180.0, 2),
        (181.0, 5),
        (599.0, 10),
        (600.0, 60),
        (5400.0, 60),
        (5401.0, 120),
        (86400.0 * MAX_BUCKETS, 86400),
        (86400.0 * MAX_BUCKETS + 1, 2 * 86400),
        (86400.0 * MAX_BUCKETS * 3, 3 * 86400),
    ],
)
def test_a_column_is_as_narrow_as_the_chart_allows_and_a_minute_once_the_run_is_long(span, width):
    assert bucket_seconds(span) == width


def test_the_journal_says_the_runs_input_options_start_end_and_calls(tmp_path):
    path = tmp_path / "out.csv.journal"
    identity = JournalIdentity("0" * 64, {"host": "https://eu.example", "batch_size": "20"})
    journal = Journal.create(path, identity)
    journal.set_meta(input="in.csv")
    journal.record(
        [RowOutcome(1, Status.INVALID, Endpoint.REVOKE_ISSUE, "missing_value")],
        Counts(http_calls=2),
        None,
    )
    journal.close()
    facts = read_journal(path)
    assert facts.path == path
    assert facts.input == "in.csv"
    assert facts.options == {"host": "https://eu.example", "batch_size": "20"}
    assert facts.created is not None
    assert facts.created > 1e9
    assert not facts.finished
    (session,) = facts.timeline.sessions
    assert session.number == 1
    again = Journal.resume(path, identity)
    again.set_meta(state="finished")
    again.close()
    finished = read_journal(path, result_mtime=session.ended + 60)
    assert finished.finished
    first, second = finished.timeline.sessions
    assert (first.number, second.number) == (1, 2)
    assert first.ended == session.ended  # only the last session ends with the result file
    assert second.ended == max(second.started, session.ended + 60)


def test_a_journal_with_no_options_recorded_reads_as_none(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, JournalIdentity("0" * 64, {}))
    journal.close()
    facts = read_journal(path)
    assert facts.options == {}
    assert facts.input == ""
    assert json.loads(json.dumps(facts.options)) == {}


def test_a_run_shorter_than_a_column_is_one_column():
    for seconds in (0.0, 0.5, 1.0):
        session = Session(1, 0.0, seconds, ((0.0, counts(1), None),))
        assert len(Timeline.of([session]).buckets) == 1


def test_a_first_column_with_no_point_has_no_pace():
    session = Session(1, 0.0, 3.0, ((2.5, counts(1), 2.0),))
    assert [b.pace for b in Timeline.of([session]).buckets] == [None, None, 2.0]


def test_each_column_of_a_wide_chart_names_the_session_it_begins_in():
    first = Session(1, 0.0, 300.0, ((10.0, counts(1), None),))
    second = Session(2, 1000.0, 1250.0, ((10.0, counts(1), None),))
    timeline = Timeline.of([first, second])
    assert timeline.width == 10
    assert [b.session for b in timeline.buckets[29:32]] == [1, 2, 2]
    assert timeline.buckets[-1].session == 2


def test_the_journal_says_how_many_requests_the_run_made(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, JournalIdentity("0" * 64, {}))
    batch = Batch(1, Mode.CUSTOMERS, "B", (Row(1, "B", "7"),))
    journal.sending(batch)
    journal.answered(batch, [RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE)], Counts())
    journal.close()
    assert dict(read_journal(path).counts.requests) == {Endpoint.REVOKE_ISSUE: 1}


def test_a_journal_with_its_creation_and_options_left_blank_reads(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, JournalIdentity("0" * 64, {}))
    journal.set_meta(created="", options="")
    journal.close()
    facts = read_journal(path)
    assert (facts.created, facts.options) == (None, {})


def test_a_retrys_result_file_says_what_became_of_each_earlier_status_and_code(tmp_path):
    """`retry` writes the earlier run's row, status and code before its own columns: the
    report counts, per earlier status and code, the rows' statuses now."""
    earlier = ("input_row", "input_status", "input_error_code")
    header = [*INPUT, *earlier, *RESULT_COLUMNS]

    def retried(row: int, was: str, was_code: str, status: str, code: str = "") -> list[str]:
        cells = line(row, status, code, "gone" if code else "")
        return [*cells[:4], str(row), was, was_code, *cells[4:]]

    lines = [
        retried(1, "failed", "500", "revoked"),
        retried(2, "failed", "500", "failed", "404"),
        retried(3, "failed", "500", "revoked"),
        retried(4, "unconfirmed", "timeout", "revoked"),
    ]
    results = read_results(result_file(tmp_path, *lines, header=header))
    assert results.lineage == {
        ("failed", "500"): {"revoked": 2, "failed": 1},
        ("unconfirmed", "timeout"): {"revoked": 1},
    }
    assert results.total == 4


def test_a_result_file_of_a_first_run_has_no_lineage(tmp_path):
    results = read_results(result_file(tmp_path, line(1, "revoked")))
    assert results.lineage == {}


def test_the_journal_of_a_retry_names_the_result_file_its_rows_come_from(tmp_path):
    path = tmp_path / "out.csv.journal"
    journal = Journal.create(path, JournalIdentity("0" * 64, {}))
    journal.close()
    assert read_journal(path).retry_of == ""
    again = Journal.resume(path, JournalIdentity("0" * 64, {}))
    again.set_meta(retry_of="earlier.csv")
    again.close()
    assert read_journal(path).retry_of == "earlier.csv"


@pytest.mark.parametrize("column", ["input_status", "input_error_code"])
def test_an_input_column_named_like_a_retrys_alone_is_no_lineage(tmp_path, column):
    """An input of the user's own may have a column named like one a retry writes: without
    both the earlier status and code, nothing is read as what became of them."""
    header = [*INPUT, column, *RESULT_COLUMNS]
    cells = line(1, "failed", "404", "gone")
    results = read_results(result_file(tmp_path, [*cells[:4], "x", *cells[4:]], header=header))
    assert results.lineage == {}
    assert results.counts.by_status == {Status.FAILED: 1}
