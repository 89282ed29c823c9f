"""Workbooks in: every cell as the text Excel shows."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import httpx
import pytest
import xlsxwriter
from openpyxl import Workbook

from batch_revoke.chunker import Validator
from batch_revoke.config import ErrorLimit, RetryPolicy
from batch_revoke.credentials import BasicCredentials
from batch_revoke.job import RunConfig, run_job
from batch_revoke.model import ExitStatus, IdentifierType, Record, RowOutcome
from batch_revoke.outputs import input_copy_path
from batch_revoke.spreadsheet import cell_text, date_text
from tests.conftest import invoke, read_rows

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
    row = Validator(fields, IdentifierType.ID)(Record(1, ("B1", "'000777")))
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


# --- formulas ------------------------------------------------------------------------


def with_saved_values(path: Path, saved: dict[str, str | None]) -> Path:
    """The workbook as Excel saves it: each formula cell named in `saved` gets its value
    (None: an empty text result, which Excel saves as type "str" with no text)."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    # Excel recalculates a workbook marked fullCalcOnLoad (as openpyxl marks every one) and
    # saves it without the mark.
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b' fullCalcOnLoad="1"', b"")
    xml = parts["xl/worksheets/sheet1.xml"].decode()
    for cell, value in saved.items():
        xml, count = re.subn(
            rf'<c r="{cell}"( [^>]*)?><f>(.*?)</f><v\s*/>',
            lambda m, cell=cell, value=value: (
                f'<c r="{cell}" t="str"><f>{m.group(2)}</f><v></v>'
                if value is None
                else f'<c r="{cell}"><f>{m.group(2)}</f><v>{value}</v>'
            ),
            xml,
        )
        assert count == 1, cell
    parts["xl/worksheets/sheet1.xml"] = xml.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def formula_book(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "to revoke"
    sheet.append(["badgeMetaId", "customerId", "note"])
    sheet.append([BADGE, 387403362, "typed"])
    sheet.append([BADGE, "=B2+1", "=C2"])  # written by a script: no saved value
    sheet.append([BADGE, "=B2+2", "saved by Excel"])
    sheet.append(["=A2", 62090013, "a formula for the badge"])
    sheet.append(['=IF(1,"",1)', '=IF(1,"",1)', None])  # Excel saved "": a blank line
    sheet.append([BADGE, "=5", None])  # text that starts with =, not a formula
    sheet["B7"].data_type = "s"
    book.save(path)
    return with_saved_values(path, {"B4": "387403364", "A6": None, "B6": None})


def test_a_formula_with_no_saved_value_is_an_invalid_row_that_says_so(tmp_path):
    path = formula_book(tmp_path / "scripted.xlsx")
    out = tmp_path / "out.csv"
    done = invoke("run", str(path), "--dry-run", "-o", str(out))
    assert done.exit_code == ExitStatus.NOT_ALL_REVOKED, done.output
    rows = read_rows(out)
    assert [r["customerId"] for r in rows] == ["387403362", "=B2+1", "387403364", "62090013", "'=5"]
    assert [r["status"] for r in rows] == ["planned", "invalid", "planned", "invalid", "invalid"]
    formula = rows[1]
    assert formula["error_code"] == "missing_value"
    assert formula["error_message"].startswith(
        "customerId is a formula (=B2+1) with no saved value: the workbook was written by a "
        "script and never recalculated; open it in Excel and save it, or write the values"
    )
    assert formula["note"] == "=C2"  # other columns keep the formula, as written
    assert "badgeMetaId is a formula (=A2)" in rows[3]["error_message"]
    assert rows[4]["error_code"] == "bad_customer_id"  # text, so no formula message
    assert "blank" not in done.output


def test_a_required_column_of_only_unsaved_formulas_refuses_the_workbook(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "export"
    sheet.append(["badgeMetaId", "customerId"])
    for row in range(2, 6):
        sheet.append([BADGE, f"=C{row}*1"])
    book.save(tmp_path / "scripted.xlsx")
    done = invoke("run", str(tmp_path / "scripted.xlsx"), "--dry-run", "-o", str(tmp_path / "o"))
    assert done.exit_code == ExitStatus.USAGE
    assert done.output.strip().splitlines() == [
        f"batch-revoke: error: {tmp_path / 'scripted.xlsx'}, sheet 'export': every customerId "
        "is a formula with no saved value; the workbook was written by a script and never "
        "recalculated: open it in Excel and save it, or write the values"
    ]
    assert not (tmp_path / "o").exists()


def xlsxwriter_book(path: Path, *, saved_by_excel: bool = False) -> Path:
    """A workbook as xlsxwriter writes it: every formula's saved value is 0 unless the script
    gives one, and the workbook is marked fullCalcOnLoad, so Excel recalculates on opening.
    `saved_by_excel`: as Excel saves it again, the mark gone and the values its own."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("to revoke")
    sheet.write_row(0, 0, ["badgeMetaId", "customerId", "issueId", "earnedBadgeId", "note"])
    sheet.write_row(1, 0, [BADGE, 387403362, "", "", "typed"])
    values = {"C3": "I77", "B4": 387403364, "D5": "E55", "A6": BADGE, "B6": 62090013}
    formulas = {"C3": '="I"&"77"', "B4": "=B2+2", "D5": '="E"&"55"', "A6": "=A2"}
    formulas["B6"] = "=62090000+13"
    for cell, formula in formulas.items():
        sheet.write_formula(cell, formula, None, *([values[cell]] if saved_by_excel else []))
    sheet.write_row(2, 0, [BADGE, 387403363])
    sheet.write_row(3, 0, [BADGE])
    sheet.write_row(4, 0, [BADGE, 387403365])
    sheet.write_formula("E3", "=E2", None, *(["typed"] if saved_by_excel else []))
    book.close()
    if saved_by_excel:
        with zipfile.ZipFile(path) as source:
            parts = {name: source.read(name) for name in source.namelist()}
        assert b' fullCalcOnLoad="1"' in parts["xl/workbook.xml"]
        parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b' fullCalcOnLoad="1"', b"")
        with zipfile.ZipFile(path, "w") as target:
            for name, data in parts.items():
                target.writestr(name, data)
    return path


def test_a_formula_xlsxwriter_wrote_is_invalid_never_sent_as_its_placeholder_0(tmp_path):
    path = xlsxwriter_book(tmp_path / "xlsxwriter.xlsx")
    out = tmp_path / "out.csv"
    done = invoke("run", str(path), "--dry-run", "-o", str(out))
    assert done.exit_code == ExitStatus.NOT_ALL_REVOKED, done.output
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["planned"] + ["invalid"] * 4
    assert {r["error_code"] for r in rows[1:]} == {"missing_value"}
    messages = [r["error_message"] for r in rows[1:]]
    for message, (label, formula) in zip(
        messages,
        [
            ("issueId", '="I"&"77"'),
            ("customerId", "=B2+2"),
            ("earnedBadgeId", '="E"&"55"'),
            ("badgeMetaId", "=A2"),
        ],
        strict=True,
    ):
        assert message.startswith(f"{label} is a formula ({formula}) with no saved value"), message
    assert rows[1]["note"] == "=E2"  # the formula, not a 0 that was never its value
    assert rows[2]["customerId"] == "=B2+2"


def test_a_workbook_not_marked_for_recalculation_keeps_its_formulas_saved_values(tmp_path):
    path = xlsxwriter_book(tmp_path / "saved.xlsx", saved_by_excel=True)
    out = tmp_path / "out.csv"
    done = invoke("run", str(path), "--dry-run", "-o", str(out))
    assert done.exit_code == ExitStatus.OK, done.output
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["planned"] * 5
    assert [r["customerId"] for r in rows] == [
        "387403362",
        "387403363",
        "387403364",
        "387403365",
        "62090013",
    ]
    assert [r["issueId"] for r in rows] == ["", "I77", "", "", ""]
    assert [r["earnedBadgeId"] for r in rows] == ["", "", "", "E55", ""]
    assert rows[1]["note"] == "typed"


# --- refusals name the workbook and sheet ------------------------------------------


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        pytest.param([["badge", "customerId"], ["B1", 1]], "required column badgeMetaId", id="col"),
        pytest.param([["badgeMetaId", "customerId"]], "header but no records", id="no-records"),
        pytest.param([], "the file is empty", id="empty"),
    ],
)
def test_a_sheets_problems_name_the_workbook_and_sheet(tmp_path, rows, problem, dry_run):
    path = workbook(tmp_path / "book.xlsx", {"first": rows, "second": [["x"]]})
    out = tmp_path / "out" / "result.csv"
    args = ["--dry-run"] if dry_run else ["--base-url", "https://api.invalid"]
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p"}
    done = invoke("run", str(path), "-o", str(out), *args, env=env)
    assert done.exit_code == ExitStatus.USAGE, done.output
    assert f"error: {path}, sheet 'first': " in done.output
    assert problem in done.output
    assert ".csv" not in done.output.replace(str(out), "")  # no copy is ever named
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_a_named_sheets_problem_names_that_sheet(tmp_path):
    path = workbook(tmp_path / "book.xlsx", {"first": [["x"]], "second": [["badgeMetaId"]]})
    done = invoke("run", str(path), "--dry-run", "--sheet", "second", "-o", str(tmp_path / "o"))
    assert f"{path}, sheet 'second': required column customerId not found" in done.output


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


# --- the sheet's copy lives beside the result ----------------------------------------


def revoked_all(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    entries = [
        {"customerId": int(c), "issuedId": f"I{c}", "error": None} for c in body["customers"]
    ]
    return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})


def sheet_run(path: Path, out: Path | None, api, **options) -> object:
    return run_job(
        RunConfig(path, out, "https://api.invalid", BasicCredentials("u", "p"), **options),
        transport=httpx.MockTransport(api),
    )


def test_a_runs_sheet_copy_is_beside_its_result_and_gone_when_it_finishes(tmp_path):
    path = workbook(tmp_path / "book.xlsx", {"s": [["badgeMetaId", "customerId"], ["B1", 5]]})
    out = tmp_path / "out.csv"
    seen: list[Path] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.extend(tmp_path.iterdir())
        return revoked_all(request)

    report = sheet_run(path, out, api)
    assert report.exit_status is ExitStatus.OK
    assert tmp_path / "out.csv.input.csv" in seen  # while the run lasts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx", "out.csv", "out.csv.journal"]


def stopped_run(path: Path, out: Path | None):
    """A run of 40 rows that stops after its second request (answered 500)."""
    calls = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200 if len(calls) == 1 else 500, text="no")

    report = sheet_run(
        path,
        out,
        failing,
        batch_size=10,
        concurrency=1,
        retry=RetryPolicy(max_attempts=1),
        max_errors=ErrorLimit(count=1),
        verify=False,
    )
    assert report.exit_status is ExitStatus.ABORTED
    return report


FORTY = [["badgeMetaId", "customerId"], *[["B1", n] for n in range(1, 41)]]


def test_a_stopped_run_keeps_its_copy_and_resume_reads_it_not_the_changed_workbook(
    tmp_path, caplog
):
    path = workbook(tmp_path / "book.xlsx", {"s": FORTY})
    out = tmp_path / "out.csv"
    stopped_run(path, out)
    copy = tmp_path / "out.csv.input.csv"
    assert copy.exists()
    workbook(path, {"s": [["badgeMetaId", "customerId"], ["B2", 99]]})  # edited meanwhile
    resumed = sheet_run(path, out, revoked_all, resume=True, batch_size=10, verify=False)
    assert resumed.exit_status is ExitStatus.NOT_ALL_REVOKED  # the rows answered 500
    assert "revoked" in {r["status"] for r in read_rows(out)}
    assert "book.xlsx changed since the run began" in caplog.text
    assert [r["customerId"] for r in read_rows(out)] == [str(n) for n in range(1, 41)]
    assert not copy.exists()


def test_resume_without_output_finds_the_workbooks_run_and_reads_its_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = workbook(tmp_path / "book.xlsx", {"s": FORTY})
    first = stopped_run(path, None)
    copy = input_copy_path(first.output_path)
    assert copy.parent == Path("output")
    assert copy.exists()
    resumed = sheet_run(path, None, revoked_all, resume=True, batch_size=10, verify=False)
    assert resumed.output_path == first.output_path
    assert len(read_rows(resumed.output_path)) == 40
    assert not copy.exists()


def test_a_dry_run_leaves_no_copy_anywhere(tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    path = workbook(tmp_path / "book.xlsx", {"s": [["badgeMetaId", "customerId"], ["B1", 5]]})
    out = tmp_path / "out.csv"
    assert invoke("run", str(path), "--dry-run", "-o", str(out)).exit_code == 0
    assert list(temp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx", "out.csv", "tmp"]


def test_a_workbook_written_row_by_row_keeps_rows_with_blank_trailing_cells(tmp_path):
    """openpyxl's write-only mode ends each row at its last value: a blank issueId is the
    common "every enrolment" row, not a record with too few fields."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("rows")
    sheet.append(["badgeMetaId", "customerId", "issueId", "note"])
    sheet.append([BADGE, "62090013", None, None])
    sheet.append([BADGE, "62090014", "I1", "x"])
    sheet.append([BADGE, "62090015"])
    path = tmp_path / "script.xlsx"
    book.save(path)
    result = invoke("run", str(path), "--dry-run", "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(tmp_path / "out.csv")
    assert [r["status"] for r in rows] == ["planned"] * 3
    assert [r["endpoint"] for r in rows] == ["revokeIssue"] * 3


def test_a_csv_named_xls_is_read_as_the_csv_it_is(tmp_path):
    """Some exports name a CSV .xls: its content decides, not its name."""
    path = tmp_path / "export.xls"
    path.write_text("badgeMetaId,customerId\nB1,1\nB1,2\n", encoding="utf-8")
    out = tmp_path / "dry.csv"
    done = invoke("run", str(path), "--dry-run", "-o", str(out))
    assert done.exit_code == ExitStatus.OK, done.output
    assert [row["status"] for row in read_rows(out)] == ["planned", "planned"]
