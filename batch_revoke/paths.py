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


def input_copy_path(output: Path) -> Path:
    """Where a run keeps its own copy of its input (see `outputs.open_run`)."""
    return output.with_name(output.name + ".input.csv")


def claim(config: RunConfig, now: Callable[[], datetime]) -> Path:
    """A new run's result file, claimed before anything is sent."""
    requested = config.output_path
    if requested is not None:
        if not (config.dry_run or config.overwrite) and journal_path(requested).exists():
            raise ConfigError(
                f"a journal of an earlier run is at {journal_path(requested)}",
                "pass --resume to continue that run, or --overwrite to start over",
            )
        if requested.name.endswith(
            (JOURNAL_SUFFIX, f"{JOURNAL_SUFFIX}-wal", f"{JOURNAL_SUFFIX}-shm")
        ):
            raise ConfigError(f"--output {requested} is a journal", "pass the result CSV's path")
    try:
        return claim_output(
            requested,
            config.shown_input,
            now(),
            replace_existing=config.overwrite,
            folder=config.output_dir,
            label="verified" if config.input_is_result else "results",
            # A scheduled run's input may be replaced tonight: its own copy finishes it.
            resume_from=input_copy_path if config.auto_resume else None,
            resume_options=config.identity_options(),
        )
    except StorageError as exc:
        raise cannot_start(exc) from exc


def cannot_start(exc: StorageError) -> ConfigError:
    return ConfigError(
        f"{exc}; nothing was sent",
        "free some space or fix the folder's permissions, or pass another --output",
    )


def check_targets(config: RunConfig) -> None:
    """The run's own files are never written over: not the input by the result file, and
    none of them by the report. Raises ConfigError (nothing is written)."""
    if config.output_path is not None and _same_file(config.output_path, config.input_path):
        raise ConfigError("--output is the input file", "pass another path for the results")
    if config.report is not None:
        check_target(config.report, *filter(None, (config.input_path, config.output_path)))


def check_target(target: Path, *keep: Path) -> None:
    """A report replaces only a report: never the result file, its journal, an input, or any
    file that is not an HTML page. Raises ConfigError (nothing is written)."""
    files = [*keep, *(journal_path(path) for path in keep), *(input_copy_path(p) for p in keep)]
    names = {str(path.resolve()) for path in files}
    names |= {f"{name}-wal" for name in names} | {f"{name}-shm" for name in names}
    if str(target.resolve()) in names:
        raise ConfigError(
            f"{target} is the run's own file (its input, result file or journal): the report "
            "is not written over it",
            "pass a path ending in .html",
        )
    if target.is_dir():
        raise ConfigError(f"{target} is a folder", "pass a file path ending in .html")
    try:
        with target.open("rb") as handle:
            start = handle.read(512).lstrip().lower()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{target} cannot be read ({exc})", "pass another path") from exc
    if not start.startswith((b"<!doctype html", b"<html")):
        raise ConfigError(
            f"{target} exists and is not an HTML page: the report is not written over it",
            "pass a new path ending in .html",
        )


def _same_file(a: Path, b: Path) -> bool:
    """The same file by path, symlink or hard link."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False
