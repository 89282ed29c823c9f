"""An .xlsx workbook -> the CSV the reader takes: every cell as the text Excel shows, so ids
typed into Excel (and stored by it as numbers) arrive as the digits they were."""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import IO, Any

from batch_revoke.errors import InputError

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
_ZEROS = re.compile(r'^"?0+"?$')  # a format like 000000: Excel pads with zeros


def is_workbook(path: Path) -> bool:
    return path.suffix.lower() in WORKBOOK_SUFFIXES


def workbook_to_csv(path: Path, sheet: str, out: IO[str]) -> None:
    """The sheet named `sheet` (default: the first) written to `out` as CSV."""
    from openpyxl import load_workbook  # imported here: only workbook runs need it

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(
            path, f"cannot be read as an Excel workbook ({exc})", "save it again from Excel"
        ) from exc
    try:
        if sheet and sheet not in book.sheetnames:
            names = ", ".join(repr(name) for name in book.sheetnames)
            raise InputError(path, f"has no sheet {sheet!r}", f"its sheets are {names}")
        rows = (book[sheet] if sheet else book.worksheets[0]).iter_rows()
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            writer.writerow(
                [cell_text(cell.value, getattr(cell, "number_format", "")) for cell in row]
            )
    finally:
        book.close()


def cell_text(value: Any, number_format: str = "General") -> str:
    """What Excel shows for a cell, for the values ids come as. A whole number is its
    digits (never 6.209E+07); a zero-padding format (000000) keeps its zeros; text is as
    typed (Excel's leading apostrophe is not part of it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and float(value).is_integer() and abs(value) < 2**53:
        digits = str(int(value))
        if _ZEROS.match(number_format or ""):
            return digits.zfill(len(number_format.strip('"')))
        return digits
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)
