"""The input as a run reads it, any number of times: standard input spooled to a file, a
workbook's sheet as CSV, the structure pass, and an earlier result file read as input."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError, InputError
from batch_revoke.model import (
    Endpoint,
    ErrorCode,
    Record,
    RowOutcome,
    Status,
    columns,
)
from batch_revoke.reader import REQUIRED_FIELDS, header, records, scan
from batch_revoke.spreadsheet import (
    first_sheet_name,
    is_legacy_workbook,
    is_workbook,
    legacy_workbook,
    workbook_to_csv,
)
from batch_revoke.writer import RESULT_COLUMNS, result_columns_at


@contextlib.contextmanager
def spooled(config: RunConfig) -> Iterator[RunConfig]:
    """A run reads its input three times (the structure pass, the stream, the result file), so
    standard input (`-`), a pipe or a device is first copied to a temporary file, deleted
    when the run ends. The copy keeps the input's name in file names and hints. A workbook's
    sheet is converted to CSV: by a dry run here, into a temporary file; by a run beside its
    result file, once that is claimed (`outputs.open_run`)."""
    path = config.input_path
    if is_legacy_workbook(path) and path.is_file():
        raise legacy_workbook(path)
    if is_workbook(path) and path.is_file():
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
    required column of nothing but formulas with no saved value refuses the whole file."""
    workbook = config.shown_input
    found = workbook_to_csv(workbook, config.sheet, out)
    out.flush()
    try:
        _, field_index = header(config.input_path)
    except InputError:
        return  # the structure pass reports it, naming the sheet
    for key, label in REQUIRED_FIELDS.items():
        if found.only_unsaved_formulas(field_index[key]):
            raise InputError(
                workbook,
                f"every {label} is a formula with no saved value",
                "the workbook was written by a script and never recalculated: open it in "
                "Excel and save it, or write the values",
                sheet=found.name,
            )


@dataclass(frozen=True)
class Source:
    """The input as the run reads it, any number of times: a CSV of rows, or (`verify`) an
    earlier result file, whose records carry the outcomes it holds."""

    path: Path
    columns: tuple[str, ...]  # the input columns (a result file's own columns dropped)
    field_index: dict[str, int]
    records: int = 0  # 0: not counted (a dry run reads the file once)
    sha256: str = ""
    stamp: tuple[int, int] | None = None
    earlier: bool = False
    shown: Path = Path()  # the input as named to people (stdin: -)
    from_workbook: bool = False  # path is the CSV copy of a sheet of `shown`
    sheet: str = ""  # that sheet, as --sheet named it ("": the first)
    by_identifier: bool = True  # a record may be named by an identifier (False: none is)
    # A result file fed to `run`: where its error_code is, which marks the records its run
    # found of the wrong width and padded or cut to fit (None: not a result file).
    refitted_at: int | None = None

    @classmethod
    def open(cls, config: RunConfig, *, whole: bool) -> Source:
        """`whole`: the structure pass over the entire file; otherwise the header only."""
        path = config.input_path
        named = cls(
            path,
            (),
            {},
            shown=config.shown_input,
            from_workbook=config.input_name is not None and is_workbook(config.input_name),
            sheet=config.sheet,
        )
        try:
            if whole:  # all the structure pass found
                source = replace(named, **asdict(scan(path)))
            else:
                columns, field_index = header(path)
                source = replace(named, columns=columns, field_index=field_index)
            width = result_columns_at(path, source.columns)  # refuses an earlier layout
        except InputError as exc:
            raise named.named(exc) from exc
        if width is not None and width < 2:
            width = None  # result columns with no input columns before them: not ours
        if not config.input_is_result:
            at = None if width is None else width + RESULT_COLUMNS.index("error_code")
            return replace(source, refitted_at=at)
        if width is None:
            ours = ", ".join(RESULT_COLUMNS)
            problem = f"is not a batch-revoke result file (its last columns are not {ours})"
            fix = "pass a result file written by `batch-revoke run`"
            raise named.named(InputError(path, problem, fix))
        field_index = {key: index for key, index in source.field_index.items() if index < width}
        return replace(
            source, columns=source.columns[:width], field_index=field_index, earlier=True
        )

    def chunks(self) -> Iterator[tuple[Sequence[Record], list[RowOutcome] | None]]:
        """The records in chunks, with (for a result file) the outcome each one holds."""
        try:
            for chunk in records(self.path, self.stamp):
                if self.earlier:
                    split = [self._split(record) for record in chunk]
                    yield [record for record, _ in split], [outcome for _, outcome in split]
                elif self.refitted_at is not None:
                    yield _refitted(chunk, self.refitted_at), None
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

    def just_records(self) -> Iterator[Record]:
        for chunk, _ in self.chunks():
            yield from chunk

    def carried_unconfirmed(self, records: Sequence[Record]) -> dict[int, RowOutcome]:
        """A result file fed to `run` (`retry`): its records whose carried status is
        unconfirmed, with the outcome they carry. They may have been applied: the run reads
        them back before it sends them again."""
        if self.refitted_at is None:
            return {}
        width = self.refitted_at - RESULT_COLUMNS.index("error_code")
        at = width + RESULT_COLUMNS.index("status")
        values, numbers, _ = columns(records)
        return {
            number: self._split(Record(number, tuple(line)), width)[1]
            for line, number in zip(values, numbers, strict=True)
            if len(line) == width + len(RESULT_COLUMNS) and line[at] == Status.UNCONFIRMED.value
        }

    def _split(self, record: Record, width: int = 0) -> tuple[Record, RowOutcome]:
        """An earlier result's record: its input columns, and the outcome it holds."""
        width = width or len(self.columns)
        cells = dict(zip(RESULT_COLUMNS, record.values[width:], strict=True))
        try:
            outcome = RowOutcome(
                record.row,
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
                f"row {record.row} has result columns this version cannot read ({exc})",
                "pass the result file as batch-revoke wrote it",
            ) from exc
        return Record(record.row, record.values[:width], record.defect), outcome


def input_sha256(config: RunConfig) -> str:
    """The input's identity in a journal: the hash of its rows (of a workbook, its sheet's)."""
    workbook = is_workbook(config.input_path)
    with sheet_in_temp(config) if workbook else contextlib.nullcontext(config) as read:
        return Source.open(read, whole=True).sha256


REFITTED = (
    "the run that wrote this result file found this record of the wrong width and padded or "
    "cut its values to fit; fix the record in that run's input, not here"
)


def _refitted(chunk: Sequence[Record], at: int) -> Sequence[Record]:
    """The chunk, with each record that its earlier run found malformed (and so padded or
    cut) malformed again: its values are not what anybody wrote, and a padded issueId left
    blank would revoke every enrolment of the customer."""
    values, _, _ = columns(chunk)  # a Chunk's own: no Record is made for a chunk left as is
    codes = [line[at] if len(line) > at else "" for line in values]
    if ErrorCode.MALFORMED_RECORD.value not in codes:
        return chunk
    return [
        Record(record.row, record.values, record.defect or REFITTED)
        if code == ErrorCode.MALFORMED_RECORD.value
        else record
        for record, code in zip(chunk, codes, strict=True)
    ]
