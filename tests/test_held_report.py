"""The report and the options around it, where a one-line slip would hide rows or refuse what
is promised: rows never sent among those that need a person, the chart over time counting
`unconfirmed` rows as the summary does, a duplicate just past the last revoked row, and two
option checks."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from batch_revoke.html_report import gather, render, write_report
from batch_revoke.model import Status
from batch_revoke.writer import RESULT_COLUMNS
from tests.conftest import SAMPLE, invoke, read_rows, run_cli, sandbox

B = "654bb48766a87827bb61e631"


def result_file(folder: Path, *rows: tuple[str, str, str, str]) -> Path:
    """A result file of rows (customerId, status, error_code, error_message), numbered from
    1, as a run writes it."""
    path = folder / "out.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["badgeMetaId", "customerId", "issueId", *RESULT_COLUMNS])
        for number, (customer, status, code, message) in enumerate(rows, start=1):
            endpoint = "" if status in ("invalid", "not_attempted") else "revokeIssue"
            cells = [number, endpoint, status, code, message, "", "", 0]
            out.writerow([B, customer, "", *cells, *[""] * (len(RESULT_COLUMNS) - len(cells))])
    return path


def shown(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert found, element_id
    return found.group(1).strip()


def test_rows_never_sent_are_listed_among_those_that_need_a_person_and_not_revoked(tmp_path):
    path = result_file(
        tmp_path,
        ("7", "revoked", "", ""),
        ("8", "failed", "404", "Customer doesn't have issue instance"),
        ("9", "not_attempted", "run_aborted", "not sent: --max-errors 1 reached"),
        ("10", "not_attempted", "run_aborted", "not sent: --max-errors 1 reached"),
    )
    data = gather(path)
    assert data.results.not_revoked == 3
    groups = {(g.status, g.code): [r.row for r in g.shown] for g in data.results.groups}
    assert groups[(Status.NOT_ATTEMPTED, "run_aborted")] == [3, 4]
    html = render(data)
    assert shown(html, "rows-not-revoked") == "3"
    assert 'id="group-not_attempted-run_aborted"' in html


def test_a_duplicate_of_the_row_just_after_the_last_revoked_one_renders(tmp_path):
    path = result_file(
        tmp_path,
        ("7", "revoked", "", ""),
        ("8", "failed", "404", "Customer doesn't have issue instance"),
        ("8", "duplicate", "duplicate_row", "same badge, customer and ids as row 2; not sent"),
    )
    html = write_report(path, tmp_path / "out.html").read_text(encoding="utf-8")
    assert gather(path).results.counts.duplicates_pending == 1  # row 2 was not revoked
    assert shown(html, "rows-duplicate") == "1"


def test_the_chart_over_time_counts_unconfirmed_rows_as_the_summary_does(tmp_path):
    # The first request is applied and its answer lost; --max-errors 1 stops the run there,
    # so its rows stay unconfirmed: not revoked, in the summary and in the chart alike.
    out = tmp_path / "out.csv"
    with sandbox("apply-drop:#1") as (running, _state):
        args = ("--max-attempts", "1", "--concurrency", "1", "--max-errors", "1")
        done = run_cli(running, str(SAMPLE), "-o", str(out), *args)
    assert done.returncode == 3, done.stderr
    by_status = Counter(row["status"] for row in read_rows(out))
    assert by_status["unconfirmed"] >= 1
    data = gather(out)
    assert data.journal is not None
    (session,) = data.journal.timeline.sessions
    assert session.total("revoked") == by_status["revoked"]
    assert session.total("not_revoked") == by_status["failed"] + by_status["unconfirmed"]


def test_max_errors_100_percent_is_accepted(tmp_path):
    out = tmp_path / "out.csv"
    done = invoke("run", str(SAMPLE), "--dry-run", "--max-errors", "100%", "-o", str(out))
    assert done.exit_code == 1, done.output  # the dry run's usual verdict: some rows invalid
    assert "--max-errors" not in done.output
    assert out.exists()


def test_auto_resume_with_dry_run_is_refused_and_creates_nothing(tmp_path):
    folder = tmp_path / "runs"
    done = invoke("run", str(SAMPLE), "--auto-resume", "--dry-run", "--output-dir", str(folder))
    assert done.exit_code == 2, done.output
    assert "--auto-resume and --dry-run both given" in done.output
    assert not folder.exists()


@pytest.mark.parametrize("verify", [[], ["--no-verify"]], ids=["read-back", "no-verify"])
def test_the_chart_counts_a_row_read_back_after_a_lost_answer_once(tmp_path, verify):
    out = tmp_path / "out.csv"
    with sandbox("apply-drop:#1,#3") as (running, _state):
        args = ("--max-attempts", "1", "--concurrency", "1", *verify)
        done = run_cli(running, str(SAMPLE), "-o", str(out), *args)
    assert done.returncode == 1, done.stderr
    by_status = Counter(row["status"] for row in read_rows(out))
    data = gather(out)
    assert data.journal is not None
    (session,) = data.journal.timeline.sessions
    assert session.total("revoked") == by_status["revoked"]
    assert session.total("not_revoked") == by_status["failed"] + by_status["unconfirmed"]
