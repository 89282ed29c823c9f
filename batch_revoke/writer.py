"""Outcomes -> the result CSV, in input order, written as soon as each row's turn comes; and
the human summary."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

from batch_revoke.errors import ConfigError
from batch_revoke.model import Endpoint, Record, RowOutcome, Status, Tally

RESULT_COLUMNS = (
    "row",
    "endpoint",
    "status",
    "error_code",
    "error_message",
    "issued_ids",
    "http_status",
    "attempts",
)
STATUS_ORDER = tuple(Status)


def default_output_path(input_path: Path, now: datetime, folder: Path = Path("output")) -> Path:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    candidate = folder / f"{input_path.stem}-results-{stamp}.csv"
    counter = 2
    while candidate.exists():  # two runs in the same second must not overwrite each other
        candidate = folder / f"{input_path.stem}-results-{stamp}-{counter}.csv"
        counter += 1
    return candidate


def result_header(input_columns: Iterable[str]) -> list[str]:
    """Input columns first, verbatim; a name that clashes with a result column (a result file
    fed back in) is kept as `input_<name>` so neither is lost."""
    taken = set(RESULT_COLUMNS)
    header = []
    for name in input_columns:
        while name in taken:
            name = f"input_{name}"
        taken.add(name)
        header.append(name)
    return header + list(RESULT_COLUMNS)


class ResultWriter:
    """Takes records in input order and outcomes in any order; writes each row once both are
    known and every earlier row is written, so memory holds only the rows still in flight."""

    def __init__(self, path: Path, input_columns: tuple[str, ...]) -> None:
        self.path = path
        self.tally = Tally()
        self._width = len(input_columns)
        self._records: dict[int, Record] = {}
        self._outcomes: dict[int, RowOutcome] = {}
        self._next_row = 1
        self._last_expected = 0
        if path.is_dir():
            raise ConfigError(f"--output {path} is a directory", "pass a file name")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO = path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise ConfigError(
                f"cannot write the result file {path} ({exc.strerror})", "pass another --output"
            ) from exc
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(result_header(input_columns))

    def expect(self, record: Record) -> None:
        self._records[record.row] = record
        self._last_expected = max(self._last_expected, record.row)
        self._drain()

    def add(self, outcomes: Iterable[RowOutcome]) -> None:
        for outcome in outcomes:
            if outcome.row in self._outcomes or outcome.row < self._next_row:
                raise AssertionError(f"row {outcome.row} got two outcomes")
            self._outcomes[outcome.row] = outcome
            self.tally.add(outcome)
        self._drain()

    @property
    def missing(self) -> list[int]:
        """Expected rows that have no outcome yet."""
        return [row for row in self._records if row not in self._outcomes]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _drain(self) -> None:
        while self._next_row in self._outcomes and self._next_row in self._records:
            record = self._records.pop(self._next_row)
            outcome = self._outcomes.pop(self._next_row)
            self._csv.writerow(list(record.values) + _result_cells(outcome))
            self._next_row += 1
        self._file.flush()


def _result_cells(outcome: RowOutcome) -> list[str]:
    return [
        str(outcome.row),
        outcome.endpoint.value if outcome.endpoint else "",
        outcome.status.value,
        outcome.error_code,
        outcome.error_message,
        ";".join(outcome.issued_ids),
        "" if outcome.http_status is None else str(outcome.http_status),
        str(outcome.attempts),
    ]


def format_summary(
    tally: Tally, output: Path, elapsed: float, *, dry_run: bool = False, aborted: str = ""
) -> str:
    lines = [f"{'planned' if dry_run else 'processed'} {tally.total} rows in {elapsed:.1f}s"]
    for status in STATUS_ORDER:
        if tally.by_status.get(status):
            lines.append(f"  {status.value:<14}{tally.by_status[status]:>9}")
    if tally.by_error:
        lines.append("by error code:")
        for code, count in sorted(tally.by_error.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {code:<22}{count:>9}")
    if tally.requests:
        verb = "would send" if dry_run else "requests"
        parts = ", ".join(
            f"{endpoint.value} {tally.requests[endpoint]}"
            for endpoint in Endpoint
            if endpoint in tally.requests
        )
        if not dry_run:
            parts += f"; {tally.http_calls} HTTP calls, {tally.retries} of them retries"
        lines.append(f"{verb}: {parts}")
    if aborted:
        lines.append(f"ABORTED: {aborted}")
    lines.append(f"results: {output}")
    return "\n".join(lines)
