"""A run's files: its result file, claimed before anything is sent (a dry run's too), and
beside it the journal and the run's own copy of its input; opened together for a run that
sends (new, or the run to resume, found in a folder of runs), and nothing left behind when a
run cannot start. No run's own file is written over."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from batch_revoke.config import RunConfig
from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.source import Source, convert_sheet, input_sha256
from batch_revoke.spreadsheet import is_workbook
from batch_revoke.writer import claim_output, input_stem

if TYPE_CHECKING:
    from batch_revoke.journal import Journal

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".journal"


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + JOURNAL_SUFFIX)


def input_copy_path(output: Path) -> Path:
    """Where a run keeps its own copy of its input (see `open_run`)."""
    return output.with_name(output.name + ".input.csv")


@dataclass(frozen=True, slots=True)
class RunOnDisk:
    """A run found by its journal in a folder of results."""

    output: Path  # its result file
    input_sha256: str
    input_name: str  # the input as named when the run began ("" before this was recorded)
    finished: bool
    created: float
    stopping: bool  # its process was told to stop, and lets go of it soon

    @property
    def copy(self) -> Path:
        return input_copy_path(self.output)


def run_at(output: Path) -> RunOnDisk | None:
    """The run whose result file is `output`, read from its journal; None without one."""
    from batch_revoke.journal import ReadError, read_meta  # SQLite: never for a dry run

    path = journal_path(output)
    try:
        meta = read_meta(path)
        created = float(meta.get("created") or path.stat().st_mtime)
    except (ReadError, OSError, ValueError):
        return None  # not a journal, or one being created
    if (sha256 := meta.get("input_sha256")) is None:
        return None
    finished, stopping = (meta.get("state") == state for state in ("finished", "stopping"))
    return RunOnDisk(output, sha256, meta.get("input", ""), finished, created, stopping)


def runs_in(folder: Path, stem: str = "*") -> list[RunOnDisk]:
    """The runs with default result file names in `folder` (of inputs `stem`), oldest first."""
    found = (
        run_at(path.with_name(path.name.removesuffix(JOURNAL_SUFFIX)))
        for path in folder.glob(f"{stem}-results-*.csv{JOURNAL_SUFFIX}")
    )
    return sorted((run for run in found if run), key=lambda run: (run.created, str(run.output)))


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


def open_run(config: RunConfig, now: Callable[[], datetime]) -> tuple[Source, Path, Journal]:
    """The input read, the host checked, then the result file and journal opened. A
    workbook's sheet (as CSV), or with --auto-resume the CSV, is read from the run's own copy
    beside them, which a kill -9 leaves there (not in /tmp): --resume reads the rows the run
    began with, even when the input was replaced since."""
    given, read, partial = config.input_path, config, None
    if is_workbook(given) or config.auto_resume:
        if config.resume and config.output_path is None:
            config = replace(config, output_path=resumable_output(config, input_sha256(config)))
        kept = input_copy_path(config.output_path) if config.resume and config.output_path else None
        if kept is not None and kept.exists():
            log.info("resuming from the copy of the sheet the run began with: %s", kept)
            with contextlib.suppress(OSError):  # a workbook gone since has not changed
                if given.stat().st_mtime > kept.stat().st_mtime:
                    log.warning(
                        "%s changed since the run began; the run goes on with the rows it began "
                        "with (a new run without --resume reads the workbook as it is now)",
                        given,
                    )
            read = replace(config, input_path=kept, input_name=given)
        else:
            # Converted beside where the result goes, then named after it once the run holds
            # the journal's lock: a run refused (or an --overwrite of a run still going)
            # touches no copy.
            folder = config.output_path.parent if config.output_path else config.output_dir
            try:
                folder.mkdir(parents=True, exist_ok=True)
                handle, name = tempfile.mkstemp(
                    dir=folder, prefix=".batch-revoke-sheet-", suffix=".csv"
                )
            except OSError as exc:
                raise cannot_start(StorageError(folder, exc.strerror or str(exc))) from exc
            partial = Path(name)
            read = replace(config, input_path=partial, input_name=given)
    try:
        if partial is not None and is_workbook(given):
            with open(handle, "w", encoding="utf-8", newline="") as out:
                convert_sheet(read, out)
        elif partial is not None:
            with open(handle, "wb") as out, given.open("rb") as copied:
                shutil.copyfileobj(copied, out)
        source = Source.open(read, whole=True)
        config.check_connection()
        output, journal = _open_outputs(read, source.sha256, now)
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise
    if partial is None:
        return source, output, journal
    copy = input_copy_path(output)
    partial.replace(copy)  # same folder: a rename, so its size and time (the stamp) hold
    return replace(source, path=copy), output, journal


def _open_outputs(
    config: RunConfig, sha256: str, now: Callable[[], datetime]
) -> tuple[Path, Journal]:
    """A resume checks the journal before touching the result file; a new run claims it
    first, and leaves nothing behind if its journal cannot start."""
    from batch_revoke.journal import Journal, JournalIdentity  # SQLite: never for a dry run

    identity = JournalIdentity(sha256, config.identity_options())
    if config.resume:
        output = config.output_path or resumable_output(config, sha256)
        journal = Journal.resume(journal_path(output), identity)
        try:
            # A finished run's complete file stays until its rewrite replaces it whole.
            if journal.meta().get("state") != "finished":
                claim_output(
                    output,
                    config.shown_input,
                    now(),
                    replace_existing=True,
                    resume_options=identity.options,
                )
        except BaseException:
            journal.close()
            raise
        return output, journal
    output = claim(config, now)
    try:
        # What a later resume needs that is not the run's identity: the input's name (its
        # copy may be all that is left of it), whether the result file is for Excel, and
        # (`retry`) the earlier result file its rows come from, which its report names.
        excel = "1" if config.excel else ""
        retry_of = str(config.retry_of or "")
        meta = {"input": str(config.shown_input), "excel": excel, "retry_of": retry_of}
        return output, Journal.create(journal_path(output), identity, **meta)
    except (KeyboardInterrupt, StorageError, ConfigError) as exc:
        # Nothing was sent: nothing is left behind (but the journal of another run).
        if not isinstance(exc, ConfigError) or not journal_path(output).exists():
            output.unlink(missing_ok=True)
            for name in ("", "-wal", "-shm"):
                Path(f"{journal_path(output)}{name}").unlink(missing_ok=True)
        if isinstance(exc, StorageError):
            raise cannot_start(exc) from exc
        raise


def resumable_output(config: RunConfig, sha256: str) -> Path:
    """--resume without --output: the newest run in --output-dir of this very file, when it
    has not finished (resuming a finished run is asked for by naming it with -o)."""
    folder = config.output_dir
    found = this_input_run(config, sha256)
    if found is None:
        raise ConfigError(
            f"no journal of a run of {config.shown_input} in {folder}/",
            "pass the run's result file with --output (its journal is beside it)",
        )
    if found.finished:
        raise ConfigError(
            f"the newest run of {config.shown_input} in {folder}/ finished "
            f"({when(found.created)}; results {found.output}): there is nothing to resume",
            f"to write its result file again pass -o {found.output} --resume; to revoke the "
            "file again, leave out --resume",
        )
    log.info("resuming the run begun %s, results %s", when(found.created), found.output)
    return found.output


def when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


def this_input_run(config: RunConfig, sha256: str = "") -> RunOnDisk | None:
    """The run of this very input (by content): -o's, or the newest in --output-dir."""
    sha256 = sha256 or input_sha256(config)
    if config.output_path is None:
        runs = runs_in(config.output_dir, input_stem(config.shown_input))
        return next((run for run in reversed(runs) if run.input_sha256 == sha256), None)
    if not journal_path(config.output_path).exists():
        return None
    found = run_at(config.output_path)
    if found is None or found.input_sha256 != sha256:
        raise ConfigError(
            f"{journal_path(config.output_path)} is the journal of a run of another input",
            "for a job run on a schedule, leave out -o: each run's results get a dated name "
            "in --output-dir, and --auto-resume finds its own",
        )
    return found


def check_targets(config: RunConfig) -> None:
    """Neither the input by the result file (by path, symlink or hard link), nor any of the
    run's files by the report."""
    output, given = config.output_path, config.input_path
    with contextlib.suppress(OSError):
        if output is not None and (
            output.resolve() == given.resolve()
            or (output.exists() and given.exists() and output.samefile(given))
        ):
            raise ConfigError("--output is the input file", "pass another path for the results")
    if config.report is not None:
        check_target(config.report, *filter(None, (config.input_path, config.output_path)))


def check_target(target: Path, *keep: Path) -> None:
    """A report replaces only a report: never a run's own file, nor a file not HTML."""
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
