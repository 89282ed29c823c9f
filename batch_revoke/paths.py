"""Where a run's files go: its result file, claimed before anything is sent, and beside it
the journal and the run's own copy of its input. A dry run claims its result file here too;
opening the journal is outputs.py's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.writer import claim_output

JOURNAL_SUFFIX = ".journal"


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + JOURNAL_SUFFIX)


INPUT_COPY_SUFFIX = ".input.csv"


def input_copy_path(output: Path) -> Path:
    """Where a run keeps its own copy of its input, beside its result file and journal: a
    workbook's sheet as CSV, or (--auto-resume) the CSV it was given. A kill -9 leaves it
    with them, and a resume reads the very rows the run began with, even if the input was
    replaced since. Deleted when the run finishes."""
    return output.with_name(output.name + INPUT_COPY_SUFFIX)


def claim(config: RunConfig, now: Callable[[], datetime]) -> Path:
    """A new run's result file, claimed before anything is sent."""
    requested = config.output_path
    if (
        requested is not None
        and not (config.dry_run or config.overwrite)
        and journal_path(requested).exists()
    ):
        raise ConfigError(
            f"a journal of an earlier run is at {journal_path(requested)}",
            "pass --resume to continue that run, or --overwrite to start over",
        )
    if requested is not None and requested.name.endswith(
        (JOURNAL_SUFFIX, f"{JOURNAL_SUFFIX}-wal", f"{JOURNAL_SUFFIX}-shm")
    ):
        raise ConfigError(f"--output {requested} is a journal", "pass the result CSV's path")
    label = "verified" if config.settle_result else "results"
    try:
        return claim_output(
            requested,
            config.shown_input,
            now(),
            replace_existing=config.overwrite,
            folder=config.output_dir,
            label=label,
            # A scheduled run's input may be replaced tonight: its own copy finishes it.
            resume_from=input_copy_path if config.auto_resume else None,
            resume_args=config.resume_args(),
        )
    except StorageError as exc:
        raise cannot_start(exc) from exc


def cannot_start(exc: StorageError) -> ConfigError:
    return ConfigError(
        f"{exc}; nothing was sent",
        "free some space or fix the folder's permissions, or pass another --output",
    )
