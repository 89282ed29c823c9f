"""CSV file -> Records, every value kept as text exactly as written.

The stdlib csv module in strict mode, not pandas: pandas' python engine (the only one that
hands malformed lines back) silently drops the final records when a quote is never closed,
and its C engine refuses a whole file over one record with an extra field. Here a record of
the wrong width stays in place to be reported, and broken quoting refuses the file.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batch_revoke.errors import InputError
from batch_revoke.model import Record

# Canonical field -> its name in messages and docs. Headers match ignoring case, spaces, _ and -.
REQUIRED_FIELDS = {"badgemetaid": "badgeMetaId", "customerid": "customerId"}
OPTIONAL_FIELDS = {
    "issueid": "issueId",
    "earnedbadgeid": "earnedBadgeId",
    "identifiertype": "identifierType",
}
KNOWN_FIELDS = {**REQUIRED_FIELDS, **OPTIONAL_FIELDS}

CHUNK_ROWS = 50_000
MAX_FIELD_CHARS = 1_000_000  # a runaway quoted field fails loudly instead of eating the file
_CSV_UTF8_FIX = "save it from the spreadsheet as 'CSV UTF-8 (comma delimited)'"


def canonical(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-\t")


@dataclass(frozen=True, slots=True)
class InputTable:
    path: Path
    columns: tuple[str, ...]  # the header, verbatim
    field_index: dict[str, int]  # canonical field -> column position, known fields only
    records: tuple[Record, ...]


def read_input(path: Path) -> InputTable:
    """Read and check the whole file, so a broken file is refused before anything is sent."""
    columns, chunks = open_records(path)
    field_index = map_fields(path, columns)
    records = tuple(record for chunk in chunks for record in chunk)
    if not records:
        raise InputError(
            path, "the file has a header but no records", "add one line per badge to revoke"
        )
    return InputTable(path, columns, field_index, records)


def open_records(
    path: Path, chunk_rows: int = CHUNK_ROWS
) -> tuple[tuple[str, ...], Iterator[list[Record]]]:
    """The header and an iterator of record chunks, so large files can stream."""
    _check_file(path)
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_CHARS))
    handle = path.open(encoding="utf-8-sig", newline="")
    reader = csv.reader(handle, strict=True)
    try:
        header = next((line for line in reader if line), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        handle.close()
        raise _unreadable(path, exc, reader.line_num) from exc
    if header is None:
        handle.close()
        raise InputError(
            path,
            "the file is empty",
            "it needs a header line naming badgeMetaId and customerId, then one line per row",
        )
    width = len(header)

    def chunks() -> Iterator[list[Record]]:
        row = 0
        chunk: list[Record] = []
        with handle:
            try:
                for fields in reader:
                    if not any(field.strip() for field in fields):
                        continue  # a blank line is not a record, nor is ",,," from a spreadsheet
                    row += 1
                    chunk.append(_record(row, fields, width))
                    if len(chunk) >= chunk_rows:
                        yield chunk
                        chunk = []
            except (UnicodeDecodeError, csv.Error) as exc:
                raise _unreadable(path, exc, reader.line_num) from exc
        if chunk:
            yield chunk

    return tuple(header), chunks()


def map_fields(path: Path, columns: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for position, name in enumerate(columns):
        key = canonical(name)
        if key not in KNOWN_FIELDS:
            continue
        if key in found:
            raise InputError(
                path,
                f"columns {columns[found[key]]!r} and {name!r} both mean {KNOWN_FIELDS[key]}",
                "keep one of them",
            )
        found[key] = position
    missing = [label for key, label in REQUIRED_FIELDS.items() if key not in found]
    if missing:
        raise InputError(path, _missing_columns_problem(missing, columns), _missing_fix(columns))
    return found


def _missing_columns_problem(missing: list[str], columns: tuple[str, ...]) -> str:
    listed = ", ".join(repr(name) for name in columns)
    return f"required column {' and '.join(missing)} not found; the header has {listed}"


def _missing_fix(columns: tuple[str, ...]) -> str:
    if columns[0].startswith("INCOMPLETE"):
        return "it is the result file of a run that has not finished; finish it with --resume"
    if len(columns) == 1:
        for separator, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if separator in columns[0]:
                return f"the file looks separated by {label}; save it comma-separated"
    return (
        "name the columns badgeMetaId and customerId (case, spaces, _ and - are ignored), "
        "optionally issueId, earnedBadgeId, identifierType"
    )


def _record(row: int, fields: list[str], width: int) -> Record:
    if len(fields) > width:
        defect = (
            f"the record has {len(fields)} fields but the header has {width} "
            f"(an unquoted comma?): {','.join(fields)}"
        )
        return Record(row, tuple(fields[:width]), defect)
    if len(fields) < width:
        defect = f"the record has {len(fields)} fields but the header has {width}"
        return Record(row, tuple(fields) + ("",) * (width - len(fields)), defect)
    return Record(row, tuple(fields))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "no such file", "check the path and the current directory")
    if path.is_dir():
        raise InputError(path, "is a directory, not a CSV file", "pass the CSV file itself")
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", "check its permissions") from exc
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, "is UTF-16 text ('Unicode Text'), not UTF-8", _CSV_UTF8_FIX)
    if head.startswith(b"PK\x03\x04"):
        raise InputError(path, "is an Excel workbook (or another zip), not a CSV", _CSV_UTF8_FIX)
    if b"\x00" in head:
        raise InputError(path, "is a binary file, not a CSV", _CSV_UTF8_FIX)


def _unreadable(path: Path, exc: Exception, line: int) -> InputError:
    where = f" (line {line})" if line else ""
    if isinstance(exc, UnicodeDecodeError):
        byte = exc.object[exc.start]
        return InputError(path, f"is not UTF-8 text (byte 0x{byte:02x}{where})", _CSV_UTF8_FIX)
    text = str(exc)
    if "end of data" in text or "field larger than" in text:
        return InputError(
            path,
            f"a quoted field is never closed{where}",
            'close the quote, or double any " inside a quoted value',
        )
    return InputError(
        path, f"has broken quoting{where}: {text}", 'quote the whole value and double any " in it'
    )
