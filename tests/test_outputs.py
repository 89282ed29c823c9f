"""A run's files (batch_revoke/outputs.py): the result file and its journal claimed before
anything is sent, never over an earlier run's; the run to resume found by its input's content;
the run's own copy of its input (.input.csv); nothing left behind when a run cannot start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from batch_revoke import outputs
from batch_revoke.config import RunConfig
from batch_revoke.credentials import BasicCredentials
from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.journal import Journal, JournalIdentity
from batch_revoke.outputs import (
    claim,
    input_copy_path,
    journal_path,
    open_run,
    resumable_output,
    this_input_run,
)
from batch_revoke.source import input_sha256

ROWS = "badgeMetaId,customerId\nB,1\nB,2\n"
STAMP = datetime(2100, 1, 2, 3, 4, 5)


def now() -> datetime:
    return STAMP


def config(path: Path, output: Path | None = None, **options) -> RunConfig:
    return RunConfig(path, output, "https://api.invalid", BasicCredentials("u", "p"), **options)


def identity_of(settings: RunConfig) -> JournalIdentity:
    return JournalIdentity(input_sha256(settings), settings.identity_options())


def start(settings: RunConfig) -> tuple[Path, Journal]:
    """A run begun and left unfinished (its journal closed, as after a kill)."""
    _, output, journal = open_run(settings, now)
    journal.close()
    return output, journal


# --- claiming the result file ------------------------------------------------------------


def test_a_claimed_result_file_says_it_is_incomplete_and_how_to_finish_it(write_csv, tmp_path):
    path = write_csv(ROWS)
    output = claim(config(path, tmp_path / "out.csv"), now)
    assert output == tmp_path / "out.csv"
    text = output.read_text(encoding="utf-8")
    assert text.startswith("INCOMPLETE: ")
    assert f"batch-revoke run {path} --base-url https://api.invalid -o {output} --resume" in text


def test_a_default_name_is_dated_and_never_shared(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = config(path, output_dir=tmp_path / "results")
    first, second = claim(settings, now), claim(settings, now)
    assert first.name == "input-results-21000102-030405.csv"
    assert second.name == "input-results-21000102-030405-2.csv"
    assert first.parent == second.parent == tmp_path / "results"
    verified = claim(config(path, output_dir=tmp_path / "results", input_is_result=True), now)
    assert verified.name == "input-verified-21000102-030405.csv"


@pytest.mark.parametrize(
    ("existing", "options", "fragment"),
    [
        pytest.param("out.csv", {}, "already exists", id="result-file"),
        pytest.param("out.csv.journal", {}, "a journal of an earlier run", id="journal"),
    ],
)
def test_an_earlier_runs_files_are_refused_without_overwrite(
    write_csv, tmp_path, existing, options, fragment
):
    path = write_csv(ROWS)
    (tmp_path / existing).write_text("earlier\n")
    with pytest.raises(ConfigError, match=fragment):
        claim(config(path, tmp_path / "out.csv", **options), now)
    assert (tmp_path / existing).read_text() == "earlier\n"
    output = claim(config(path, tmp_path / "out.csv", overwrite=True), now)
    assert output.read_text().startswith("INCOMPLETE")


def test_a_journal_given_as_the_output_is_refused(write_csv, tmp_path):
    path = write_csv(ROWS)
    with pytest.raises(ConfigError, match="is a journal"):
        claim(config(path, tmp_path / "out.csv.journal-wal"), now)
    assert not (tmp_path / "out.csv.journal-wal").exists()


def test_a_folder_that_cannot_be_written_means_nothing_was_sent(write_csv, tmp_path):
    path = write_csv(ROWS)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="nothing was sent"):
        claim(config(path, output_dir=tmp_path / "file" / "results"), now)


# --- the journal beside it ---------------------------------------------------------------


def test_a_new_run_claims_the_file_and_creates_its_journal(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = config(path, tmp_path / "out.csv", excel=True)
    _, output, journal = open_run(settings, now)
    try:
        assert journal.path == journal_path(output) == tmp_path / "out.csv.journal"
        assert journal.meta()["input"] == str(path)
        assert journal.meta()["excel"] == "1"
    finally:
        journal.close()
    Journal.resume(journal.path, identity_of(settings)).close()  # the run of this input


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(StorageError(Path("x"), "No space left on device"), id="disk-full"),
        pytest.param(KeyboardInterrupt(), id="ctrl-c"),
    ],
)
def test_a_run_whose_journal_cannot_start_leaves_nothing_behind(
    write_csv, tmp_path, monkeypatch, failure
):
    path = write_csv(ROWS)
    settings = config(path, tmp_path / "out.csv")

    def failing(path: Path, identity: JournalIdentity, **meta: str) -> Journal:
        for name in ("", "-wal", "-shm"):
            Path(f"{path}{name}").write_bytes(b"half a journal")
        raise failure

    monkeypatch.setattr(Journal, "create", failing)
    with pytest.raises((ConfigError, KeyboardInterrupt)) as raised:
        open_run(settings, now)
    if isinstance(failure, StorageError):
        assert "nothing was sent" in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.csv"]


def test_a_resume_takes_the_runs_own_journal_and_marks_the_file_incomplete(write_csv, tmp_path):
    path = write_csv(ROWS)
    output, _ = start(config(path, tmp_path / "out.csv"))
    output.write_text("a result file from an interrupted write\n")
    _, again, journal = open_run(config(path, output, resume=True), now)
    journal.close()
    assert again == output
    assert output.read_text().startswith("INCOMPLETE")


def test_a_finished_runs_result_file_stays_until_it_is_rewritten(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = config(path, tmp_path / "out.csv")
    _, output, journal = open_run(settings, now)
    journal.set_meta(state="finished")
    journal.close()
    output.write_text("the complete result\n")
    _, _, journal = open_run(config(path, output, resume=True), now)
    journal.close()
    assert output.read_text() == "the complete result\n"


def test_a_resume_of_another_input_is_refused_and_touches_nothing(write_csv, tmp_path):
    output, _ = start(config(write_csv(ROWS), tmp_path / "out.csv"))
    output.write_text("kept\n")
    other = write_csv(ROWS + "B,3\n", name="other.csv")
    with pytest.raises(ConfigError):
        open_run(config(other, output, resume=True), now)
    assert output.read_text() == "kept\n"


# --- finding the run to resume -----------------------------------------------------------


def test_resume_without_output_finds_the_newest_unfinished_run_of_this_input(write_csv, tmp_path):
    path = write_csv(ROWS)
    folder = tmp_path / "results"
    older, _ = start(config(path, output_dir=folder))
    newer, _ = start(config(path, output_dir=folder))
    start(config(write_csv(ROWS + "B,3\n", name="input.tsv"), output_dir=folder))  # other rows
    settings = config(path, output_dir=folder, resume=True)
    assert older != newer
    assert resumable_output(settings, input_sha256(settings)) == newer


def test_resume_without_output_and_no_run_of_this_input_is_refused(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = config(path, output_dir=tmp_path / "results", resume=True)
    with pytest.raises(ConfigError, match="no journal of a run of"):
        resumable_output(settings, input_sha256(settings))


def test_resume_without_output_of_a_finished_run_says_how_to_rewrite_it(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = config(path, output_dir=tmp_path / "results")
    _, output, journal = open_run(settings, now)
    journal.set_meta(state="finished")
    journal.close()
    resumed = config(path, output_dir=tmp_path / "results", resume=True)
    with pytest.raises(ConfigError, match="there is nothing to resume") as raised:
        resumable_output(resumed, input_sha256(resumed))
    assert f"-o {output} --resume" in raised.value.fix


def test_auto_resume_finds_the_run_of_this_very_content(write_csv, tmp_path):
    path = write_csv(ROWS)
    folder = tmp_path / "results"
    assert this_input_run(config(path, output_dir=folder)) is None
    output, _ = start(config(path, output_dir=folder))
    found = this_input_run(config(path, output_dir=folder))
    assert found is not None
    assert (found.output, found.finished, found.input_name) == (output, False, str(path))
    path.write_text(ROWS + "B,3\n", encoding="utf-8")  # replaced: a new input tonight
    assert this_input_run(config(path, output_dir=folder)) is None


def test_auto_resume_with_an_output_of_another_inputs_run_is_refused(write_csv, tmp_path):
    output, _ = start(config(write_csv(ROWS), tmp_path / "out.csv"))
    other = write_csv(ROWS + "B,3\n", name="other.csv")
    assert this_input_run(config(other, tmp_path / "elsewhere.csv")) is None
    with pytest.raises(ConfigError, match="journal of a run of another input"):
        this_input_run(config(other, output))


# --- the run's own copy of its input -------------------------------------------------------


def test_a_scheduled_run_keeps_a_copy_of_its_input_beside_its_result(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = config(path, output_dir=tmp_path / "results", auto_resume=True)
    source, output, journal = open_run(settings, now)
    journal.close()
    copy = input_copy_path(output)
    assert copy.name == output.name + ".input.csv"
    assert source.path == copy
    assert copy.read_bytes() == path.read_bytes()
    assert source.shown == path  # named to people as given
    assert source.records == 2
    # The copy is named after the result file once the journal is held: no temporary left.
    assert sorted(p.name for p in copy.parent.iterdir()) == sorted(
        [output.name, journal_path(output).name, copy.name]
    )
    # The run finishes from its copy, whatever the input became since.
    path.write_text(ROWS + "B,3\n", encoding="utf-8")
    resumed = config(path, output, resume=True, auto_resume=True)
    source, again, journal = open_run(resumed, now)
    journal.close()
    assert (again, source.path, source.records) == (output, copy, 2)


def test_a_copied_run_that_is_refused_leaves_no_copy(write_csv, tmp_path):
    path = write_csv(ROWS)
    (tmp_path / "out.csv").write_text("someone else's file\n")
    settings = config(path, tmp_path / "out.csv", auto_resume=True)
    with pytest.raises(ConfigError, match="already exists"):
        open_run(settings, now)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.csv", "out.csv"]


def test_a_copied_run_without_a_host_is_refused_before_anything_is_claimed(write_csv, tmp_path):
    path = write_csv(ROWS)
    settings = RunConfig(path, tmp_path / "out.csv", auto_resume=True)
    with pytest.raises(ConfigError, match="no API host"):
        open_run(settings, now)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.csv"]


def test_when_is_local_minutes():
    stamp = datetime(2100, 1, 2, 3, 4, 5).timestamp()
    assert outputs.when(stamp) == "2100-01-02 03:04"
