"""The result file (batch_revoke/writer.py): what Excel is given to open."""

from __future__ import annotations

import csv

import pytest

from batch_revoke.answers.rows import join_outcomes
from batch_revoke.model import Endpoint, ErrorCode, Record, RowOutcome, Status
from batch_revoke.writer import result_cells, write_results


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        pytest.param("+91 99000 00013", "'+91 99000 00013", id="mobile-with-plus"),
        pytest.param("+1+1", "'+1+1", id="plus"),
        pytest.param("=1+1", "'=1+1", id="equals"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\t=1+1", "'\t=1+1", id="tab-then-formula"),
        pytest.param("919900000013", "919900000013", id="digits-untouched"),
        pytest.param("a+b", "a+b", id="plus-inside-untouched"),
        pytest.param("", "", id="empty-untouched"),
    ],
)
def test_excel_output_neutralises_every_cell_that_would_run_as_a_formula(tmp_path, cell, shown):
    out = tmp_path / "out.csv"
    write_results(out, ("customerId", "note"), [([Record(1, (cell, cell))], [["x"]])], excel=True)
    with out.open(encoding="utf-8-sig", newline="") as handle:
        header, line = list(csv.reader(handle))
    assert header[:2] == ["customerId", "note"]
    assert line == [shown, shown, "1", "x"]
    plain = tmp_path / "plain.csv"
    write_results(plain, ("customerId", "note"), [([Record(1, (cell, cell))], [["x"]])])
    with plain.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle))[1][:2] == [cell, cell]  # kept as written


def test_a_row_in_flight_is_unconfirmed_whatever_an_earlier_unsettled_attempt_said():
    # Its request may have been applied: an earlier "nothing done" (429) or lost answer no
    # longer says what happened to it. A settled outcome stands.
    records = [Record(1, ("B", "1")), Record(2, ("B", "2")), Record(3, ("B", "3"))]
    recorded = [
        RowOutcome(1, Status.FAILED, Endpoint.REVOKE_ISSUE, "http_429", "throttled"),
        RowOutcome(2, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "ReadTimeout"),
        RowOutcome(3, Status.REVOKED, Endpoint.REVOKE_ISSUE, "", "", ("I3",)),
    ]
    joined = join_outcomes(records, recorded, {1: 0.0, 2: 0.0, 3: 0.0}, "not sent")
    assert [(o.status, o.error_code) for _, o in joined] == [
        (Status.UNCONFIRMED, ErrorCode.RUN_ABORTED),
        (Status.UNCONFIRMED, ErrorCode.RUN_ABORTED),
        (Status.REVOKED, ""),
    ]


def test_a_row_with_no_http_answer_has_an_empty_http_status():
    outcome = RowOutcome(1, Status.NOT_ATTEMPTED, None, ErrorCode.RUN_ABORTED, "not sent")
    cells = ["", "not_attempted", "run_aborted", "not sent", "", "", "0", "", ""]
    assert result_cells(outcome) == cells


def test_the_incomplete_line_names_every_option_a_resume_must_repeat(tmp_path):
    from datetime import datetime

    from batch_revoke.config import RunConfig, resume_options
    from batch_revoke.writer import claim_output

    config = RunConfig(
        tmp_path / "in.csv",
        cluster="eu",
        identifier_type="mobile",
        batch_size=5,
        default_region="in",
    )
    assert resume_options(config.identity_options()) == [
        *("--cluster", "eu", "--identifier-type", "mobile"),
        *("--batch-size", "5", "--default-region", "IN"),
    ]
    out = claim_output(
        tmp_path / "out.csv",
        config.input_path,
        datetime.now(),
        resume_options=config.identity_options(),
    )
    line = out.read_text(encoding="utf-8")
    assert line.startswith("INCOMPLETE:")
    assert line.rstrip().endswith(
        f"batch-revoke run {config.input_path} --cluster eu --identifier-type mobile "
        f"--batch-size 5 --default-region IN -o {out} --resume"
    )
