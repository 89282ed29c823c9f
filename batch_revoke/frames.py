"""A pandas DataFrame in, a DataFrame out (`pip install 'batch-revoke[pandas]'`, docs/python.md):
the frame is written as the run's input CSV, run as a CSV is, and the result file read back as
a frame. The only module that imports pandas, and only when called."""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError, InputError, StorageError
from batch_revoke.job import run_job
from batch_revoke.source import canonical
from batch_revoke.writer import INCOMPLETE, replace_file

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_ID_FIELDS = frozenset({"badgemetaid", "customerid", "issueid", "earnedbadgeid"})
# An id as Python writes a float: 62090013.0, 6.209e+07 (Excel writes 6.209E+07, which the
# run reports row by row, as it does in a CSV).
_FLOAT_TEXT = re.compile(r"-?\d+\.0|\d(?:\.\d+)?e[+-]\d+")


def revoke_frame(frame: pd.DataFrame, config: RunConfig, **run: Any) -> pd.DataFrame:
    """Revoke the frame's rows (written as CSV to `config.input_path`, run by `run_job` with
    `run`) and return the result file as a frame with the input's index, the run's summary in
    `attrs["report"]`. Called again with the same frame and config, it goes on with the run."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ConfigError(
            "revoke_frame was called inside a running event loop (Jupyter, an async framework)",
            "await revoke_frame_async(frame, config) instead",
        )
    _refuse_floats(frame)
    if config.input_path.suffix.lower() != ".csv":
        raise ConfigError(
            f"RunConfig.input_path {config.input_path} is where the frame is written as CSV",
            "name a .csv file",
        )
    kept = _write_csv(frame, config.input_path)
    if not (config.resume or config.overwrite or config.dry_run or config.auto_resume):
        config = replace(config, auto_resume=True)
    report = run_job(config, **run)
    if report.aborted:
        log.warning(
            "the run stopped (%s): call revoke_frame again with the same frame and config to "
            "finish it",
            report.aborted,
        )
    elif report.note:  # the same frame again, after its run finished
        log.warning("%s", report.note)
    # Blank rows are not records: they get blank results.
    result = read_result(report.output_path).set_axis(kept)
    result = result.reindex(range(len(frame)), fill_value="").set_axis(frame.index)
    result.attrs["report"] = report.to_dict()
    return result


async def revoke_frame_async(frame: pd.DataFrame, config: RunConfig, **run: Any) -> pd.DataFrame:
    """`revoke_frame` for callers inside an event loop (Jupyter), in a thread of its own."""
    return await asyncio.to_thread(revoke_frame, frame, config, **run)


def read_result(path: str | Path) -> pd.DataFrame:
    """A result file (or any CSV) as a frame of text: ids keep their leading zeros, blank
    cells are "" (never NaN). A result file still marked INCOMPLETE is refused."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "batch-revoke's DataFrame functions need pandas: pip install 'batch-revoke[pandas]'"
        ) from exc
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig") as handle:
            first = handle.readline()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})", "") from exc
    if first.startswith(INCOMPLETE):
        _, _, finish = first.strip().partition("to finish it: ")
        raise InputError(
            path,
            "the run has not finished writing its results",
            f"finish it: {finish}, or call revoke_frame again with the same frame and config",
        )
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _refuse_floats(frame: pd.DataFrame) -> None:
    """An id column pandas read as floats (a gap makes it float64), or such numbers made
    text again, has lost leading zeros and long ids' digits: refused."""
    for position, name in enumerate(frame.columns):
        if canonical(str(name)) not in _ID_FIELDS:
            continue
        column = frame.iloc[:, position]
        for label, value in column[column.notna()].items():
            if isinstance(value, float) or _FLOAT_TEXT.fullmatch(str(value)):
                raise ConfigError(
                    f"column {name!r} holds ids that pandas read as numbers ({value} at index "
                    f"{label}): leading zeros and long ids are lost",
                    "read the file with pd.read_csv(path, dtype=str, keep_default_na=False)",
                )


def _write_csv(frame: pd.DataFrame, path: Path) -> list[int]:
    """The frame as the run's input CSV (a missing value blank); returns the positions of
    the rows that are records (not blank)."""
    rows = frame.astype(object).where(frame.notna(), "").map(str).to_numpy().tolist()

    def write(handle: TextIO) -> None:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow([str(name) for name in frame.columns])
        out.writerows(rows)

    try:
        replace_file(path, write)
    except StorageError as exc:
        raise ConfigError(f"the frame cannot be written to {path} ({exc.__cause__})", "") from exc
    return [position for position, row in enumerate(rows) if any(v.strip() for v in row)]
