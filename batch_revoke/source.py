"""The input as a run reads it, any number of times: stdin spooled, a sheet as CSV, the
structure pass, records streamed in chunks (every value text as written), a result file.

The stdlib csv module in strict mode, not pandas: pandas' python engine (the only one that
hands malformed lines back) silently drops the final records when a quote is never closed,
and its C engine refuses a whole file over one record with an extra field. Here a record of
the wrong width stays in place to be reported, and broken quoting refuses the file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import itertools
import operator
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path
from typing import IO, Any

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError, InputError
from batch_revoke.model import Chunk, Endpoint, ErrorCode, Record, RowOutcome, Status, columns
from batch_revoke.spreadsheet import (
    OLE2,
    first_sheet_name,
    is_legacy_workbook,
    is_workbook,
    legacy_workbook,
    workbook_to_csv,
)
from batch_revoke.writer import RESULT_COLUMNS, result_columns_at

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


@dataclass(frozen=True)
class Source:
    """The input as the run reads it: a CSV of rows, or (`verify`) an earlier result file,
    whose records carry the outcomes it holds."""

    path: Path
    shown: Path  # the input as named to people (stdin: -)
    from_workbook: bool  # path is the CSV copy of a sheet of `shown`
    sheet: str  # that sheet, as --sheet named it ("": the first)
    columns: tuple[str, ...] = ()  # the header, verbatim (a result file's own columns dropped)
    field_index: dict[str, int] = dataclasses.field(default_factory=dict)  # known field -> column
    # What the structure pass found (a dry run reads the header alone): the records (blank
    # lines are not), the hash a resume knows the file by, size and mtime (a file changed
    # later is refused), and whether a record may need a customer lookup.
    records: int = 0
    sha256: str = ""
    stamp: tuple[int, int] | None = None
    by_identifier: bool = True
    earlier: bool = False  # `verify`: an earlier result file, its outcomes the starting point
    # A result file fed to `run`: where its own columns begin (None: not a result file). Its
    # error_code marks the records its run found of the wrong width and padded or cut to fit.
    result_at: int | None = None

    @classmethod
    def open(cls, config: RunConfig, *, whole: bool) -> Source:
        """`whole`: the structure pass, which keeps nothing but counts, so a broken file is
        refused before anything is sent; otherwise the header alone (a dry run sends nothing,
        so a later defect costs only its own output)."""
        path = config.input_path
        workbook = config.input_name is not None and is_workbook(config.input_name)
        source = cls(path, config.shown_input, workbook, config.sheet)
        try:
            stamp = _stamp(path)
            with _open(path) as reader:
                names = _header(path, reader)
            source = replace(source, columns=names, field_index=map_fields(path, names))
            if whole:
                source = source._scanned(stamp)
            width = result_columns_at(path, names)  # refuses an earlier layout
        except InputError as exc:
            raise source.named(exc) from exc
        if width is not None and width < 2:
            width = None  # result columns with no input columns before them: not ours
        if not config.input_is_result:
            return replace(source, result_at=width)
        if width is None:
            ours = ", ".join(RESULT_COLUMNS)
            problem = f"is not a batch-revoke result file (its last columns are not {ours})"
            fix = "pass a result file written by `batch-revoke run`"
            raise source.named(InputError(path, problem, fix))
        field_index = {key: index for key, index in source.field_index.items() if index < width}
        return replace(source, columns=names[:width], field_index=field_index, earlier=True)

    def _scanned(self, stamp: tuple[int, int]) -> Source:
        typed = self.field_index.get("identifiertype")
        earned = self.field_index.get("earnedbadgeid")
        count = 0
        by_identifier = False
        for chunk in records(self.path):
            count += len(chunk)
            if typed is not None and not by_identifier:
                by_identifier = _by_identifier(chunk.values, typed, earned)
        if not count:
            raise no_records(self.path)
        with self.path.open("rb") as raw:  # a file changed since fails its stamp on the next pass
            sha256 = hashlib.file_digest(raw, "sha256").hexdigest()
        return replace(self, records=count, sha256=sha256, stamp=stamp, by_identifier=by_identifier)

    def chunks(self) -> Iterator[tuple[Sequence[Record], list[RowOutcome] | None]]:
        """The records in chunks, with (for a result file) the outcome each one holds."""
        try:
            for chunk in records(self.path, self.stamp):
                if self.earlier:
                    width = len(self.columns)
                    kept = [Record(r.row, r.values[:width], r.defect) for r in chunk]
                    yield kept, [self._outcome(r.row, r.values[width:]) for r in chunk]
                elif self.result_at is not None:
                    at = self.result_at + RESULT_COLUMNS.index("error_code")
                    yield _refitted(chunk, at), None
                else:
                    yield chunk, None
        except InputError as exc:
            raise self.named(exc) from exc

    def named(self, exc: InputError) -> InputError:
        """A problem found in a sheet's CSV copy, named as the workbook and sheet: the copy
        is ours, not a file the user knows."""
        if not self.from_workbook or exc.path != self.path:
            return exc
        sheet = self.sheet or first_sheet_name(self.shown)
        return InputError(self.shown, exc.problem, exc.fix, sheet=sheet)

    def carried_unconfirmed(self, records: Sequence[Record]) -> dict[int, RowOutcome]:
        """A result file fed to `run` (`retry`): its records whose status is unconfirmed,
        which the run reads back before it sends them again."""
        at = self.result_at
        if at is None:
            return {}
        values, numbers, _ = columns(records)
        return {
            number: self._outcome(number, line[at:])
            for line, number in zip(values, numbers, strict=True)
            if line[at + RESULT_COLUMNS.index("status")] == Status.UNCONFIRMED.value
        }

    def _outcome(self, row: int, result: Sequence[str]) -> RowOutcome:
        """The outcome an earlier result file's record holds in its result columns."""
        cells = dict(zip(RESULT_COLUMNS, result, strict=True))
        try:
            return RowOutcome(
                row,
                Status(cells["status"]),
                Endpoint(cells["endpoint"]) if cells["endpoint"] else None,
                cells["error_code"],
                cells["error_message"],
                tuple(i for i in cells["issued_ids"].split(";") if i),
                int(cells["http_status"]) if cells["http_status"] else None,
                int(cells["attempts"] or 0),
                resolved_customer_id=cells["resolved_customer_id"],
                request_id=cells["request_id"],
            )
        except ValueError as exc:
            raise InputError(
                self.path,
                f"row {row} has result columns this version cannot read ({exc})",
                "pass the result file as batch-revoke wrote it",
            ) from exc


REFITTED = (
    "the run that wrote this result file found this record of the wrong width and padded or "
    "cut its values to fit; fix the record in that run's input, not here"
)


def _refitted(chunk: Chunk, at: int) -> Sequence[Record]:
    """The chunk, with each record that its earlier run found malformed (and so padded or
    cut) malformed again: its values are not what anybody wrote, and a padded issueId left
    blank would revoke every enrolment of the customer."""
    codes = [line[at] for line in chunk.values]  # no Record is made for a chunk left as is
    if ErrorCode.MALFORMED_RECORD.value not in codes:
        return chunk
    return [
        Record(record.row, record.values, record.defect or REFITTED)
        if code == ErrorCode.MALFORMED_RECORD.value
        else record
        for record, code in zip(chunk, codes, strict=True)
    ]


@contextlib.contextmanager
def spooled(config: RunConfig) -> Iterator[RunConfig]:
    """A run reads its input three times, so standard input (`-`), a pipe or a device is
    first copied to a temporary file, named as the input in messages. A workbook's sheet is
    converted to CSV: by a dry run here, into a temporary file; by a run beside its result
    file, once that is claimed (`outputs.open_run`)."""
    path = config.input_path
    if path.is_file() and is_legacy_workbook(path):
        raise legacy_workbook(path)
    if path.is_file() and is_workbook(path):
        with sheet_in_temp(config) if config.dry_run else contextlib.nullcontext(config) as read:
            yield read
        return
    if config.sheet:
        raise ConfigError(f"--sheet {config.sheet!r} given for a file that is not .xlsx", "")
    if str(path) != "-" and (path.is_file() or not path.exists()):
        yield config
        return
    with tempfile.NamedTemporaryFile(prefix="batch-revoke-input-", suffix=".csv") as copy:
        try:
            stdin = str(path) == "-"
            with contextlib.nullcontext(sys.stdin.buffer) if stdin else path.open("rb") as given:
                shutil.copyfileobj(given, copy)
            copy.flush()
        except OSError as exc:
            raise InputError(path, f"cannot be read ({exc.strerror or exc})", "") from exc
        try:
            yield replace(config, input_path=Path(copy.name), input_name=path)
        except InputError as exc:
            if exc.path != Path(copy.name):
                raise
            raise InputError(path, exc.problem, exc.fix) from exc  # named as the user named it


@contextlib.contextmanager
def sheet_in_temp(config: RunConfig) -> Iterator[RunConfig]:
    """The sheet as CSV in a temporary file, removed when the block ends."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", prefix="batch-revoke-sheet-", suffix=".csv"
    ) as sheet:
        converted = replace(config, input_path=Path(sheet.name), input_name=config.input_path)
        convert_sheet(converted, sheet)
        yield converted


def convert_sheet(config: RunConfig, out: IO[str]) -> None:
    """`config.input_name`'s sheet written to `out` (the file at `config.input_path`). A
    required column of nothing but formulas with no saved value (in the CSV, the only values
    that start with =: text that does gets Excel's apostrophe) refuses the whole file."""
    workbook = config.shown_input
    sheet = workbook_to_csv(workbook, config.sheet, out)
    out.flush()
    try:
        with _open(config.input_path) as reader:
            field_index = map_fields(config.input_path, _header(config.input_path, reader))
            formulas = {key: set[bool]() for key in REQUIRED_FIELDS}  # is each value one?
            for line in reader:
                for key, found in formulas.items():
                    text = line[field_index[key]] if len(line) > field_index[key] else ""
                    if text.strip():
                        found.add(text.startswith("="))
    except InputError:
        return  # the structure pass reports it, naming the sheet
    for key, label in REQUIRED_FIELDS.items():
        if formulas[key] == {True}:
            raise InputError(
                workbook,
                f"every {label} is a formula with no saved value",
                "the workbook was written by a script and never recalculated: open it in "
                "Excel and save it, or write the values",
                sheet=sheet,
            )


def input_sha256(config: RunConfig) -> str:
    """The input's identity in a journal: the hash of its rows (of a workbook, its sheet's)."""
    workbook = is_workbook(config.input_path)
    with sheet_in_temp(config) if workbook else contextlib.nullcontext(config) as read:
        return Source.open(read, whole=True).sha256


def _by_identifier(values: Sequence[Sequence[str]], typed: int, earned: int | None) -> bool:
    """Whether a record may name its customer by an identifier for revokeIssue: an
    identifierType other than id and no earnedBadgeId (revokeEarn takes the identifier
    itself). Most chunks have no identifierType at all, which one C-level pass tells."""
    types: list[str] = list(map(operator.itemgetter(typed), values))
    if not any(types):
        return False
    typed_only = itertools.compress(values, types)
    return any(
        text.strip().lower() not in ("", "id") and (earned is None or not fields[earned].strip())
        for fields, text in zip(typed_only, itertools.compress(types, types), strict=True)
    )


def no_records(path: Path) -> InputError:
    return InputError(
        path, "the file has a header but no records", "add one line per badge to revoke"
    )


def records(path: Path, stamp: tuple[int, int] | None = None) -> Iterator[Chunk]:
    """The records in chunks, streamed. With `stamp` (from the structure pass), a file
    changed since is refused rather than read half old, half new."""

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


def _first_fields_filled(block: list[list[str]]) -> bool:
    """Every line's first field holds text, so none is blank; every line must have a field."""
    firsts = list(map(operator.itemgetter(0), block))
    return all(firsts) and not any(map(str.isspace, firsts))


def _blank(fields: list[str]) -> bool:
    """A blank line is not a record, nor is ",,," from a spreadsheet."""
    first = fields[0] if fields else ""
    if first and not first.isspace():
        return False
    return not any(field.strip() for field in fields)


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


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    """A csv reader at the file's first line that is not blank (or past Excel's `sep=` line);
    a file that is missing, unreadable or not text is refused with what it is."""
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_CHARS))
    try:
        raw = path.open("rb")
    except OSError as exc:
        if not path.exists():
            fix = "check the path and the current directory"
            if path.parts[:1] == ("samples",):
                fix += "; for the bundled samples, run `batch-revoke samples` here first"
            raise InputError(path, "no such file", fix) from exc
        if path.is_dir():
            problem = "is a directory, not a CSV file"
            raise InputError(path, problem, "pass the CSV file itself") from exc
        raise InputError(path, f"cannot be read ({exc.strerror})", "check its permissions") from exc
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        head = raw.read(4096)
        raw.seek(0)  # the text wrapper has read nothing yet
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
    most of (spreadsheets in many locales save "CSV" with semicolons); or as Excel's first
    line `sep=;` names it (the bool: the line is such a line)."""
    named = line.strip()
    if len(named) == 5 and named[:4].lower() == "sep=":
        return named[4], True
    if "," in line:
        return ",", False
    best = max(";\t|", key=line.count)  # the first of those it holds most of
    return (best if best in line else ","), False


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
        return (-1, -1)  # _open names the problem
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


_RESULT_KEYS = frozenset(canonical(name) for name in RESULT_COLUMNS)


def _refuse_misspelt(path: Path, columns: tuple[str, ...], found: dict[str, int]) -> None:
    """Refuses a column that looks like an optional column the header lacks (isueId): carried
    through untouched, its rows would revoke every enrolment of the customer (no issueId),
    an enrolment instead of an earned badge, or send a mobile as a customer id."""
    for name in columns:
        key = canonical(name)
        if key in KNOWN_FIELDS or key in _RESULT_KEYS or key.startswith("input"):
            continue  # known, or a result file's own columns fed back in
        for field, label in OPTIONAL_FIELDS.items():
            # This close (difflib's ratio) to an optional field the header lacks: a typo.
            if field not in found and SequenceMatcher(None, key, field).ratio() >= 0.8:
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


def _unreadable(path: Path, exc: Exception, line: int) -> InputError:
    if isinstance(exc, UnicodeDecodeError):
        # Text is decoded ahead of the csv reader, a block at a time: its line count is
        # behind. Find the line again from the bytes (once, and only for a refused file).
        line = _first_undecodable_line(path) or line
    where = f" (line {line})" if line else ""
    if isinstance(exc, UnicodeDecodeError):
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
    with contextlib.suppress(OSError), path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0
