"""`batch-revoke retry`: which rows of a result file go again, the files it writes, and the
options it takes from the earlier run's journal (the command through CliRunner; the run
against the sandbox is tests/test_e2e_retry.py)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_revoke.cli import cli
from batch_revoke.config import SANDBOX_LABEL
from batch_revoke.errors import ConfigError, InputError
from batch_revoke.journal import Journal, JournalIdentity
from batch_revoke.model import Status
from batch_revoke.outputs import journal_path
from batch_revoke.retry import Selection, choose, paths
from batch_revoke.writer import RESULT_COLUMNS
from tests.conftest import read_rows


def result_file(folder: Path, *outcomes: tuple[str, str], name: str = "first.csv") -> Path:
    """A result file of one revokeEarn row per (status, error_code), its note quoted."""
    path = folder / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["badgeMetaId", "customerId", "earnedBadgeId", "note", *RESULT_COLUMNS])
        for row, (status, code) in enumerate(outcomes, start=1):
            result = [str(row), "revokeEarn", status, code, "why, said", "", "", "1", "", ""]
            out.writerow(["B", str(100 + row), f"E{row}", f"a, {row}", *result])
    return path


@pytest.mark.parametrize(
    ("status", "code", "chosen"),
    [
        pytest.param("failed", "http_503", True, id="unavailable"),
        pytest.param("failed", "http_429", True, id="throttled"),
        pytest.param("failed", "http_500", True, id="server-error-after-the-last-attempt"),
        pytest.param("failed", "timeout", True, id="no-answer"),
        pytest.param("failed", "connection_error", True, id="refused"),
        pytest.param("failed", "client_error", True, id="never-left"),
        pytest.param("unconfirmed", "timeout", True, id="unconfirmed"),
        pytest.param("not_attempted", "lookup_failed", True, id="lookup-failed"),
        pytest.param("not_attempted", "run_aborted", True, id="not-attempted"),
        pytest.param("failed", "404", False, id="not-active"),
        pytest.param("failed", "814", False, id="earn-not-active"),
        pytest.param("failed", "816", False, id="customer-not-found"),
        pytest.param("failed", "badge_not_found", False, id="badge-not-found"),
        pytest.param("failed", "http_400", False, id="refused-request"),
        pytest.param("invalid", "missing_value", False, id="invalid"),
        pytest.param("duplicate", "duplicate_row", False, id="duplicate"),
        pytest.param("revoked", "", False, id="revoked"),
    ],
)
def test_by_default_the_rows_a_retry_can_help_are_chosen(status, code, chosen):
    assert Selection().chooses(Status(status), code) is chosen


def test_status_and_code_choose_instead_and_together():
    failed_404 = (Status.FAILED, "404")
    assert Selection.of(["failed"], []).chooses(*failed_404)
    assert Selection.of([], ["404"]).chooses(*failed_404)
    assert Selection.of(["failed"], ["404", "814"]).chooses(*failed_404)
    assert not Selection.of(["failed"], ["814"]).chooses(*failed_404)
    assert not Selection.of(["invalid"], []).chooses(Status.FAILED, "http_503")
    assert not Selection.of([], [""]).chooses(Status.REVOKED, "")  # never a revoked row


@pytest.mark.parametrize(
    ("status", "message"),
    [("revoked", "a revoked row is done"), ("done", "'done' is not a status")],
)
def test_a_status_that_cannot_be_retried_is_refused(status, message):
    with pytest.raises(ConfigError, match=message):
        Selection.of([status], [])


def test_the_chosen_rows_are_written_verbatim_with_the_counts(tmp_path):
    result = result_file(
        tmp_path, ("revoked", ""), ("failed", "http_503"), ("failed", "404"), ("unconfirmed", "x")
    )
    target = tmp_path / "rows.csv"
    chosen, every = choose(result, Selection(), target)
    assert chosen == {("failed", "http_503"): 1, ("unconfirmed", "x"): 1}
    assert every.total() == 4
    lines = result.read_text(encoding="utf-8").splitlines()
    assert target.read_text(encoding="utf-8").splitlines() == [lines[0], lines[2], lines[4]]


def test_nothing_chosen_writes_nothing(tmp_path):
    result = result_file(tmp_path, ("revoked", ""), ("failed", "404"))
    chosen, every = choose(result, Selection(), tmp_path / "rows.csv")
    assert not chosen
    assert every == {("revoked", ""): 1, ("failed", "404"): 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.csv"]


def test_a_file_that_is_no_finished_result_is_refused(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("badgeMetaId,customerId\nB,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="is not a batch-revoke result file"):
        choose(plain, Selection(), tmp_path / "rows.csv")
    unfinished = tmp_path / "unfinished.csv"
    unfinished.write_text("INCOMPLETE: this run has not finished …\n", encoding="utf-8")
    with pytest.raises(InputError, match="is marked INCOMPLETE"):
        choose(unfinished, Selection(), tmp_path / "rows.csv")


def test_the_files_are_named_after_the_result_beside_it_or_where_asked(tmp_path):
    result = tmp_path / "out" / "badges-results-20260101-120000.csv"
    now = datetime(2026, 12, 7, 21, 0, 5)
    rows, output = paths(result, None, None, now)
    assert output == result.with_name("badges-results-20260101-120000-retry-20261207-210005.csv")
    assert rows == output.with_name(f"{output.stem}-input.csv")
    assert paths(result, None, tmp_path, now)[1].parent == tmp_path
    assert paths(result, tmp_path / "again.csv", None, now) == (
        tmp_path / "again-input.csv",
        tmp_path / "again.csv",
    )


# --- the command -----------------------------------------------------------------------


def retry(*args: str) -> tuple[int, str]:
    no_credentials = dict.fromkeys(["CAP_USERNAME", "CAP_PASSWORD", "CAP_BASE_URL", "CAP_CLUSTER"])
    done = CliRunner().invoke(cli, ["retry", *args], env=no_credentials)
    return done.exit_code, done.stderr if hasattr(done, "stderr") else done.output


def test_status_revoked_is_refused_in_one_line(tmp_path):
    result = result_file(tmp_path, ("failed", "http_503"))
    status, stderr = retry(str(result), "--status", "revoked")
    assert status == 2
    assert stderr.strip().splitlines() == [
        "batch-revoke: error: --status revoked: a revoked row is done; leave it out"
    ]


def test_nothing_to_retry_says_what_is_there_and_writes_nothing(tmp_path):
    result = result_file(tmp_path, ("revoked", ""), ("failed", "404"), ("failed", "404"))
    status, stderr = retry(str(result))
    assert status == 0
    assert f"no row of {result} to retry: failed 404 2, revoked (no code) 1" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.csv"]


def test_a_dry_run_shows_what_would_be_sent_and_keeps_no_input(tmp_path):
    result = result_file(tmp_path, ("failed", "http_503"), ("failed", "404"), ("unconfirmed", "x"))
    status, stderr = retry(str(result), "--dry-run", "-o", str(tmp_path / "again.csv"))
    assert status == 0, stderr
    assert "would retry 2 rows" in stderr
    assert "failed http_503 1, unconfirmed x 1" in stderr
    assert "would send: revokeEarn 2" in stderr
    assert "plan: 2 calls" in stderr
    rows = read_rows(tmp_path / "again.csv")
    assert [(r["input_row"], r["input_status"], r["status"]) for r in rows] == [
        ("1", "failed", "planned"),
        ("3", "unconfirmed", "planned"),
    ]
    assert rows[0]["note"] == "a, 1"  # every column, as it was
    assert not (tmp_path / "again-input.csv").exists()
    assert "no journal beside" in stderr


def test_the_earlier_journals_options_are_kept_and_others_refused(tmp_path):
    result = result_file(tmp_path, ("failed", "http_503"))
    identity = JournalIdentity("x", {"host": "h", "identifier_type": "id", "batch_size": "20"})
    Journal.create(journal_path(result), identity).close()
    status, stderr = retry(str(result), "--dry-run", "--batch-size", "5")
    assert status == 2
    assert "was started with other options: batch_size '5' (was '20')" in stderr
    status, stderr = retry(str(result), "--dry-run", "-o", str(tmp_path / "again.csv"))
    assert status == 0, stderr
    assert "no journal" not in stderr


def test_the_options_a_resume_checks_come_from_the_journal_unless_given(tmp_path):
    result = result_file(tmp_path, ("failed", "http_503"))
    options = {"host": "https://eu.api.capillarytech.com", "identifier_type": "mobile"}
    identity = JournalIdentity("x", options | {"batch_size": "5"})
    Journal.create(journal_path(result), identity).close()
    status, stderr = retry(str(result), "-o", str(tmp_path / "again.csv"))
    assert status == 2
    assert "no credentials" in stderr  # the journal's host, batch size and identifier type
    status, stderr = retry(str(result), "--dry-run", "--batch-size", "20")
    assert status == 2
    assert "was started with other options: batch_size '20' (was '5')" in stderr


def test_a_sandbox_runs_rows_are_retried_against_a_sandbox(tmp_path):
    result = result_file(tmp_path, ("failed", "http_503"))
    identity = JournalIdentity("x", {"host": SANDBOX_LABEL, "identifier_type": "id"})
    Journal.create(journal_path(result), identity).close()
    status, stderr = retry(str(result), "-o", str(tmp_path / "again.csv"))
    assert status == 1, stderr
    assert "sandbox running on http://127.0.0.1:" in stderr
