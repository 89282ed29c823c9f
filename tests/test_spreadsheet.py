"""Workbooks in: every cell as the text Excel shows."""

from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import Workbook

from batch_revoke.chunker import validate
from batch_revoke.model import IdentifierType, Record, RowOutcome
from batch_revoke.spreadsheet import cell_text
from tests.test_cli import invoke, read_rows


@pytest.mark.parametrize(
    ("value", "number_format", "shown"),
    [
        (62090013.0, "General", "62090013"),  # not 6.209E+07
        (98765432109, "General", "98765432109"),
        (777, "000000", "000777"),
        ("000777", "@", "000777"),
        (None, "General", ""),
        (1.5, "General", "1.5"),
        (True, "General", "TRUE"),
        (dt.datetime(2026, 11, 25, 9, 30), "yyyy-mm-dd", "2026-11-25T09:30:00"),
    ],
)
def test_cells_are_the_text_excel_shows(value, number_format, shown):
    assert cell_text(value, number_format) == shown


def test_excels_keep_as_text_apostrophe_is_not_part_of_the_id():
    fields = {"badgemetaid": 0, "customerid": 1}
    row = validate(Record(1, ("B1", "'000777")), fields, IdentifierType.ID)
    assert not isinstance(row, RowOutcome)
    assert row.customer_id == "000777"


def workbook(path, sheets: dict[str, list[list[object]]], padded: tuple[int, int] | None = None):
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    if padded is not None:
        book.worksheets[0].cell(*padded).number_format = "000000"
    book.save(path)
    return path


def test_a_workbook_is_read_directly_first_sheet_or_named(tmp_path):
    path = workbook(
        tmp_path / "revoke.xlsx",
        {
            "to revoke": [
                ["badgeMetaId", "customerId", "issueId"],
                ["670371e39235f02fd5d71cbd", 387403362, None],  # stored as a number
                ["670371e39235f02fd5d71cbd", 777, None],  # shown as 000777
                ["670371e39235f02fd5d71cbd", "000778", None],
            ],
            "other": [["badgeMetaId", "customerId"], ["B9", 9]],
        },
        padded=(3, 2),
    )
    out = tmp_path / "out.csv"
    done = invoke("run", str(path), "--dry-run", "-o", str(out))
    assert done.exit_code == 0, done.output
    rows = read_rows(out)
    assert [r["customerId"] for r in rows] == ["387403362", "000777", "000778"]
    assert {r["status"] for r in rows} == {"planned"}
    invoke("run", str(path), "--dry-run", "-o", str(out), "--overwrite", "--sheet", "other")
    assert [r["badgeMetaId"] for r in read_rows(out)] == ["B9"]
    missing = invoke("run", str(path), "--dry-run", "-o", str(out), "--sheet", "nope")
    assert missing.exit_code == 2
    assert "has no sheet 'nope'; its sheets are 'to revoke', 'other'" in missing.output
