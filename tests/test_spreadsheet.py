"""Workbooks in: every cell as the text Excel shows."""

from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import Workbook

from batch_revoke.chunker import validate
from batch_revoke.model import ExitStatus, IdentifierType, Record, RowOutcome
from batch_revoke.spreadsheet import cell_text, date_text
from tests.test_cli import invoke, read_rows

BADGE = "670371e39235f02fd5d71cbd"


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
        (dt.datetime(2026, 11, 25, 9, 30), "yyyy-mm-dd", "2026-11-25"),
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


NOV_28 = dt.datetime(2026, 11, 28)
MORNING = dt.datetime(2026, 11, 28, 9, 5, 7)
EVENING = dt.datetime(2026, 11, 28, 21, 5, 7, 250_000)


@pytest.mark.parametrize(
    ("value", "number_format", "shown"),
    [
        pytest.param(NOV_28, "dd/mm/yyyy", "28/11/2026", id="day-first"),
        pytest.param(NOV_28, "yyyy-mm-dd", "2026-11-28", id="iso"),
        pytest.param(NOV_28, "mm-dd-yy", "11/28/2026", id="built-in-short-date"),
        pytest.param(NOV_28, "m/d/yy", "11/28/26", id="two-digit-year"),
        pytest.param(NOV_28, "d-mmm-yy", "28-Nov-26", id="month-name"),
        pytest.param(NOV_28, "dddd, mmmm d, yyyy", "Saturday, November 28, 2026", id="long"),
        pytest.param(NOV_28, '[$-409]d"."m"."yyyy;@', "28.11.2026", id="locale-and-text"),
        pytest.param(NOV_28, "yyyy\\-mm\\-dd", "2026-11-28", id="escaped"),
        pytest.param(MORNING, "yyyy-mm-dd hh:mm:ss", "2026-11-28 09:05:07", id="minutes-not-month"),
        pytest.param(EVENING, "h:mm AM/PM", "9:05 PM", id="twelve-hour"),
        pytest.param(MORNING, "m/d/yy h:mm", "11/28/2026 9:05", id="built-in-date-time"),
        pytest.param(EVENING, "hh:mm:ss.00", "21:05:07.25", id="fractions"),
        pytest.param(MORNING, "General", "11/28/2026 9:05", id="general-date-time"),
        pytest.param(NOV_28, "General", "11/28/2026", id="general-date"),
        pytest.param(dt.date(2026, 11, 28), "dd/mm/yyyy", "28/11/2026", id="date"),
        pytest.param(dt.time(9, 5), "h:mm", "9:05", id="time"),
        pytest.param(dt.timedelta(hours=30, minutes=5), "[h]:mm", "30:05", id="duration"),
    ],
)
def test_dates_read_as_excel_shows_them(value, number_format, shown):
    assert date_text(value, number_format) == shown


def test_a_workbooks_dates_arrive_as_their_format_shows_them(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["badgeMetaId", "customerId", "revoke by", "noted at"])
    sheet.append([BADGE, 387403362, NOV_28, MORNING])
    sheet.append([BADGE, 62090013, NOV_28, MORNING])
    sheet["C2"].number_format = "dd/mm/yyyy"
    sheet["C3"].number_format = "yyyy-mm-dd"
    sheet["D3"].number_format = "General"  # stored as Excel's serial number, as Excel would
    book.save(tmp_path / "dated.xlsx")
    out = tmp_path / "out.csv"
    done = invoke("run", str(tmp_path / "dated.xlsx"), "--dry-run", "-o", str(out))
    assert done.exit_code == 0, done.output
    rows = read_rows(out)
    assert [r["revoke by"] for r in rows] == ["28/11/2026", "2026-11-28"]
    assert rows[0]["noted at"] == "2026-11-28 9:05:07"  # openpyxl saves yyyy-mm-dd h:mm:ss
    assert rows[1]["noted at"].startswith("46354.37")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), id="xls"),
        pytest.param("export.xls", b"<table><tr><td>badgeMetaId</td></tr></table>", id="html"),
        pytest.param("renamed.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), id="csv"),
    ],
)
def test_a_legacy_xls_is_refused_with_one_line_saying_save_as_xlsx(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    done = invoke("run", str(path), "--dry-run")
    assert done.exit_code == ExitStatus.USAGE
    assert done.output.strip().splitlines() == [
        f"batch-revoke: error: {path}: is a legacy Excel 97-2003 workbook (.xls), not .xlsx; "
        "open it in Excel and save it as .xlsx (Excel Workbook)"
    ]
