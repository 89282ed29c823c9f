"""--auto-resume, in process (batch_revoke/scheduled.py): what a scheduler that runs the same
command every night relies on. The runs stopped earlier in --output-dir are finished first, each
from its own copy of its input and with its own result file; finished ones and ones without a
copy are left alone; one another process still holds is left to it, one it is stopping is waited
for; a run that stops again keeps tonight's input back; then tonight's input is begun, resumed or
reported. The runs are real journals on disk; the run itself is a stand-in that says what it was
asked to do, and time is a fake clock only the wait for a stopping run moves."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from batch_revoke import scheduled
from batch_revoke.config import RunConfig
from batch_revoke.credentials import BasicCredentials
from batch_revoke.errors import RunInProgress
from batch_revoke.journal import Journal
from batch_revoke.model import Counts, ExitStatus, Status
from batch_revoke.outputs import input_copy_path, open_run, run_at, when
from batch_revoke.report import RunReport
from batch_revoke.scheduled import run_scheduled

STAMP = datetime(2100, 1, 2, 3, 4, 5)
TONIGHT = "badgeMetaId,customerId\nB,1\nB,2\n"


def now() -> datetime:
    return STAMP


def night(path: Path, folder: Path, **options) -> RunConfig:
    """The scheduler's command: --output-dir FOLDER --auto-resume."""
    return RunConfig(
        path,
        None,
        "https://api.invalid",
        BasicCredentials("u", "p"),
        output_dir=folder,
        auto_resume=True,
        **options,
    )


def begin(path: Path, folder: Path) -> tuple[Path, Journal]:
    """A run of `path` begun by an earlier night: its journal open, as its process holds it."""
    _source, output, journal = open_run(night(path, folder), now)
    return output, journal


def stopped(path: Path, folder: Path, **meta: str) -> Path:
    """A run begun by an earlier night and killed: unfinished, nobody holds it."""
    output, journal = begin(path, folder)
    if meta:
        journal.set_meta(**meta)
    journal.close()
    return output


def created_of(output: Path) -> float:
    """When the run whose result file is `output` began, as its journal says."""
    found = run_at(output)
    assert found is not None
    return found.created


@dataclass
class Runs:
    """The run as --auto-resume calls it: records each config; a run of an input named in
    `stops` stops again (exit status 3)."""

    stops: set[Path] = field(default_factory=set)
    asked: list[RunConfig] = field(default_factory=list)

    def __call__(self, settings: RunConfig) -> RunReport:
        self.asked.append(settings)
        output = settings.output_path or settings.output_dir / "new.csv"
        tally = Counts({Status.REVOKED: 2})
        if settings.shown_input in self.stops:
            return RunReport(output, tally, 0.0, aborted="throttled too long")
        return RunReport(output, tally, 0.0)


class FakeTime:
    """The clock of the wait for a stopping run: each sleep moves it, then runs `during`
    (what the other process does meanwhile)."""

    def __init__(self, during=lambda: None) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.during = during

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.during()


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(scheduled, "time", clock)
    return clock


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def tonight(write_csv) -> Path:
    return write_csv(TONIGHT, "tonight.csv")


# --- the runs stopped earlier ---------------------------------------------------------------


def test_a_stopped_run_is_finished_first_from_its_own_copy_then_tonights_input_is_begun(
    write_csv, folder, tonight, caplog
):
    last = write_csv("badgeMetaId,customerId\nB,7\n", "last.csv")
    output = stopped(last, folder)
    last.write_text("badgeMetaId,customerId\nB,8\n", encoding="utf-8")  # changed since
    runs = Runs()
    with caplog.at_level(logging.WARNING, logger="batch_revoke.scheduled"):
        report = run_scheduled(night(tonight, folder, sheet="Nightly"), runs)
    first, second = runs.asked
    # The stopped run, from its own copy (not the input as it is now), into its result file.
    assert first.input_path == input_copy_path(output)
    assert first.input_name == last
    assert first.shown_input == last
    assert first.output_path == output
    assert (first.resume, first.auto_resume, first.sheet) == (True, False, "")
    # Then tonight's input, as the scheduler gave it.
    assert second == night(tonight, folder, sheet="Nightly")
    assert report.output_path == folder / "new.csv"
    assert [earlier.output_path for earlier in report.earlier] == [output]
    assert report.note == ""
    created = created_of(output)
    assert caplog.messages == [
        f"finishing the run begun {when(created)} that stopped before it was done "
        f"(input {last}, results {output})"
    ]


def test_a_stopped_run_that_did_not_record_its_inputs_name_is_finished_named_by_its_copy(
    write_csv, folder, tonight, caplog
):
    output = stopped(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder, input="")
    runs = Runs()
    with caplog.at_level(logging.WARNING, logger="batch_revoke.scheduled"):
        run_scheduled(night(tonight, folder), runs)
    first = runs.asked[0]
    assert first.input_name is None
    assert first.shown_input == input_copy_path(output)
    assert "(input ?, results " in caplog.messages[0]


def test_every_stopped_run_is_finished_oldest_first_and_each_is_listed_as_earlier(
    write_csv, folder, tonight
):
    older = stopped(write_csv("badgeMetaId,customerId\nB,7\n", "monday.csv"), folder)
    newer = stopped(write_csv("badgeMetaId,customerId\nB,8\n", "tuesday.csv"), folder)
    runs = Runs()
    report = run_scheduled(night(tonight, folder), runs)
    assert [settings.output_path for settings in runs.asked] == [older, newer, None]
    assert [earlier.output_path for earlier in report.earlier] == [older, newer]


def test_finished_runs_and_runs_without_their_copy_are_left_alone(write_csv, folder, tonight):
    stopped(write_csv("badgeMetaId,customerId\nB,7\n", "done.csv"), folder, state="finished")
    lost = stopped(write_csv("badgeMetaId,customerId\nB,8\n", "lost.csv"), folder)
    input_copy_path(lost).unlink()
    later = stopped(write_csv("badgeMetaId,customerId\nB,9\n", "later.csv"), folder)
    runs = Runs()
    report = run_scheduled(night(tonight, folder), runs)
    # Passed over, not the end of the list: a stopped run begun after them is still finished.
    assert [settings.output_path for settings in runs.asked] == [later, None]
    assert [earlier.output_path for earlier in report.earlier] == [later]


def test_with_an_output_named_the_folders_stopped_runs_are_not_looked_at(
    write_csv, folder, tonight, tmp_path
):
    stopped(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder)
    runs = Runs()
    settings = RunConfig(
        tonight,
        tmp_path / "tonight-results.csv",
        "https://api.invalid",
        BasicCredentials("u", "p"),
        output_dir=folder,
        auto_resume=True,
    )
    report = run_scheduled(settings, runs)
    assert runs.asked == [settings]
    assert report.earlier == ()


def test_a_stopped_run_that_stops_again_keeps_tonights_input_back(write_csv, folder, tonight):
    monday = write_csv("badgeMetaId,customerId\nB,7\n", "monday.csv")
    tuesday = write_csv("badgeMetaId,customerId\nB,8\n", "tuesday.csv")
    first, second = stopped(monday, folder), stopped(tuesday, folder)
    runs = Runs(stops={tuesday})
    report = run_scheduled(night(tonight, folder), runs)
    # Tonight's input would meet the same wall: it is not begun, and the next night finishes
    # both. What the scheduler sees is the run that stopped, with the one finished before it.
    assert [settings.output_path for settings in runs.asked] == [first, second]
    assert report.output_path == second
    assert report.exit_status is ExitStatus.ABORTED
    assert report.note == "this input was not begun"
    assert [earlier.output_path for earlier in report.earlier] == [first]


# --- a run another process holds ------------------------------------------------------------


def test_a_run_another_process_is_running_is_left_to_it_and_tonight_goes_on(
    write_csv, folder, tonight, caplog, fake_time
):
    output, journal = begin(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder)
    later = stopped(write_csv("badgeMetaId,customerId\nB,9\n", "later.csv"), folder)
    runs = Runs()
    try:
        with caplog.at_level(logging.WARNING, logger="batch_revoke.scheduled"):
            report = run_scheduled(night(tonight, folder), runs)
    finally:
        journal.close()
    # Left to its process; the stopped run begun after it is finished, then tonight's input.
    assert [settings.output_path for settings in runs.asked] == [later, None]
    assert [earlier.output_path for earlier in report.earlier] == [later]
    assert fake_time.slept == []  # a running run is not waited for
    created = created_of(output)
    assert caplog.messages[0] == (
        f"the run begun {when(created)} (results {output}) is still going in another "
        "process: left to it"
    )


def test_a_run_another_process_is_stopping_is_waited_for_then_finished(
    write_csv, folder, tonight, caplog, fake_time
):
    last = write_csv("badgeMetaId,customerId\nB,7\n", "last.csv")
    output, journal = begin(last, folder)
    journal.mark_stopping()
    fake_time.during = journal.close  # it lets go during the first wait
    runs = Runs()
    with caplog.at_level(logging.WARNING, logger="batch_revoke.scheduled"):
        report = run_scheduled(night(tonight, folder, sheet="Nightly"), runs, wait=30.0)
    assert [settings.output_path for settings in runs.asked] == [output, None]
    assert runs.asked[0].input_name == last
    assert [earlier.output_path for earlier in report.earlier] == [output]
    created = created_of(output)
    assert caplog.messages[0] == (
        f"the run begun {when(created)} (results {output}) is stopping in another process: "
        "waiting up to 30s for it to let go"
    )
    assert caplog.messages[1].startswith("finishing the run begun")
    # It is noticed within a tenth of a second of letting go.
    assert fake_time.slept == [pytest.approx(0.1)]


def test_a_stopping_run_is_waited_for_until_it_lets_go_within_the_wait(
    write_csv, folder, tonight, fake_time
):
    output, journal = begin(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder)
    journal.mark_stopping()
    waited = []

    def letting_go_late() -> None:
        waited.append(1)
        if len(waited) == 50:  # five seconds into a wait of ten
            journal.close()

    fake_time.during = letting_go_late
    runs = Runs()
    run_scheduled(night(tonight, folder), runs, wait=10.0)
    assert [settings.output_path for settings in runs.asked] == [output, None]


def test_a_stopping_run_that_does_not_let_go_within_the_wait_is_left_to_its_process(
    write_csv, folder, tonight, caplog, fake_time
):
    _output, journal = begin(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder)
    journal.mark_stopping()
    runs = Runs()
    try:
        with caplog.at_level(logging.WARNING, logger="batch_revoke.scheduled"):
            report = run_scheduled(night(tonight, folder), runs, wait=2.0)
    finally:
        journal.close()
    assert runs.asked == [night(tonight, folder)]
    assert report.earlier == ()
    assert 2.0 <= sum(fake_time.slept) < 2.2  # the whole wait, and no more
    assert "is still going in another process: left to it" in caplog.messages[-1]


def test_no_wait_at_all_leaves_a_stopping_run_to_its_process_at_once(
    write_csv, folder, tonight, fake_time
):
    _output, journal = begin(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder)
    journal.mark_stopping()
    fake_time.during = journal.close  # it would let go, were it waited for
    runs = Runs()
    try:
        run_scheduled(night(tonight, folder), runs, wait=0.0)
    finally:
        journal.close()
    assert runs.asked == [night(tonight, folder)]
    assert fake_time.slept == []


def test_a_stopping_run_its_process_finishes_while_waited_for_is_not_run_again(
    write_csv, folder, tonight, fake_time
):
    _output, journal = begin(write_csv("badgeMetaId,customerId\nB,7\n", "last.csv"), folder)
    journal.mark_stopping()

    def finishing() -> None:
        journal.set_meta(state="finished")
        journal.close()

    fake_time.during = finishing
    later = stopped(write_csv("badgeMetaId,customerId\nB,9\n", "later.csv"), folder)
    runs = Runs()
    report = run_scheduled(night(tonight, folder), runs)
    assert [settings.output_path for settings in runs.asked] == [later, None]
    assert [earlier.output_path for earlier in report.earlier] == [later]


# --- tonight's input ------------------------------------------------------------------------


def test_tonights_input_with_an_unfinished_run_is_resumed_into_its_result_file(folder, tonight):
    # Begun by an earlier version, which kept no copy: it is not finished as a stopped run
    # first, but found as this input's own run.
    output = stopped(tonight, folder)
    input_copy_path(output).unlink()
    runs = Runs()
    report = run_scheduled(night(tonight, folder, sheet="Nightly"), runs)
    (settings,) = runs.asked
    assert settings.output_path == output
    assert (settings.resume, settings.auto_resume) == (True, False)
    assert settings.input_path == tonight
    assert settings.sheet == "Nightly"
    assert report.note == ""


def test_tonights_input_already_revoked_is_reported_again_and_says_so(folder, tonight):
    output = stopped(tonight, folder, state="finished")
    runs = Runs()
    report = run_scheduled(night(tonight, folder), runs)
    (settings,) = runs.asked
    assert (settings.output_path, settings.resume, settings.auto_resume) == (output, True, False)
    assert report.note == (
        f"this input was revoked by the run begun {when(created_of(output))}: nothing "
        "was sent, and its result file was written again"
    )
    assert report.earlier == ()


def test_tonights_input_running_in_another_process_is_refused_with_its_result_file(
    folder, tonight, fake_time
):
    output, journal = begin(tonight, folder)
    input_copy_path(output).unlink()
    runs = Runs()
    try:
        with pytest.raises(RunInProgress) as raised:
            run_scheduled(night(tonight, folder), runs)
    finally:
        journal.close()
    assert raised.value.output == output
    assert runs.asked == []


def test_tonights_input_stopping_in_another_process_is_waited_for_then_resumed(
    folder, tonight, fake_time
):
    output, journal = begin(tonight, folder)
    input_copy_path(output).unlink()
    journal.mark_stopping()
    fake_time.during = journal.close
    runs = Runs()
    report = run_scheduled(night(tonight, folder), runs)
    (settings,) = runs.asked
    assert (settings.output_path, settings.resume) == (output, True)
    assert report.note == ""  # it had not finished: resumed, not reported


def test_tonights_input_finished_by_the_process_that_was_stopping_it_is_reported(
    folder, tonight, fake_time
):
    output, journal = begin(tonight, folder)
    input_copy_path(output).unlink()
    journal.mark_stopping()

    def finishing() -> None:
        journal.set_meta(state="finished")
        journal.close()

    fake_time.during = finishing
    runs = Runs()
    report = run_scheduled(night(tonight, folder), runs)
    (settings,) = runs.asked
    assert settings.output_path == output
    assert report.note.startswith("this input was revoked by the run begun")
