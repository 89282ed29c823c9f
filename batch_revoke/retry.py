"""`batch-revoke retry RESULT.csv`: the rows of an earlier result file that sending again can
still revoke, written verbatim to an input file of their own and run as a new run."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from batch_revoke.codes import retryable
from batch_revoke.errors import ConfigError, InputError
from batch_revoke.journal import ReadError, options_of, read_meta
from batch_revoke.model import Status
from batch_revoke.outputs import journal_path
from batch_revoke.writer import INCOMPLETE, RESULT_COLUMNS, result_columns_at

Tally = Counter[tuple[str, str]]  # rows per (status, error_code)


@dataclass(frozen=True)
class Selection:
    """Which rows go again: those a retry can help, or those of the statuses and codes asked."""

    statuses: frozenset[Status] = frozenset()
    codes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, statuses: Sequence[str], codes: Iterable[str]) -> Selection:
        for text in statuses:
            if text not in set(Status):
                names = ", ".join(s.value for s in Status if s is not Status.REVOKED)
                raise ConfigError(f"--status {text!r} is not a status", f"use one of {names}")
            if text == Status.REVOKED:
                raise ConfigError("--status revoked: a revoked row is done", "leave it out")
        return cls(frozenset(map(Status, statuses)), frozenset(codes))

    def chooses(self, status: Status, code: str) -> bool:
        if status is Status.REVOKED:
            return False
        if not (self.statuses or self.codes):
            return retryable(status, code)
        return (not self.statuses or status in self.statuses) and (
            not self.codes or code in self.codes
        )


def choose(result: Path, selection: Selection, target: Path) -> tuple[Tally, Tally]:
    """The rows of `result` per status and code, chosen and all; the chosen ones are written
    verbatim to `target` (nothing when none is)."""
    chosen, every = Tally(), Tally()
    partial = target.with_name(f".{target.name}.partial")
    try:
        with result.open(newline="", encoding="utf-8-sig") as given:
            rows = csv.reader(given, strict=True)
            header = next(rows, [])
            if header[:1] and header[0].startswith(INCOMPLETE):
                fix = "finish its run first (the file's first line says how), then retry"
                raise InputError(result, "is marked INCOMPLETE: its run has not finished", fix)
            width = result_columns_at(result, header)
            if width is None or width < 2:
                ours = ", ".join(RESULT_COLUMNS)
                problem = f"is not a batch-revoke result file (its last columns are not {ours})"
                raise InputError(result, problem, "pass a result file written by batch-revoke")
            at = width + RESULT_COLUMNS.index("status")  # error_code follows it
            with partial.open("w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(header)
                for record in rows:
                    try:
                        if len(record) != len(header):
                            raise ValueError(f"{len(record)} fields, not {len(header)}")
                        status, code = Status(record[at]), record[at + 1]
                    except ValueError as exc:
                        problem = f"line {rows.line_num} cannot be read as a result ({exc})"
                        fix = "pass the result file as batch-revoke wrote it"
                        raise InputError(result, problem, fix) from exc
                    every[status.value, code] += 1
                    if selection.chooses(status, code):
                        chosen[status.value, code] += 1
                        writer.writerow(record)
    except csv.Error as exc:
        raise InputError(result, f"line {rows.line_num}: {exc}", "") from exc
    except OSError as exc:
        raise InputError(result, f"cannot be read ({exc.strerror or exc})", "") from exc
    finally:
        if not chosen:
            partial.unlink(missing_ok=True)
    if chosen:
        partial.replace(target)
    return chosen, every


def described(tally: Tally) -> str:
    """ "failed http_503 3, unconfirmed timeout 1" (most rows first)."""
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{status} {code or '(no code)'} {rows}" for (status, code), rows in ranked)


def paths(
    result: Path, output: Path | None, folder: Path | None, now: datetime
) -> tuple[Path, Path]:
    """The retry's input file and result file (`-o`, else named after RESULT, beside it)."""
    if output is not None:
        return output.with_name(f"{output.stem}-input.csv"), output
    stem = f"{result.stem}-retry-{now.strftime('%Y%m%d-%H%M%S')}"
    where, counter = folder or result.parent, 1
    while (where / f"{stem}.csv").exists() or (where / f"{stem}-input.csv").exists():
        counter += 1
        stem = f"{result.stem}-retry-{now.strftime('%Y%m%d-%H%M%S')}-{counter}"
    return where / f"{stem}-input.csv", where / f"{stem}.csv"


def earlier_options(result: Path) -> dict[str, str] | None:
    """The options a resume checks, as the earlier run's journal recorded them, if it reads."""
    try:
        return options_of(read_meta(journal_path(result)))
    except (ReadError, OSError, ValueError):
        return None
