"""An .xlsx workbook -> the CSV the reader takes: every cell as the text Excel shows. A
formula with no saved value (or a stale one) is written as its formula, which the validator
reports (text that starts with = gets Excel's apostrophe, so the two never meet)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from batch_revoke.errors import InputError

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # how an Excel 97-2003 (.xls) file begins
_ZEROS = re.compile(r'^"?0+"?$')  # a format like 000000: Excel pads with zeros


def is_workbook(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm")


def is_legacy_workbook(path: Path) -> bool:
    """A file named .xls that Excel alone reads (a 97-2003 workbook, or a web page), not a
    CSV some exports name so."""
    if path.suffix.lower() != ".xls":
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return False  # the reader says why it cannot be read
    return head.startswith(OLE2[:4]) or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def legacy_workbook(path: Path) -> InputError:
    return InputError(
        path,
        "is a legacy Excel 97-2003 workbook (.xls), not .xlsx",
        "open it in Excel and save it as .xlsx (Excel Workbook)",
    )


def first_sheet_name(path: Path) -> str:
    """The sheet a run reads when no --sheet is given, for messages."""
    from openpyxl import load_workbook

    try:
        with contextlib.closing(load_workbook(path, read_only=True)) as book:
            return str(book.worksheets[0].title)
    except Exception:  # only a message depends on it; the read itself reports the problem
        return "1"


def workbook_to_csv(path: Path, sheet: str, out: IO[str]) -> str:
    """The sheet named `sheet` (default: the first) written to `out` as CSV; returns its name."""
    from openpyxl import load_workbook  # imported here: only workbook runs need it

    try:
        # Saved values, and beside them the formulas: openpyxl gives one or the other per load.
        values = load_workbook(path, read_only=True, data_only=True)
        formulas = load_workbook(path, read_only=True, data_only=False)
        stale = _marked_for_recalculation(path)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, ElementTree.ParseError) as exc:
        raise InputError(
            path, f"cannot be read as an Excel workbook ({exc})", "save it again from Excel"
        ) from exc
    try:
        if sheet and sheet not in values.sheetnames:
            names = ", ".join(repr(name) for name in values.sheetnames)
            raise InputError(path, f"has no sheet {sheet!r}", f"its sheets are {names}")
        shown = values[sheet] if sheet else values.worksheets[0]
        written = formulas[sheet] if sheet else formulas.worksheets[0]
        writer = csv.writer(out, lineterminator="\n")
        width = None  # the first row's
        for row, as_written in zip(shown.iter_rows(), written.iter_rows(), strict=True):
            cells = [
                _cell(cell, source, stale) for cell, source in zip(row, as_written, strict=True)
            ]
            width = len(cells) if width is None else width
            # A sheet has no "wrong number of fields": a workbook written without its
            # dimensions (openpyxl's write-only mode) ends each row at its last value.
            while len(cells) > width and not cells[-1]:
                cells.pop()
            writer.writerow(cells + [""] * (width - len(cells)))
        return str(shown.title)
    finally:
        values.close()
        formulas.close()


def _cell(cell: Any, source: Any, stale: bool) -> str:
    # A formula with no saved value, or any of a `stale` workbook (a script's, never
    # recalculated), has no value to show. An empty text result (type "str") is blank, as
    # Excel shows it: formulas dragged below the data must not make records.
    if getattr(source, "data_type", "") == "f" and (
        stale or (cell.value is None and getattr(cell, "data_type", "") != "str")
    ):
        formula = source.value if isinstance(source.value, str) else source.value.text
        return str(formula) if str(formula).startswith("=") else f"={formula}"
    text = cell_text(cell.value, getattr(cell, "number_format", "General"))
    if text.startswith("=") and getattr(cell, "data_type", "") == "s":
        return "'" + text  # text, not a formula: Excel's own mark for that
    return text


def _marked_for_recalculation(path: Path) -> bool:
    """Whether the workbook asks to be recalculated on opening (`fullCalcOnLoad`), so its
    saved formula values are not to be trusted (xlsxwriter saves 0 for each). Read from the
    XML: openpyxl takes a calcPr without it for one with."""
    with zipfile.ZipFile(path) as book:
        part = "xl/workbook.xml"  # where every writer puts it; the relationships say so
        if "_rels/.rels" in book.namelist():
            for link in ElementTree.fromstring(book.read("_rels/.rels")):
                if link.get("Type", "").endswith("/officeDocument") and link.get("Target"):
                    part = link.get("Target", "").lstrip("/")
        workbook = ElementTree.fromstring(book.read(part))
    for element in workbook:
        # By local name: strict OOXML files use another namespace than transitional ones.
        if element.tag.rpartition("}")[2] == "calcPr":
            return element.get("fullCalcOnLoad", "").lower() in ("1", "true")
    return False


def cell_text(value: Any, number_format: str = "General") -> str:
    """What Excel shows for a cell, for the values ids come as: a whole number as its digits
    (never 6.209E+07, zero-padded by a format such as 000000), a date as its format shows it."""
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
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return date_text(value, number_format)
    return str(value)


# --- dates and times as their number format shows them ---------------------------------------

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
_MONTHS += ["September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# Excel shows these built-in formats in the system's short date (openpyxl names them by
# their stored codes): as Excel in English (United States) shows them.
_SHORT_DATE = {"mm-dd-yy": "m/d/yyyy", "m/d/yy h:mm": "m/d/yyyy h:mm"}
_TOKEN = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]|am/pm|a/p|y+|m+|d+|h+|s+|\.0+|.', re.IGNORECASE)
_EPOCH = dt.datetime(1899, 12, 30)  # Excel's day 0 (with the 1900 leap-year bug folded in)


def date_text(value: dt.datetime | dt.date | dt.time | dt.timedelta, number_format: str) -> str:
    """A date, time or duration as Excel shows it under `number_format`'s common codes;
    General (a serial number in Excel) as Excel's default date format."""
    tokens = _TOKEN.findall(number_format or "General")
    code = "".join(tokens[: tokens.index(";")] if ";" in tokens else tokens)  # positive values
    tokens = _TOKEN.findall(_SHORT_DATE.get(code.lower(), code))
    if isinstance(value, dt.timedelta):
        moment = _EPOCH + value
    elif isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        moment = dt.datetime.combine(_EPOCH.date(), value)
    if not any(t[0].lower() in "ymdhs" or t.lower().startswith("[h") for t in tokens):
        code = "m/d/yyyy h:mm" if moment.time() != dt.time() else "m/d/yyyy"
        code = {dt.time: "h:mm:ss", dt.timedelta: "[h]:mm:ss"}.get(type(value), code)
        tokens = _TOKEN.findall(code)
    return _render(tokens, moment, value)


def _render(tokens: list[str], moment: dt.datetime, value: object) -> str:
    lowered = [t.lower() for t in tokens]
    twelve = "am/pm" in lowered or "a/p" in lowered
    hour = (moment.hour % 12 or 12) if twelve else moment.hour
    parts: list[str] = []
    for index, token in enumerate(tokens):
        low = lowered[index]
        head, width = low[0], len(low)
        if token.startswith('"'):
            parts.append(token[1:-1])
        elif head == "\\" or head == "_":
            parts.append(token[1] if head == "\\" else " ")
        elif head == "*":
            continue  # fill to the column's width: nothing to fill in a CSV
        elif head == "[":
            parts.append(_elapsed(low, moment, value))
        elif head == "y":
            parts.append(f"{moment.year % 100:02d}" if width <= 2 else f"{moment.year:04d}")
        elif head == "m" and _is_minutes(lowered, index):
            parts.append(str(moment.minute).zfill(min(width, 2)))
        elif head in "md" and width > 2:
            name = _MONTHS[moment.month - 1] if head == "m" else _DAYS[moment.weekday()]
            parts.append(name[:3] if width == 3 else name[0] if (head, width) == ("m", 5) else name)
        elif head in "mdhs":
            number = {"m": moment.month, "d": moment.day, "h": hour, "s": moment.second}[head]
            parts.append(str(number).zfill(min(width, 2)))
        elif head == "." and width > 1:
            parts.append("." + f"{moment.microsecond:06d}"[: width - 1])
        elif low in ("am/pm", "a/p"):
            after = moment.hour >= 12
            text = ("PM" if after else "AM") if low == "am/pm" else ("P" if after else "A")
            parts.append(text if token[0].isupper() else text.lower())
        else:
            parts.append(token)
    return "".join(parts)


def _is_minutes(lowered: list[str], index: int) -> bool:
    """`m` is minutes right after an hour or right before seconds, and a month elsewhere."""
    for step, wanted in ((-1, "h"), (1, "s")):
        position = index + step
        while 0 <= position < len(lowered):
            token = lowered[position]
            if token[0] in "ymdhs" or token.startswith("["):
                return token[0] == wanted or token.startswith(f"[{wanted}")
            position += step
    return False


def _elapsed(token: str, moment: dt.datetime, value: object) -> str:
    """[h], [mm], [ss]: a duration's total hours, minutes or seconds; other brackets nothing."""
    span = value if isinstance(value, dt.timedelta) else moment - _EPOCH
    seconds = int(span.total_seconds())
    unit = token.strip("[]")
    per = {"h": 3600, "m": 60, "s": 1}.get(unit[:1])
    return str(seconds // per).zfill(len(unit)) if per and set(unit) == {unit[0]} else ""
