"""A scheduled night (--auto-resume) and what the journal keeps between runs, end to end
against the sandbox on 127.0.0.1: an earlier run finished with failed rows does not hold
tonight's input back and its status counts; an unchanged input is never said to have
changed; --overwrite forgets what the run it replaces looked up."""

from __future__ import annotations

import json

import pytest

from batch_revoke.client import LOOKUP_PATH
from batch_revoke.sandbox.state import Customer
from tests.conftest import HEADER, SAMPLE, run_cli, sandbox
from tests.conftest import read_rows as results

pytestmark = pytest.mark.e2e

EARNED_BADGE = "698dae82d30c4f6b3da9dc06"
TONIGHT_ENROLMENT = "698dae90d30c4f6b3da9dc10"  # customer 566135941's; not in the sample
WELCOME = "654bb48766a87827bb61e631"


def test_an_earlier_run_finished_with_failed_rows_does_not_block_tonight_and_its_status_counts(
    tmp_path, write_csv
):
    folder = tmp_path / "out"
    summary = tmp_path / "last-run.json"
    tonight = write_csv(
        HEADER + "\n" + f"{EARNED_BADGE},566135941,{TONIGHT_ENROLMENT},,\n", "tonight.csv"
    )
    with sandbox() as (running, state):
        # Last night's run (the sample, whose bad rows fail) stopped at its first failure.
        night = ("--output-dir", str(folder), "--auto-resume")
        last = run_cli(running, str(SAMPLE), *night, "--max-errors", "1", "--concurrency", "1")
        assert last.returncode == 3, last.stderr
        done = run_cli(running, str(tonight), *night, "--summary-json", str(summary))
        revoked = state.enrolments[TONIGHT_ENROLMENT].issuedStatus == "REVOKED"
    # Last night's run is finished first (with failed rows, exit 1), then tonight's input is
    # revoked; the exit status is the worse of the two.
    assert revoked, done.stderr
    assert done.returncode == 1, done.stderr
    facts = json.loads(summary.read_text(encoding="utf-8"))
    assert facts["exit_status"] == 1
    assert facts["rows"]["revoked"] == facts["rows"]["total"] == 1
    (earlier,) = facts["earlier_runs"]
    assert earlier["exit_status"] == 1
    assert earlier["rows"]["total"] == 17
    assert earlier["rows"]["not_attempted"] == 0
    assert "finished first, a run that had stopped" in done.stderr


def test_an_unchanged_input_is_never_said_to_have_changed(tmp_path):
    # The sample's last row has an outcome (invalid): the journal holds one for every row up
    # to the input's last, and none past it.
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(SAMPLE), "-o", str(out))
        resumed = run_cli(running, str(SAMPLE), "-o", str(out), "--resume")
    assert done.returncode == resumed.returncode == 1, done.stderr
    assert results(out)[-1]["row"] == "17"
    for stderr in (done.stderr, resumed.stderr):
        assert "past the end of the input" not in stderr
        assert "input changed" not in stderr


def test_overwrite_forgets_earlier_lookups_a_stale_816_is_never_reused(tmp_path, write_csv):
    path = write_csv(HEADER + "\n" + f"{WELCOME},+91 99111 12222,,,mobile\n")
    out = tmp_path / "out.csv"
    with sandbox() as (running, state):
        first = run_cli(running, str(path), "-o", str(out))
        assert first.returncode == 1, first.stderr
        assert results(out)[0]["error_code"] == "816"
        # The customer joins, and is enrolled, after that run: its 816 is stale now.
        state.add_customer(Customer("880001", mobile="919911112222"))
        enrolled = state.issue_bulk({"badgeMetaId": WELCOME, "customers": [880001]})
        assert enrolled[0] == 200
        asked = len(running.requests)
        again = run_cli(running, str(path), "-o", str(out), "--overwrite")
        lookups = [r for r in list(running.requests)[asked:] if r.path == LOOKUP_PATH]
    assert again.returncode == 0, again.stderr
    assert len(lookups) == 1
    (row,) = results(out)
    assert (row["status"], row["resolved_customer_id"]) == ("revoked", "880001")
