"""The input as a run reads it (batch_revoke/source.py): standard input spooled to a file it
can read three times, a workbook's sheet as CSV, the structure pass and its digest, and an
earlier result file read back as input (`verify`)."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
from pathlib import Path

import pytest
from openpyxl import Workbook

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError, InputError
from batch_revoke.model import Endpoint, RowOutcome, Status
from batch_revoke.source import REFITTED, Source, input_sha256, spooled
from batch_revoke.writer import RESULT_COLUMNS
from tests.conftest import read_rows, run_cli

ROWS = "badgeMetaId,customerId,note\nB,1,first\nB,2,second\n"


# --- spooling ----------------------------------------------------------------------------


def test_standard_input_is_spooled_to_a_file_named_as_the_user_named_it(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ROWS.encode())))
    with spooled(RunConfig(Path("-"))) as config:
        copy = config.input_path
        assert copy != Path("-")
        assert copy.read_text(encoding="utf-8") == ROWS
        assert config.input_name == Path("-")
        assert config.shown_input == Path("-")
        source = Source.open(config, whole=True)
        assert source.records == 2
        assert source.shown == Path("-")
    assert not copy.exists()  # deleted when the run ends


def test_a_problem_in_the_spooled_copy_names_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"badgeMetaId,customerId\n")))
    with pytest.raises(InputError) as raised, spooled(RunConfig(Path("-"))) as config:
        Source.open(config, whole=True)
    assert raised.value.path == Path("-")
    assert "no records" in raised.value.problem


def test_a_regular_file_is_read_where_it_is(write_csv):
    path = write_csv(ROWS)
    given = RunConfig(path)
    with spooled(given) as config:
        assert config is given


def test_sheet_for_a_csv_is_refused(write_csv):
    config = RunConfig(write_csv(ROWS), sheet="Data")
    refused = pytest.raises(ConfigError, match="--sheet 'Data' given for a file that is not")
    with refused, spooled(config):
        pass


def test_a_legacy_workbook_is_refused(tmp_path):
    path = tmp_path / "badges.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match="legacy Excel 97-2003"), spooled(RunConfig(path)):
        pass


def test_a_pipe_named_xls_is_spooled_whole(tmp_path):
    """A pipe is not looked into before it is copied: what is read from it is gone."""
    path = tmp_path / "export.xls"
    os.mkfifo(path)
    writer = threading.Thread(target=path.write_text, args=(ROWS,))
    writer.start()
    with spooled(RunConfig(path)) as config:
        assert config.input_path.read_text(encoding="utf-8") == ROWS
    writer.join()


def workbook(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Revoke"
    for values in (("badgeMetaId", "customerId"), ("B", 1), ("B", 2), ("C", 3)):
        sheet.append(values)
    book.save(path)
    return path


def test_a_dry_run_reads_a_workbooks_sheet_as_csv(tmp_path):
    book = workbook(tmp_path / "badges.xlsx")
    with spooled(RunConfig(book, dry_run=True)) as config:
        converted = config.input_path
        assert converted.suffix == ".csv"
        assert converted.read_text(encoding="utf-8").splitlines() == [
            "badgeMetaId,customerId",
            "B,1",
            "B,2",
            "C,3",
        ]
        source = Source.open(config, whole=True)
        assert (source.from_workbook, source.shown, source.records) == (True, book, 3)
    assert not converted.exists()


def test_a_run_of_a_workbook_converts_it_later_beside_its_result(tmp_path):
    book = workbook(tmp_path / "badges.xlsx")
    given = RunConfig(book)
    with spooled(given) as config:
        assert config is given  # converted once the result file is claimed


# --- the structure pass and its digest ----------------------------------------------------


def test_the_structure_pass_counts_records_and_the_header_alone_does_not(write_csv):
    path = write_csv(ROWS + "\n")
    whole = Source.open(RunConfig(path), whole=True)
    assert whole.columns == ("badgeMetaId", "customerId", "note")
    assert whole.field_index == {"badgemetaid": 0, "customerid": 1}
    assert whole.records == 2
    assert whole.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    header = Source.open(RunConfig(path), whole=False)
    assert (header.columns, header.records, header.sha256) == (whole.columns, 0, "")
    assert [r.values for chunk, _ in header.chunks() for r in chunk] == [
        ("B", "1", "first"),
        ("B", "2", "second"),
    ]


def test_the_input_is_identified_by_its_content_not_its_name(write_csv):
    first = input_sha256(RunConfig(write_csv(ROWS, name="monday.csv")))
    same = input_sha256(RunConfig(write_csv(ROWS, name="tuesday.csv")))
    other = input_sha256(RunConfig(write_csv(ROWS + "B,3,third\n", name="wednesday.csv")))
    assert first == same
    assert other != first


def test_a_workbook_is_identified_by_its_sheets_rows(tmp_path):
    one = input_sha256(RunConfig(workbook(tmp_path / "one.xlsx")))
    two = input_sha256(RunConfig(workbook(tmp_path / "two.xlsx")))
    csv = tmp_path / "same.csv"
    csv.write_text("badgeMetaId,customerId\nB,1\nB,2\nC,3\n", encoding="utf-8")
    assert one == two
    assert len(one) == 64
    assert one == input_sha256(RunConfig(csv))


def test_a_file_changed_after_the_structure_pass_is_refused(write_csv):
    path = write_csv(ROWS)
    source = Source.open(RunConfig(path), whole=True)
    path.write_text(ROWS + "B,3,third\n", encoding="utf-8")
    with pytest.raises(InputError) as raised:
        list(source.chunks())
    assert raised.value.path == path


# --- a result file read as input ----------------------------------------------------------


def result_file(write_csv, *lines: list[str]) -> Path:
    header = ["badgeMetaId", "customerId", "issueId", *RESULT_COLUMNS]
    return write_csv("\n".join(",".join(cells) for cells in (header, *lines)) + "\n", "res.csv")


def test_a_result_file_gives_its_input_columns_and_the_outcome_of_each_row(write_csv):
    path = result_file(
        write_csv,
        ["B", "1", "", "1", "revokeIssue", "revoked", "", "", "I1;I2", "200", "1"],
        ["B", "2", "I3", "2", "revokeIssue", "unconfirmed", "timeout", "lost", "", "", "3"],
        ["B", "", "", "3", "", "invalid", "missing_value", "blank", "", "", ""],
    )
    source = Source.open(RunConfig(path, input_is_result=True), whole=True)
    assert source.earlier
    assert source.columns == ("badgeMetaId", "customerId", "issueId")
    assert source.field_index == {"badgemetaid": 0, "customerid": 1, "issueid": 2}
    ((records, outcomes),) = list(source.chunks())
    assert [r.values for r in records] == [("B", "1", ""), ("B", "2", "I3"), ("B", "", "")]
    assert outcomes == [
        RowOutcome(1, Status.REVOKED, Endpoint.REVOKE_ISSUE, "", "", ("I1", "I2"), 200, 1),
        RowOutcome(2, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "lost", (), None, 3),
        RowOutcome(3, Status.INVALID, None, "missing_value", "blank", (), None, 0),
    ]


def test_a_file_that_is_not_a_result_file_is_refused_for_verify(write_csv):
    path = write_csv(ROWS)
    with pytest.raises(InputError, match="is not a batch-revoke result file"):
        Source.open(RunConfig(path, input_is_result=True), whole=True)
    # An input read as a run's input has no outcomes of its own.
    ((_, outcomes),) = list(Source.open(RunConfig(path), whole=True).chunks())
    assert outcomes is None


def test_result_columns_this_version_cannot_read_are_refused_with_the_row(write_csv):
    path = result_file(
        write_csv,
        ["B", "1", "", "1", "revokeIssue", "revoked", "", "", "I1", "200", "1"],
        ["B", "2", "", "2", "revokeIssue", "half-revoked", "", "", "", "", "1"],
    )
    source = Source.open(RunConfig(path, input_is_result=True), whole=True)
    with pytest.raises(InputError, match="row 2 has result columns this version cannot read"):
        list(source.chunks())


def test_a_result_file_run_again_keeps_its_malformed_records_malformed(tmp_path, write_csv):
    """A record of the wrong width is padded in the result file (here its issueId, one field
    short, comes out blank): run again as input, it must not become a row that revokes every
    enrolment of the customer."""
    path = write_csv("badgeMetaId,customerId,note,issueId\nB1,7,I1\nB1,8,x,I2\n")
    first = tmp_path / "first.csv"
    done = run_cli(None, str(path), "--dry-run", "-o", str(first))
    assert done.returncode == 1, done.stderr  # the short record is invalid
    again = tmp_path / "again.csv"
    done = run_cli(None, str(first), "--dry-run", "-o", str(again))
    assert done.returncode == 1, done.stderr
    rows = read_rows(again)
    assert [(r["issueId"], r["status"], r["error_code"]) for r in rows] == [
        ("", "invalid", "malformed_record"),
        ("I2", "planned", ""),
    ]
    assert rows[0]["error_message"] == REFITTED
