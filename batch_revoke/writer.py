"""The result CSV: its columns, written whole or not at all (until then, marked INCOMPLETE with
the command that finishes it)."""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from batch_revoke.config import DEFAULT_FOLDER, finish_command
from batch_revoke.errors import ConfigError, InputError, StorageError
from batch_revoke.model import Endpoint, Record, RowOutcome, Status, columns

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "row",
    "endpoint",
    "status",
    "error_code",
    "error_message",
    "issued_ids",
    "http_status",
    "attempts",
    "resolved_customer_id",  # the id a customer lookup found ("" when the row named the id)
    "request_id",  # the X-Cap-Requestid of the answer that decided the row
)


def result_columns_at(path: Path, header: Sequence[str]) -> int | None:
    """Where a result file's own columns (RESULT_COLUMNS, last in its header) begin; None
    when `header` is no result file's. An earlier layout is refused: it would lose columns."""
    width = len(header) - len(RESULT_COLUMNS)
    if width >= 0 and tuple(header[width:]) == RESULT_COLUMNS:
        return width
    for missing in (1, 2):
        kept = RESULT_COLUMNS[:-missing]
        if tuple(header[-len(kept) :]) == kept:
            raise InputError(
                path,
                "a result file of an earlier batch-revoke (no "
                f"{' or '.join(RESULT_COLUMNS[-missing:])} column)",
                "read it with the version that wrote it",
            )
    return None


INCOMPLETE = "INCOMPLETE"  # the first word of a result file that is not (yet) complete


def claim_output(
    requested: Path | None,
    input_path: Path,
    now: datetime,
    *,
    replace_existing: bool = False,
    folder: Path = DEFAULT_FOLDER,
    label: str = "results",
    resume_from: Callable[[Path], Path] | None = None,
    resume_options: Mapping[str, str] | None = None,
) -> Path:
    """The result file's name, taken before anything is sent (a default name exclusively, so
    runs started together never share one), holding the line that says it is incomplete
    (`resume_from`: the input its finish command names, when the run keeps its own copy)."""
    if requested is not None:
        if requested.is_dir():
            raise ConfigError(f"--output {requested} is a directory", "pass a file name")
        if requested.exists() and not replace_existing:
            raise ConfigError(
                f"--output {requested} already exists",
                "pass --resume to continue the run that wrote it, --overwrite to replace it, "
                "or another --output",
            )
        shown = resume_from(requested) if resume_from else input_path
        mark_incomplete(requested, shown, resume_options)  # its folder made first
        return requested
    stamp = now.strftime("%Y%m%d-%H%M%S")
    _make_parent(folder / "x")
    for counter in itertools.count(1):
        suffix = "" if counter == 1 else f"-{counter}"
        path = folder / f"{input_stem(input_path)}-{label}-{stamp}{suffix}.csv"
        try:
            with path.open("x", encoding="utf-8") as handle:
                shown = resume_from(path) if resume_from else input_path
                handle.write(_incomplete_line(path, shown, resume_options))
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(path, exc.strerror or str(exc)) from exc
        return path
    raise AssertionError("unreachable")


def write_text_atomically(path: Path, text: str) -> None:
    """A small file, whole or not at all. A device or a pipe (/dev/full, a FIFO) is written
    into: renaming over it would put a plain file in its place (as root, even in /dev)."""
    special = False  # not there yet
    with contextlib.suppress(OSError):
        special = not stat.S_ISREG(path.stat().st_mode)  # its links followed
    if special:
        try:
            with path.open("w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        except OSError as exc:
            raise StorageError(path, exc.strerror or str(exc)) from exc
        return
    replace_file(path, lambda handle: handle.write(text))


def input_stem(input_path: Path) -> str:
    """What names the input in default file names: standard input (`-`) is `stdin`."""
    return "stdin" if str(input_path) == "-" else input_path.stem


def mark_incomplete(
    path: Path, input_path: Path, resume_options: Mapping[str, str] | None = None
) -> None:
    """Replace the file (atomically) by the line that says it is not complete."""
    line = _incomplete_line(path, input_path, resume_options)
    replace_file(path, lambda handle: handle.write(line))


def _incomplete_line(path: Path, input_path: Path, resume_options: Mapping[str, str] | None) -> str:
    command = finish_command(input_path, path, resume_options or {})
    return (
        f"{INCOMPLETE}: this run has not finished writing its results (it is still going, or "
        f"it was interrupted); to finish it: {command}\n"
    )


def result_header(input_columns: Iterable[str]) -> list[str]:
    """Input columns first, verbatim, then RESULT_COLUMNS; an input name that clashes with a
    result column becomes `input_<name>`, and one met before gets `_2`, `_3`, …"""
    taken = set(RESULT_COLUMNS)
    header = []
    for position, name in enumerate(input_columns, start=1):
        if not name.strip():
            name = f"column_{position}"  # a spreadsheet's unnamed column, named readably
        while name in RESULT_COLUMNS:
            name = f"input_{name}"
        base, copy = name, 1
        while name in taken:
            copy += 1
            name = f"{base}_{copy}"
        taken.add(name)
        header.append(name)
    return header + list(RESULT_COLUMNS)


ResultPart = tuple[Sequence[Record], Sequence[Sequence[str]]]  # records, and each one's cells


def write_results(
    path: Path, input_columns: tuple[str, ...], parts: Iterable[ResultPart], *, excel: bool = False
) -> None:
    """The result file: each record with its result cells, streamed in row order, written
    whole or not at all (`replace_file`). `excel`: a UTF-8 BOM so Excel reads the text right, and
    no cell that Excel would run as a formula."""

    def write(handle: TextIO) -> None:
        out = csv.writer(handle, lineterminator="\n")
        if excel:
            handle.write("\ufeff")
        out.writerow([_inert(name) if excel else name for name in result_header(input_columns)])
        for records, cells in parts:
            values, numbers, _ = columns(records)
            if excel:
                values = [tuple(map(_inert, line)) for line in values]
                cells = [list(map(_inert, line)) for line in cells]
            _write_lines(handle, out, values, numbers, cells)

    replace_file(path, write)


def outcome_parts(joined: Iterable[tuple[Record, RowOutcome]]) -> Iterator[ResultPart]:
    """Records with their outcomes, as the parts `write_results` takes."""
    pairs = iter(joined)
    while part := list(itertools.islice(pairs, _LINES_AT_ONCE)):
        yield [record for record, _ in part], [result_cells(outcome) for _, outcome in part]


_LINES_AT_ONCE = 4096
_NEEDS_QUOTES = '"\r\n'  # besides the comma, counted instead


# saves 31% of the 1M dry run (5.16 s -> 3.57 s CPU; bench, 2026-12)
def _write_lines(
    handle: TextIO,
    out: Any,
    values: Sequence[Sequence[str]],
    numbers: Sequence[int],
    cells: Sequence[Sequence[str]],
) -> None:
    """Result lines, as csv.writer writes them. A line with no comma, quote, CR or LF in its
    fields is written joined by commas, at a third of csv's per-field cost; a part of such
    lines (told by its commas and line breaks adding up) at once."""
    texts = [
        f"{','.join(line)},{number},{','.join(tail)}"
        for line, number, tail in zip(values, numbers, cells, strict=True)
    ]
    text = "\n".join(texts)
    if (
        text.count(",") == sum(map(len, values)) + sum(map(len, cells))
        and text.count("\n") == len(texts) - 1
        and '"' not in text
        and "\r" not in text
    ):
        handle.write(text + "\n")
        return
    for joined, line, number, tail in zip(texts, values, numbers, cells, strict=True):
        if joined.count(",") == len(line) + len(tail) and not any(
            char in joined for char in _NEEDS_QUOTES
        ):
            handle.write(joined + "\n")
        elif "\r" in joined:
            # csv quotes a field holding \n but not a bare \r: such a line gets every field quoted
            csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(
                [*line, str(number), *tail]
            )
        else:
            out.writerow([*line, str(number), *tail])


def _inert(value: str) -> str:
    """A cell that would start a formula gets Excel's "this is text" apostrophe, as OWASP
    advises against CSV injection."""
    return f"'{value}" if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def replace_file(path: Path, write: Callable[[TextIO], object]) -> None:
    """Written to a temporary file, flushed to disk, then renamed over `path`."""
    _make_parent(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(path, exc.strerror or str(exc)) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path.parent, exc.strerror or str(exc)) from exc


def result_cells(outcome: RowOutcome) -> list[str]:
    """The result columns after `row` (which is the record's own)."""
    return [
        outcome.endpoint.value if outcome.endpoint else "",
        outcome.status.value,
        outcome.error_code,
        outcome.error_message,
        ";".join(outcome.issued_ids),
        "" if outcome.http_status is None else str(outcome.http_status),
        str(outcome.attempts),
        outcome.resolved_customer_id,
        outcome.request_id,
    ]


def read_cells(path: Path, row: int, cells: Sequence[str]) -> RowOutcome:
    """The outcome `result_cells` wrote: `cells` are the result columns, `row` first (the
    record's own number stands for it)."""
    _, endpoint, status, code, message, issued, http_status, attempts, resolved, request = cells
    try:
        return RowOutcome(
            row,
            Status(status),
            Endpoint(endpoint) if endpoint else None,
            code,
            message,
            tuple(i for i in issued.split(";") if i),
            int(http_status) if http_status else None,
            int(attempts or 0),
            resolved_customer_id=resolved,
            request_id=request,
        )
    except ValueError as exc:
        raise InputError(
            path,
            f"row {row} has result columns this version cannot read ({exc})",
            "pass the result file as batch-revoke wrote it",
        ) from exc
