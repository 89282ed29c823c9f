"""CSV file -> Records. pandas at the edge, every value kept as text exactly as written."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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
_BAD_LINE = "\x00bad-line:"  # stands in for a record with too many fields, so it keeps its place
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
    bad_lines: list[list[str]] = []

    def keep_bad_line(fields: list[str]) -> list[str]:
        bad_lines.append(fields)
        return [f"{_BAD_LINE}{len(bad_lines) - 1}"]

    try:
        reader = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            engine="python",  # the only engine that hands malformed lines back to us
            on_bad_lines=keep_bad_line,
            skip_blank_lines=True,
            chunksize=chunk_rows,
        )
        first = next(reader, None)
    except Exception as exc:  # pandas raises many types; all mean "not a readable CSV"
        raise _unreadable(path, exc) from exc
    if first is None or first.empty:
        raise InputError(
            path,
            "the file is empty",
            "it needs a header line naming badgeMetaId and customerId, then one line per row",
        )
    header = tuple(str(name) for name in first.iloc[0].tolist())
    width = len(header)

    def chunks() -> Iterator[list[Record]]:
        row = 0
        frame: pd.DataFrame | None = first.iloc[1:]
        try:
            while frame is not None:
                chunk = []
                for values in frame.itertuples(index=False, name=None):
                    row += 1
                    chunk.append(_record(row, values, width, bad_lines))
                if chunk:
                    yield chunk
                frame = next(reader, None)
        except (UnicodeDecodeError, csv.Error, pd.errors.ParserError) as exc:
            raise _unreadable(path, exc, after_row=row) from exc

    return header, chunks()


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
    if len(columns) == 1:
        for separator, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if separator in columns[0]:
                return f"the file looks separated by {label}; save it comma-separated"
    return (
        "name the columns badgeMetaId and customerId (case, spaces, _ and - are ignored), "
        "optionally issueId, earnedBadgeId, identifierType"
    )


def _record(row: int, values: tuple[object, ...], width: int, bad_lines: list[list[str]]) -> Record:
    first = values[0] if values else ""
    if isinstance(first, str) and first.startswith(_BAD_LINE):
        fields = bad_lines[int(first.removeprefix(_BAD_LINE))]
        defect = (
            f"the record has {len(fields)} fields but the header has {width} "
            f"(an unquoted comma?): {','.join(fields)}"
        )
        return Record(row, tuple(fields[:width]), defect)
    present = tuple(value for value in values if isinstance(value, str))
    if len(present) < width:
        defect = f"the record has {len(present)} fields but the header has {width}"
        return Record(row, present + ("",) * (width - len(present)), defect)
    return Record(row, present)


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
    if head.startswith(b"PK\x03\x04"):
        raise InputError(path, "is an Excel workbook (or another zip), not a CSV", _CSV_UTF8_FIX)
    if b"\x00" in head:
        raise InputError(path, "is a binary file, not a CSV", _CSV_UTF8_FIX)


def _unreadable(path: Path, exc: Exception, after_row: int = 0) -> InputError:
    where = f" after record {after_row}" if after_row else ""
    if isinstance(exc, pd.errors.EmptyDataError):
        return InputError(
            path,
            "the file is empty",
            "it needs a header line naming badgeMetaId and customerId, then one line per row",
        )
    if isinstance(exc, UnicodeDecodeError):
        return InputError(
            path, f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}{where})", _CSV_UTF8_FIX
        )
    if isinstance(exc, csv.Error) and "end of data" in str(exc):
        return InputError(
            path,
            f"a quoted field{where} is never closed",
            'close the quote, or double any " inside a quoted value',
        )
    return InputError(path, f"is not a readable CSV{where} ({exc})", _CSV_UTF8_FIX)
