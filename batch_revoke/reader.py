"""CSV file -> Records, every value kept as text exactly as written.

The stdlib csv module in strict mode, not pandas: pandas' python engine (the only one that
hands malformed lines back) silently drops the final records when a quote is never closed,
and its C engine refuses a whole file over one record with an extra field. Here a record of
the wrong width stays in place to be reported, and broken quoting refuses the file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import operator
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from batch_revoke.errors import InputError
from batch_revoke.model import Chunk, Record
from batch_revoke.spreadsheet import OLE2, legacy_workbook
from batch_revoke.writer import RESULT_COLUMNS

# Canonical field -> its name in messages and docs. Headers match ignoring case, spaces, _ and -.
REQUIRED_FIELDS = {"badgemetaid": "badgeMetaId", "customerid": "customerId"}
OPTIONAL_FIELDS = {
    "issueid": "issueId",
    "earnedbadgeid": "earnedBadgeId",
    "identifiertype": "identifierType",
}
KNOWN_FIELDS = {**REQUIRED_FIELDS, **OPTIONAL_FIELDS}

CHUNK_ROWS = 5_000  # small enough that the first request leaves at once
MAX_FIELD_CHARS = 1_000_000  # a runaway quoted field fails loudly instead of eating the file
_CSV_UTF8_FIX = "save it from the spreadsheet as 'CSV UTF-8 (comma delimited)'"


def canonical(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-\t")


@dataclass(frozen=True, slots=True)
class InputFile:
    """What the structure pass found: the file is readable to its end, and what it holds."""

    columns: tuple[str, ...]  # the header, verbatim
    field_index: dict[str, int]  # canonical field -> column position, known fields only
    records: int  # how many records (blank lines are not records)
    sha256: str  # of the file's bytes, so a resume can tell it is the same file
    stamp: tuple[int, int]  # size and mtime: a later pass refuses a file changed meanwhile
    # Some record may name its customer by an identifier for revokeIssue (an identifierType
    # other than id, no earnedBadgeId): only then may a run need customer lookups.
    by_identifier: bool


def scan(path: Path) -> InputFile:
    """The structure pass: read the whole file and keep nothing but counts, so a file that is
    not UTF-8, has broken quoting or lacks a required column is refused before anything is
    sent, in about the time of a bare csv pass."""
    stamp = _stamp(path)
    columns, field_index = header(path)
    typed, earned = field_index.get("identifiertype"), field_index.get("earnedbadgeid")
    count = 0
    by_identifier = False
    for chunk in records(path):
        count += len(chunk)
        if typed is not None and not by_identifier:
            by_identifier = _by_identifier(chunk.values, typed, earned)
    if not count:
        raise no_records(path)
    with path.open("rb") as raw:  # a file changed since fails its stamp on the next pass
        sha256 = hashlib.file_digest(raw, "sha256").hexdigest()
    return InputFile(columns, field_index, count, sha256, stamp, by_identifier)


def _first_fields_filled(block: list[list[str]]) -> bool:
    """Every line's first field holds text, so none is blank; every line must have a field."""
    firsts = list(map(operator.itemgetter(0), block))
    return all(firsts) and not any(map(str.isspace, firsts))


def _by_identifier(values: Sequence[Sequence[str]], typed: int, earned: int | None) -> bool:
    """Whether a record may name its customer by an identifier for revokeIssue: its
    identifierType is other than id (or not a type at all: validation says so later) and it
    has no earnedBadgeId (revokeEarn takes the identifier itself). Most chunks have no
    identifierType at all, which one C-level pass tells."""
    types: list[str] = list(map(operator.itemgetter(typed), values))
    if not any(types):
        return False
    typed_only = itertools.compress(values, types)
    for fields, text in zip(typed_only, itertools.compress(types, types), strict=True):
        if text.strip().lower() in ("", "id"):
            continue
        if earned is None or not fields[earned].strip():
            return True
    return False


def no_records(path: Path) -> InputError:
    return InputError(
        path, "the file has a header but no records", "add one line per badge to revoke"
    )


def header(path: Path) -> tuple[tuple[str, ...], dict[str, int]]:
    """The header and its known fields, without reading further (a dry run's only check
    before it starts: it sends nothing, so a later defect costs only its own output)."""
    with _open(path) as reader:
        columns = _header(path, reader)
    return columns, map_fields(path, columns)


def records(path: Path, stamp: tuple[int, int] | None = None) -> Iterator[Chunk]:
    """The records in file order, in chunks, streamed: memory holds one chunk. With `stamp`
    (from `scan`), a file changed since is refused rather than read half old, half new."""

    def unchanged() -> None:
        if stamp is not None and _stamp(path) != stamp:
            raise InputError(
                path,
                "changed since the run started reading it",
                "leave the input file alone while a run uses it; --resume with the original file",
            )

    unchanged()
    with _open(path) as reader:
        width = len(_header(path, reader))
        row = 0
        values: list[Sequence[str]] = []
        numbers: list[int] = []
        defects: list[str] = []
        try:
            while block := list(itertools.islice(reader, CHUNK_ROWS - len(numbers))):
                if not numbers:
                    unchanged()  # checked again before each chunk: a run may last for hours
                # with model.Chunk, saves 11% of the 1M dry run (5.18 s -> 4.63 s CPU, 2026-12)
                # The usual block (every record full width, none blank) is kept as read, by
                # C-level passes, at a fraction of the cost of looking at each record.
                if set(map(len, block)) == {width} and _first_fields_filled(block):
                    values += block
                    numbers += range(row + 1, row + 1 + len(block))
                    defects += itertools.repeat("", len(block))
                    row += len(block)
                else:
                    for fields in block:
                        if _blank(fields):
                            continue
                        row += 1
                        record = _record(row, fields, width)
                        values.append(record.values)
                        numbers.append(row)
                        defects.append(record.defect)
                if len(numbers) >= CHUNK_ROWS:
                    yield Chunk(values, numbers, defects if any(defects) else None)
                    values, numbers, defects = [], [], []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _unreadable(path, exc, reader.line_num) from exc
    if numbers:
        yield Chunk(values, numbers, defects if any(defects) else None)


def _blank(fields: list[str]) -> bool:
    """A blank line is not a record, nor is ",,," from a spreadsheet. The first field decides
    almost every line, so the full check runs only when it is empty."""
    first = fields[0] if fields else ""
    if first and not first.isspace():
        return False
    return not any(field.strip() for field in fields)


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    _check_file(path)
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_CHARS))
    try:
        opened = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", "check its permissions") from exc
    with opened as handle:
        leading: list[str] = []
        try:
            while (line := handle.readline()) and not line.strip():
                leading.append(line)
        except UnicodeDecodeError as exc:
            raise _unreadable(path, exc, len(leading) + 1) from exc
        delimiter, excel_hint = _delimiter(line)
        lines = itertools.chain(leading, [line], handle)
        reader = csv.reader(lines, strict=True, delimiter=delimiter)
        if excel_hint:
            for _ in range(len(leading) + 1):
                next(reader)  # the blank lines and Excel's `sep=` line are not the header
        yield reader


def _delimiter(line: str) -> tuple[str, bool]:
    """The separator, from the header line: a comma; else the semicolon, tab or pipe it holds
    most of (spreadsheets in many locales save "CSV" with semicolons). Excel's first line
    `sep=;` names it outright. Returns (delimiter, whether that line is such a `sep=` line)."""
    named = line.strip()
    if len(named) == 5 and named[:4].lower() == "sep=":
        return named[4], True
    if "," in line:
        return ",", False
    counts = {candidate: line.count(candidate) for candidate in ";\t|"}
    best = max(counts, key=lambda candidate: counts[candidate])
    return (best if counts[best] else ","), False


def _header(path: Path, reader: Any) -> tuple[str, ...]:
    try:
        found = next((line for line in reader if not _blank(line)), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _unreadable(path, exc, reader.line_num) from exc
    if found is None:
        raise InputError(
            path,
            "the file is empty",
            "it needs a header line naming badgeMetaId and customerId, then one line per row",
        )
    return tuple(found)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except OSError:
        return (-1, -1)  # _check_file names the problem
    return status.st_size, status.st_mtime_ns


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
        listed = ", ".join(repr(name) for name in columns)
        problem = f"required column {' and '.join(missing)} not found; the header has {listed}"
        raise InputError(path, problem, _missing_fix(columns))
    _refuse_misspelt(path, columns, found)
    return found


# A column spelt this close to an optional one it is not (difflib's ratio) is taken for a typo.
_ALIKE = 0.8
_RESULT_KEYS = frozenset(canonical(name) for name in RESULT_COLUMNS)


def _refuse_misspelt(path: Path, columns: tuple[str, ...], found: dict[str, int]) -> None:
    """Refuses a header with a column that looks like an optional column the header lacks
    (isueId, earnedBadge, identifer type). Any other column is carried through untouched, so
    a misspelt one would be too: its rows would revoke every enrolment of the customer (no
    issueId), an enrolment instead of an earned badge (no earnedBadgeId), or send a mobile as
    a customer id (no identifierType)."""
    for name in columns:
        key = canonical(name)
        if key in KNOWN_FIELDS or key in _RESULT_KEYS or key.startswith("input"):
            continue  # known, or a result file's own columns fed back in
        for field, label in OPTIONAL_FIELDS.items():
            if field not in found and SequenceMatcher(None, key, field).ratio() >= _ALIKE:
                raise InputError(
                    path,
                    f"column {name!r} is not one batch-revoke reads, but looks like {label}: "
                    f"misspelt, it would be ignored and its rows sent as if they had no {label}",
                    f"rename it {label}; if it holds something else, give it a name that does "
                    f"not look like {label}",
                )


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
        fix = "check the path and the current directory"
        if path.parts[:1] == ("samples",):
            fix += "; for the bundled samples, run `batch-revoke samples` here first"
        raise InputError(path, "no such file", fix)
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
        raise InputError(
            path,
            "is an Excel workbook (or another zip), not a CSV",
            "name it .xlsx to read it as a workbook, or " + _CSV_UTF8_FIX,
        )
    if head.startswith(OLE2):
        raise legacy_workbook(path)
    if b"\x00" in head:
        raise InputError(path, "is a binary file, not a CSV", _CSV_UTF8_FIX)


def _unreadable(path: Path, exc: Exception, line: int) -> InputError:
    where = f" (line {line})" if line else ""
    if isinstance(exc, UnicodeDecodeError):
        # Text is decoded ahead of the csv reader, a block at a time: its line count is
        # behind. Find the line again from the bytes (once, and only for a refused file).
        line = _first_undecodable_line(path) or line
        where = f" (line {line})" if line else ""
        byte = exc.object[exc.start]
        return InputError(path, f"is not UTF-8 text (byte 0x{byte:02x}{where})", _CSV_UTF8_FIX)
    text = str(exc)
    # The csv reader fails where the damage shows (a later quote, the file's end), often many
    # lines after the quote that caused it: name the line its record starts on too.
    start = _failing_record_start(path)
    if 0 < start < line:
        where = f" (in the record that starts on line {start}; found at line {line})"
    if "field larger than" in text:
        return InputError(
            path,
            f"a field is longer than {MAX_FIELD_CHARS:,} characters{where}",
            "no id is that long: look for a quote that is never closed (it swallows the lines "
            "after it) or a value pasted in by mistake",
        )
    if "end of data" in text:
        return InputError(
            path,
            f"a quoted field is never closed{where}",
            'close the quote, or double any " inside a quoted value',
        )
    return InputError(
        path, f"has broken quoting{where}: {text}", 'quote the whole value and double any " in it'
    )


def _failing_record_start(path: Path) -> int:
    """The line the record that breaks the csv reader starts on, 0 when it cannot be told:
    the file read again up to the error, once, and only for a refused file."""
    last = 0
    try:
        with _open(path) as reader:
            for _ in reader:
                last = reader.line_num
    except csv.Error:
        return last + 1
    except (InputError, UnicodeDecodeError):
        return 0
    return 0


def _first_undecodable_line(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except OSError:
        pass
    return 0
