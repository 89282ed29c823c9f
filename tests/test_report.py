"""What a run reports (batch_revoke/report.py): the exit status, the text and JSON summaries,
the progress line and a dry run's estimate, from counts made up here, without a run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from batch_revoke.config import RateLimit, estimate
from batch_revoke.model import Counts, Endpoint, ExitStatus, RowOutcome, Status
from batch_revoke.report import Progress, RunReport

OUT = Path("out/results.csv")


def tally(
    *outcomes: tuple[Status, str], requests: dict[Endpoint, int] | None = None, **calls: int
) -> Counts:
    """The counts of outcomes, as a run counts them: (status, error code) each; with the
    requests and calls given."""
    counted = Counts.of(
        RowOutcome(row, status, Endpoint.REVOKE_ISSUE, code)
        for row, (status, code) in enumerate(outcomes, start=1)
    )
    return replace(counted, requests=dict(requests or {}), **calls)


def revoked(count: int) -> list[tuple[Status, str]]:
    return [(Status.REVOKED, "")] * count


# --- the exit status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "status"),
    [
        pytest.param(RunReport(OUT, tally(*revoked(3)), 1.0), ExitStatus.OK, id="all-revoked"),
        pytest.param(
            RunReport(OUT, tally(*revoked(2), (Status.DUPLICATE, "duplicate_row")), 1.0),
            ExitStatus.OK,
            id="duplicates-of-revoked-rows",
        ),
        pytest.param(
            RunReport(OUT, tally(*revoked(2), (Status.FAILED, "404")), 1.0),
            ExitStatus.NOT_ALL_REVOKED,
            id="one-failed",
        ),
        pytest.param(
            RunReport(OUT, tally(*revoked(2), (Status.INVALID, "missing_value")), 1.0),
            ExitStatus.NOT_ALL_REVOKED,
            id="one-invalid",
        ),
        pytest.param(
            RunReport(OUT, tally(*revoked(2)), 1.0, aborted="interrupted"),
            ExitStatus.ABORTED,
            id="stopped",
        ),
        pytest.param(
            RunReport(OUT, tally(*revoked(2)), 1.0, incomplete=True),
            ExitStatus.ABORTED,
            id="result-file-incomplete",
        ),
        pytest.param(
            RunReport(OUT, tally((Status.PLANNED, ""), (Status.PLANNED, "")), 1.0, dry_run=True),
            ExitStatus.OK,
            id="dry-run-all-planned",
        ),
        pytest.param(
            RunReport(OUT, tally(*revoked(2)), 1.0, dry_run=True),
            ExitStatus.NOT_ALL_REVOKED,
            id="dry-run-counts-planned-not-revoked",
        ),
        pytest.param(
            RunReport(
                OUT,
                tally(*revoked(1)),
                1.0,
                earlier=(RunReport(OUT, tally((Status.FAILED, "404")), 1.0),),
            ),
            ExitStatus.NOT_ALL_REVOKED,
            id="an-earlier-run-was-worse",
        ),
        pytest.param(
            RunReport(
                OUT,
                tally((Status.FAILED, "404")),
                1.0,
                earlier=(RunReport(OUT, tally(*revoked(1)), 1.0),),
            ),
            ExitStatus.NOT_ALL_REVOKED,
            id="this-run-was-worse",
        ),
    ],
)
def test_the_exit_status_says_how_the_run_ended(report, status):
    assert report.exit_status is status


def test_a_duplicate_whose_original_is_not_revoked_is_not_all_revoked():
    counted = tally(*revoked(2), (Status.DUPLICATE, "duplicate_row"), duplicates_pending=1)
    assert RunReport(OUT, counted, 1.0).exit_status is ExitStatus.NOT_ALL_REVOKED


@pytest.mark.parametrize(
    ("aborted", "journal", "resumable"),
    [
        pytest.param("interrupted", Path("out/results.csv.journal"), True, id="stopped"),
        pytest.param("", Path("out/results.csv.journal"), False, id="finished"),
        pytest.param("interrupted", None, False, id="no-journal"),
    ],
)
def test_only_a_stopped_run_with_a_journal_is_resumable(aborted, journal, resumable):
    report = RunReport(OUT, tally(*revoked(1)), 1.0, aborted=aborted, journal_path=journal)
    assert report.resumable is resumable


# --- the text summary --------------------------------------------------------------------


def test_the_text_summary_counts_every_status_and_ranks_error_codes():
    counted = tally(
        *revoked(4),
        (Status.FAILED, "814"),
        (Status.FAILED, "404"),
        (Status.FAILED, "404"),
        (Status.INVALID, "missing_value"),
        requests={Endpoint.REVOKE_ISSUE: 2, Endpoint.REVOKE_EARN: 3},
        http_calls=7,
        retries=2,
        read_backs=1,
    )
    report = RunReport(OUT, counted, 2.25, journal_path=Path("out/results.csv.journal"))
    lines = report.summary().splitlines()
    assert lines[0] == "processed 8 rows in 2.2s"
    counts = [line.split() for line in lines[1:4]]
    assert counts == [["revoked", "4"], ["failed", "3"], ["invalid", "1"]]
    codes = lines[lines.index("by error code:") + 1 :][:3]
    assert [line.split()[0] for line in codes] == ["404", "814", "missing_value"]
    assert codes[0].split()[-1] == "2"
    assert (
        "requests: revokeIssue 2, revokeEarn 3; 7 HTTP calls, 2 of them retries, 1 read-backs"
        in lines
    )
    assert lines[-2:] == [f"results: {OUT}", "journal: out/results.csv.journal"]


def test_the_text_summary_of_a_dry_run_says_what_would_be_sent():
    # A dry run sends nothing: no HTTP line.
    counted = tally((Status.PLANNED, ""), requests={Endpoint.REVOKE_EARN: 1}, http_calls=99)
    text = RunReport(OUT, counted, 0.0, dry_run=True, estimate="1 calls").summary()
    assert text.splitlines()[0] == "planned 1 rows in 0.0s"
    assert "would send: revokeEarn 1" in text.splitlines()
    assert "HTTP calls" not in text
    assert "plan: 1 calls" in text.splitlines()


def test_the_text_summary_of_a_stopped_incomplete_run_says_so():
    report = RunReport(
        OUT,
        tally(*revoked(1), throttled=3),
        1.0,
        aborted="--max-errors 1 reached",
        incomplete=True,
        pace="settled at 90/min",
    )
    lines = report.summary().splitlines()
    assert "STOPPED: --max-errors 1 reached" in lines
    assert "rate: 3 calls throttled (429); settled at 90/min" in lines
    assert lines[-1] == (f"results: {OUT} is marked INCOMPLETE; the journal holds every outcome")


def test_a_run_stopped_before_any_revoke_says_what_it_did_not_processed_rows():
    """Stopped while customers were looked up: every row is not_attempted, none processed."""
    counted = tally(*[(Status.NOT_ATTEMPTED, "run_aborted")] * 307, http_calls=120, lookups=120)
    report = RunReport(OUT, counted, 3.0, aborted="interrupted (SIGINT)")
    lines = report.summary().splitlines()
    assert lines[0] == "looked up 120 customers; no row was sent (307 rows not attempted) in 3.0s"
    assert "requests: none; 120 HTTP calls, 0 of them retries, 120 customer lookups" in lines
    assert "processed" not in report.summary()
    before_lookups = RunReport(OUT, tally((Status.NOT_ATTEMPTED, "run_aborted")), 0.5)
    assert before_lookups.summary().splitlines()[0] == (
        "no row was sent (1 rows not attempted) in 0.5s"
    )


def test_a_run_stopped_halfway_counts_only_the_rows_it_processed():
    counted = tally(
        *revoked(2),
        (Status.INVALID, "missing_value"),
        *[(Status.NOT_ATTEMPTED, "run_aborted")] * 5,
        requests={Endpoint.REVOKE_ISSUE: 1},
    )
    report = RunReport(OUT, counted, 1.0, aborted="interrupted (SIGINT)")
    assert report.summary().splitlines()[0] == "processed 3 of 8 rows in 1.0s"


# --- the JSON summary --------------------------------------------------------------------


def test_the_json_summary_has_every_status_and_the_errors_most_rows_first():
    counted = tally(
        *revoked(3),
        (Status.FAILED, "814"),
        (Status.UNCONFIRMED, "timeout"),
        (Status.UNCONFIRMED, "timeout"),
        requests={Endpoint.REVOKE_ISSUE: 4},
    )
    earlier = RunReport(Path("out/night-1.csv"), tally((Status.FAILED, "404")), 1.0)
    report = RunReport(
        OUT,
        counted,
        1.23456,
        aborted="interrupted",
        journal_path=Path("out/results.csv.journal"),
        earlier=(earlier,),
        finished_at="2100-01-01T00:00:00+00:00",
    )
    summary = json.loads(json.dumps(report.to_dict("batch-revoke run x.csv --resume")))
    assert summary["exit_status"] == 3
    assert summary["exit_meaning"] == "aborted"
    assert summary["rows"] == {
        "total": 6,
        "revoked": 3,
        "failed": 1,
        "invalid": 0,
        "duplicate": 0,
        "unconfirmed": 2,
        "not_attempted": 0,
        "planned": 0,
    }
    assert summary["errors"] == [
        {"status": "unconfirmed", "error_code": "timeout", "rows": 2},
        {"status": "failed", "error_code": "814", "rows": 1},
    ]
    assert summary["requests"] == {"revokeIssue": 4}
    assert summary["stopped"] == "interrupted"
    assert summary["elapsed_seconds"] == 1.235
    assert summary["journal"] == "out/results.csv.journal"
    assert summary["resume_command"] == "batch-revoke run x.csv --resume"
    assert summary["earlier_runs"] == [
        {
            "output": "out/night-1.csv",
            "exit_status": 1,
            "rows": {"total": 1} | {s.value: int(s is Status.FAILED) for s in Status},
        }
    ]


def test_the_json_summary_of_a_clean_run_has_nulls_not_empty_text():
    summary = RunReport(OUT, tally(*revoked(1)), 0.5).to_dict()
    assert summary["exit_status"] == 0
    assert (summary["stopped"], summary["pace"], summary["plan"]) == (None, None, None)
    assert (summary["journal"], summary["resume_command"], summary["finished_at"]) == (
        None,
        None,
        None,
    )
    assert summary["errors"] == []


# --- progress and a dry run's estimate ---------------------------------------------------


def test_the_progress_line_says_how_far_the_run_is():
    counts = Counts(
        {Status.REVOKED: 20, Status.FAILED: 5},
        requests={Endpoint.REVOKE_ISSUE: 2, Endpoint.REVOKE_EARN: 1},
        retries=1,
    )
    line = Progress(
        counts, rows=200, calls_per_second=1.25, pace="no limit seen", seconds_left=41.6
    ).line()
    assert line.startswith("progress: 25 of 200 rows have an outcome (12%): 20 revoked, 5 failed;")
    assert "3 requests, 1.2 calls/s, 1 retries, 0 throttled, no limit seen" in line
    assert line.endswith("about 42s left")


def test_while_customers_are_looked_up_the_progress_line_counts_them():
    line = Progress(Counts(lookups=120), 500, 2.0, "no limit seen", None).line()
    assert "0 of 500 rows have an outcome (0%); 120 customers looked up, 0 requests" in line
    assert "looked up" not in Progress(Counts(), 500, 2.0, "", None).line()


def test_the_progress_of_an_empty_input_is_complete_and_time_left_unknown():
    line = Progress(Counts(), 0, 0.0, "", None).line()
    assert "(100%); 0 requests" in line
    assert line.endswith("about ? left")


@pytest.mark.parametrize(
    ("calls", "limit", "expected"),
    [
        pytest.param(1204, None, "1,204 calls (pass --rate-limit for how long they take)"),
        pytest.param(1204, "100/min", "1,204 calls: about 13 min at 100/min", id="minutes-up"),
        pytest.param(100, "100/min", "100 calls: about 1 min at 100/min", id="exactly-1-min"),
        pytest.param(8900, "100/min", "8,900 calls: about 89 min at 100/min", id="under-90-min"),
        pytest.param(9000, "100/min", "9,000 calls: about 1.5 h at 100/min", id="90-min-is-hours"),
        pytest.param(72000, "10/s", "72,000 calls: about 2.0 h at 10/s", id="per-second"),
    ],
)
def test_a_dry_runs_estimate_is_calls_over_the_rate_limit(calls, limit, expected):
    assert estimate(calls, RateLimit.parse(limit) if limit else None) == expected
