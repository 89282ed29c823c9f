"""The importable core: one call runs reader -> chunker -> sender -> verify -> journal -> writer.

from batch_revoke.job import RunConfig, run_job
report = run_job(RunConfig(Path("file.csv"), base_url=..., credentials=...))
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO

import httpx

from batch_revoke.answers import NOT_PRESENT_CODES, sent_blind
from batch_revoke.chunker import Planner
from batch_revoke.client import (
    NO_CREDENTIALS_FIX,
    Authenticator,
    CapillaryClient,
    Credentials,
    check_base_url,
)
from batch_revoke.errors import ConfigError, InputError, RunInProgress, StorageError
from batch_revoke.interrupts import Finishing, Interrupts, raising_interrupts
from batch_revoke.journal import (
    JOURNAL_SUFFIX,
    Journal,
    JournalIdentity,
    RunOnDisk,
    find_journal,
    in_use,
    input_copy_path,
    journal_path,
    run_at,
    runs_in,
)
from batch_revoke.model import (
    MAX_BATCH_SIZE,
    Batch,
    Endpoint,
    ErrorCode,
    ExitStatus,
    IdentifierType,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
    Tally,
    id_key,
)
from batch_revoke.pacing import Pacer, RateLimit, Sleep
from batch_revoke.reader import REQUIRED_FIELDS, header, no_records, records, scan
from batch_revoke.sender import RetryPolicy, Sender, Stop, Stopped, describe
from batch_revoke.spreadsheet import (
    first_sheet_name,
    is_legacy_workbook,
    is_workbook,
    legacy_workbook,
    workbook_to_csv,
)
from batch_revoke.verify import Unsettled, verify
from batch_revoke.writer import (
    DEFAULT_FOLDER,
    RESULT_COLUMNS,
    claim_output,
    input_stem,
    join_outcomes,
    mark_incomplete,
    result_cells,
    write_results,
)

log = logging.getLogger(__name__)

VERIFY_ROUNDS = 3  # read back, send again what was not applied, read back what is still unknown


@dataclass(frozen=True, slots=True)
class ErrorLimit:
    """--max-errors: a number of rows, or a share of the rows that have an outcome."""

    count: int | None = None
    percent: float | None = None
    MIN_ROWS_FOR_PERCENT = 100

    @classmethod
    def parse(cls, text: str) -> ErrorLimit:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
        if match and match.group(2) and 0 < float(match.group(1)) <= 100:
            return cls(percent=float(match.group(1)))
        if match and not match.group(2) and match.group(1).isdigit() and int(match.group(1)) > 0:
            return cls(count=int(match.group(1)))
        if match:
            problem = f"--max-errors {text!r} is below 1 row" + (
                " or above 100%" * bool(match.group(2))
            )
        else:
            problem = f"--max-errors {text!r} is not a number of rows or a percentage"
        raise ConfigError(
            problem, "e.g. --max-errors 50 or --max-errors 5%; leave it out for no limit"
        )

    def exceeded(self, errors: int, answered: int) -> bool:
        if self.count is not None:
            return errors >= self.count
        if self.percent is None or answered < self.MIN_ROWS_FOR_PERCENT:
            return False
        return 100 * errors / answered >= self.percent

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True)
class RunConfig:
    input_path: Path
    output_path: Path | None = None  # None: output/<input name>-results-<timestamp>.csv
    base_url: str = ""
    credentials: Credentials | None = None
    dry_run: bool = False
    batch_size: int = MAX_BATCH_SIZE
    concurrency: int = 4
    rate_limit: RateLimit | None = None
    timeout: float = 30.0
    max_attempts: int = 5
    identifier_type: IdentifierType = IdentifierType.ID
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress_every: float = 15.0  # seconds between progress reports
    show_progress: Callable[[Progress], None] | None = None  # a live display; None: log lines
    resume: bool = False  # continue the run recorded in the output's journal
    overwrite: bool = False  # replace an existing --output (and its journal)
    verify: bool = True  # settle unconfirmed rows by reading them back
    max_errors: ErrorLimit | None = None
    max_unanswered: int = 20  # stop after this many calls in a row got no answer; 0: never
    max_throttle_wait: float = 1800.0  # stop after this long of 429/503/521 answers in a row
    rate_window: float = 60.0  # the server's rate-limit window when --rate-limit is not given
    grace: float = 10.0  # seconds requests in flight get to finish after a stop
    host_label: str = ""  # what the journal records as the host, when base_url is not stable
    settle_result: bool = False  # input_path is an earlier result file: settle its unconfirmed
    input_name: Path | None = None  # the input as named to people, when input_path is a copy
    excel: bool = False  # the result file for Excel: a BOM, and no cell runs as a formula
    sheet: str = ""  # of an .xlsx input; "": the first
    # For schedulers: finish any run stopped earlier, then this input once (see _scheduled).
    auto_resume: bool = False
    output_dir: Path = DEFAULT_FOLDER  # where default-named result files go

    @property
    def shown_input(self) -> Path:
        return self.input_name or self.input_path

    def __post_init__(self) -> None:
        # Library callers may pass text where the CLI passes parsed values; anything else is
        # refused here, at construction, not half-way through a run.
        for name in ("input_path", "output_path", "output_dir"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Path(value))
            elif not (isinstance(value, Path) or (value is None and name == "output_path")):
                raise TypeError(f"RunConfig.{name} must be a path (str or Path), not {value!r}")
        if isinstance(self.rate_limit, str):
            object.__setattr__(self, "rate_limit", RateLimit.parse(self.rate_limit))
        elif self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise TypeError(f"RunConfig.rate_limit must be e.g. '100/min', not {self.rate_limit!r}")
        if isinstance(self.identifier_type, str) and not isinstance(
            self.identifier_type, IdentifierType
        ):
            parsed = IdentifierType.parse(self.identifier_type)
            if parsed is None:
                raise TypeError(f"RunConfig.identifier_type {self.identifier_type!r} is unknown")
            object.__setattr__(self, "identifier_type", parsed)

    def check_options(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"--batch-size {self.batch_size} is out of range", "use 1 to 20")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency {self.concurrency} is below 1", "use 1 or more")
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts {self.max_attempts} is below 1", "use 1 or more")
        if not self.max_throttle_wait > 0:
            raise ConfigError(
                f"--max-throttle-wait {self.max_throttle_wait} is not positive",
                "use seconds, e.g. 1800",
            )
        if not self.rate_window > 0:
            raise ConfigError(f"--rate-window {self.rate_window} is not positive", "e.g. 60")
        if not self.timeout > 0:
            raise ConfigError(f"--timeout {self.timeout} is not positive", "use seconds, e.g. 30")
        if self.output_path is not None and _same_file(self.output_path, self.input_path):
            raise ConfigError("--output is the input file", "pass another path for the results")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite both given", "pass one of them")
        if self.resume and self.dry_run:
            raise ConfigError("--resume and --dry-run both given", "a dry run has no journal")
        if self.auto_resume and self.settle_result:
            raise ConfigError("--auto-resume is for `run`", "leave it out of `verify`")
        if self.auto_resume and (self.resume or self.overwrite or self.dry_run):
            other = "--resume" if self.resume else "--overwrite" if self.overwrite else "--dry-run"
            raise ConfigError(
                f"--auto-resume and {other} both given",
                "--auto-resume resumes what is unfinished and starts what is new by itself",
            )

    def check_connection(self) -> None:
        if self.dry_run:
            return
        if not self.base_url:
            raise ConfigError(
                "no API host",
                "pass --cluster eu|in|apac2|us|cn, --base-url URL or set CAP_BASE_URL",
            )
        check_base_url(self.base_url)
        if self.credentials is None:
            raise ConfigError("no credentials", NO_CREDENTIALS_FIX)

    def identity_options(self) -> dict[str, str]:
        """The options a resume must repeat: they change what is sent, or where."""
        return {
            "host": self.host_label or self.base_url.rstrip("/"),
            "identifier_type": self.identifier_type.value,
            "batch_size": str(self.batch_size),
        }


@dataclass
class RunReport:
    output_path: Path
    tally: Tally
    elapsed: float
    dry_run: bool = False
    aborted: str = ""
    journal_path: Path | None = None
    incomplete: bool = False  # the result file still says INCOMPLETE; the journal has it all
    read_backs: int = 0
    throttled: int = 0  # calls answered 429
    pace: str = ""  # the pace the run settled on, for people
    estimate: str = ""  # a dry run's planned calls and, with --rate-limit, how long they take
    earlier: tuple[RunReport, ...] = ()  # --auto-resume: runs stopped earlier, finished first
    note: str = ""  # what a person should know of how this run came about
    finished_at: str = ""  # local time with its offset, ISO 8601

    @property
    def exit_status(self) -> ExitStatus:
        """This run's status, or an earlier run's (--auto-resume) when that is worse."""
        if self.aborted or self.incomplete:
            return ExitStatus.ABORTED
        done = Status.PLANNED if self.dry_run else Status.REVOKED
        status = ExitStatus.OK if self.tally.all_done(done) else ExitStatus.NOT_ALL_REVOKED
        return max([status, *(report.exit_status for report in self.earlier)])

    @property
    def resumable(self) -> bool:
        return self.journal_path is not None and self.exit_status is ExitStatus.ABORTED

    def to_dict(self, resume_command: str | None = None) -> dict[str, object]:
        """The summary for machines (`--summary-json`); the schema is in the README."""
        tally = self.tally
        return {
            "schema": "batch-revoke/summary/1",
            "exit_status": int(self.exit_status),
            "exit_meaning": self.exit_status.name.lower(),
            "dry_run": self.dry_run,
            "rows": {"total": tally.total}
            | {status.value: tally.by_status.get(status, 0) for status in Status},
            "errors": [
                {"status": status.value, "error_code": code, "rows": count}
                for (status, code), count in sorted(
                    tally.by_error.items(), key=lambda item: (-item[1], item[0][1])
                )
            ],
            "requests": {endpoint.value: count for endpoint, count in tally.requests.items()},
            "http_calls": tally.http_calls,
            "retries": tally.retries,
            "read_backs": self.read_backs,
            "throttled_calls": self.throttled,
            "pace": self.pace or None,
            "plan": self.estimate or None,
            "stopped": self.aborted or None,
            "incomplete": self.incomplete,
            "elapsed_seconds": round(self.elapsed, 3),
            "finished_at": self.finished_at or None,
            "output": str(self.output_path),
            "journal": str(self.journal_path) if self.journal_path else None,
            "resume_command": resume_command,
            "earlier_runs": [
                {
                    "output": str(report.output_path),
                    "exit_status": int(report.exit_status),
                    "rows": {"total": report.tally.total}
                    | {s.value: report.tally.by_status.get(s, 0) for s in Status},
                }
                for report in self.earlier
            ],
        }


def run_job(
    config: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    now: Callable[[], datetime] = datetime.now,
    handle_signals: bool = False,
) -> RunReport:
    """Run one file end to end. Raises InputError/ConfigError before anything is sent; after
    that, every problem is a row outcome in the result file, and the journal beside it keeps
    what a --resume needs. `handle_signals`: SIGTERM and SIGHUP stop the run like Ctrl-C.

    The input streams through: a structure pass first (so a broken file is refused before
    anything is sent), then records -> plan -> requests as they come, and the result file
    last, from the journal. Memory does not grow with the file."""
    config.check_options()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running here: the usual case
    else:
        raise ConfigError(
            "run_job was called inside a running event loop (Jupyter, an async framework)",
            "await run_job_async(config) instead",
        )
    started = time.monotonic()
    with _rare_collections(), _spooled(config) as config:
        if config.dry_run:
            report = _dry_run(config, now, handle_signals)
        elif config.auto_resume:
            report = _scheduled(config, transport, sleep, now, handle_signals)
        else:
            report = _run(config, transport, sleep, now, handle_signals)
    report.elapsed = time.monotonic() - started
    report.finished_at = now().astimezone().isoformat(timespec="seconds")
    return report


@contextlib.contextmanager
def _spooled(config: RunConfig) -> Iterator[RunConfig]:
    """A run reads its input three times (the structure pass, the stream, the result file), so
    standard input (`-`), a pipe or a device is first copied to a temporary file, deleted
    when the run ends. The copy keeps the input's name in file names and hints. A workbook's
    sheet is converted to CSV: by a dry run here, into a temporary file; by a run beside its
    result file, once that is claimed (`_open_workbook_run`)."""
    path = config.input_path
    if is_legacy_workbook(path) and path.is_file():
        raise legacy_workbook(path)
    if is_workbook(path) and path.is_file():
        if not config.dry_run:
            yield config
            return
        with _sheet_in_temp(config) as converted:
            yield converted
        return
    if config.sheet:
        raise ConfigError(f"--sheet {config.sheet!r} given for a file that is not .xlsx", "")
    if str(path) != "-" and (path.is_file() or not path.exists()):
        yield config
        return
    with tempfile.NamedTemporaryFile(prefix="batch-revoke-input-", suffix=".csv") as copy:
        try:
            if str(path) == "-":
                shutil.copyfileobj(sys.stdin.buffer, copy)
            else:
                with path.open("rb") as source:
                    shutil.copyfileobj(source, copy)
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
def _sheet_in_temp(config: RunConfig) -> Iterator[RunConfig]:
    """The sheet as CSV in a temporary file, removed when the block ends."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", prefix="batch-revoke-sheet-", suffix=".csv"
    ) as sheet:
        converted = replace(config, input_path=Path(sheet.name), input_name=config.input_path)
        _convert(converted, sheet)
        yield converted


def _convert(config: RunConfig, out: IO[str]) -> None:
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


async def run_job_async(
    config: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Callable[[], datetime] = datetime.now,
) -> RunReport:
    """`run_job` for callers already inside an event loop: the run gets a thread and an event
    loop of its own, so it neither blocks nor shares the caller's. Signals stay the caller's."""
    return await asyncio.to_thread(run_job, config, transport=transport, now=now)


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """A run makes a few short-lived objects per input row, none in reference cycles; the
    cycle collector's default (a pass every 700 allocations) cost a quarter of a dry run's
    time on a million rows. Collect far less often while the run lasts."""
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _run(
    config: RunConfig,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep,
    now: Callable[[], datetime],
    handle_signals: bool,
) -> RunReport:
    with raising_interrupts(handle_signals):  # until the run's own handlers take over
        if is_workbook(config.input_path) or config.auto_resume:
            source, output, journal = _open_copied_run(config, now)
        else:
            source = _Source.open(config, whole=True)
            config.check_connection()
            identity = JournalIdentity(source.sha256, config.identity_options())
            output, journal = _open_record(config, identity, now)
    planner = _planner(config, source)
    finished = journal.meta().get("state") == "finished"  # resumed after it finished
    try:
        run = _Run(journal, config.max_errors, planner, source.records)
        plan = _Plan(source, run)
        try:
            asyncio.run(_execute(config, plan, run, transport, sleep, handle_signals))
        except KeyboardInterrupt:  # before its handlers are in, or a library caller's Ctrl-C
            run.stop.request("interrupted")
        except Exception as exc:
            # Whatever it was, the journal holds every outcome so far: write the result file
            # and stop resumably, rather than leave it INCOMPLETE behind an internal error.
            log.debug("the run failed", exc_info=exc)
            run.stop.request(f"the run went wrong: {describe(exc)}; --resume goes on from here")
        with Finishing(handle_signals) as finishing:
            aborted = run.stop.reason
            if run.storage_error is not None:
                aborted = str(run.storage_error)
            elif finished:
                aborted = ""  # nothing was left to send: an interrupt stopped nothing
            counts = run.counts()
            with contextlib.suppress(StorageError, sqlite3.Error):
                journal.set_meta(counts=json.dumps(counts, sort_keys=True))
            report = RunReport(
                output,
                Tally(
                    requests=journal.requests_by_endpoint(),
                    http_calls=counts["http_calls"],
                    retries=counts["retries"],
                ),
                0.0,
                False,
                aborted,
                journal.path,
                read_backs=counts["read_backs"],
                throttled=counts["throttled"],
                pace=run.pacer.describe()
                if run.pacer and (run.pacer.pace or run.pacer.stray_429s)
                else "",
            )
            # A resume writes the result file as the run began it (--excel or not).
            excel = config.excel or journal.meta().get("excel") == "1"
            _finish(source, journal, report, finishing, excel=excel, finished=finished)
            if not aborted and not report.incomplete:
                journal.set_meta(state="finished")
                if source.path == input_copy_path(output):
                    source.path.unlink(missing_ok=True)  # the run's copy: nothing to resume
    finally:
        planner.close()
        journal.close()
    return report


def _scheduled(
    config: RunConfig,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep,
    now: Callable[[], datetime],
    handle_signals: bool,
) -> RunReport:
    """--auto-resume, for a scheduler that runs the same command every night: first every
    run in --output-dir that was stopped (killed, interrupted, throttled too long) is
    finished from its own copy of its input, whatever the input is now; then this input
    once: resumed if a run of it is unfinished, reported (nothing sent) if one finished,
    otherwise a new run with a dated result file, keeping a copy of its input."""

    def run(settings: RunConfig) -> RunReport:
        return _run(settings, transport, sleep, now, handle_signals)

    earlier: list[RunReport] = []
    if config.output_path is None:
        for stopped in runs_in(config.output_dir):
            if stopped.finished or not stopped.copy.is_file():
                continue
            if in_use(journal_path(stopped.output)):
                log.warning(
                    "the run begun %s (results %s) is still going in another process: left to it",
                    _when(stopped.created),
                    stopped.output,
                )
                continue
            log.warning(
                "finishing the run begun %s that stopped before it was done (input %s, results %s)",
                _when(stopped.created),
                stopped.input_name or "?",
                stopped.output,
            )
            report = run(
                replace(
                    config,
                    input_path=stopped.copy,
                    input_name=Path(stopped.input_name) if stopped.input_name else None,
                    output_path=stopped.output,
                    resume=True,
                    auto_resume=False,
                    sheet="",
                )
            )
            if report.exit_status is ExitStatus.ABORTED:
                # It stopped again: this input would meet the same wall. The next run
                # finishes both.
                return replace(report, earlier=tuple(earlier), note="this input was not begun")
            earlier.append(report)
    done = _this_input_run(config)
    if done is not None and in_use(journal_path(done.output)):
        raise RunInProgress(done.output)
    if done is None:
        report = run(config)
    else:
        report = run(replace(config, output_path=done.output, resume=True, auto_resume=False))
        if done.finished:
            report.note = (
                f"this input was revoked by the run begun {_when(done.created)}: nothing was "
                "sent, and its result file was written again"
            )
    report.earlier = tuple(earlier)
    return report


def _this_input_run(config: RunConfig) -> RunOnDisk | None:
    """The run of this very input (by content) that --auto-resume goes on with, if any."""
    sha256 = _input_sha256(config)
    if config.output_path is None:
        return find_journal(config.output_dir, input_stem(config.shown_input), sha256)
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


def _input_sha256(config: RunConfig) -> str:
    if is_workbook(config.input_path):
        with _sheet_in_temp(config) as converted:
            return _Source.open(converted, whole=True).sha256
    return _Source.open(config, whole=True).sha256


def _dry_run(config: RunConfig, now: Callable[[], datetime], handle_signals: bool) -> RunReport:
    """The same reading, checks and plan as a run, streamed straight into the result file:
    nothing is sent, so nothing needs a journal. A file found broken half-way is refused
    and its partial result removed."""
    with raising_interrupts(handle_signals):
        source = _Source.open(config, whole=False)
        output = _claim(config, now)
    planner = _planner(config, source)
    tally = Tally()
    planned_cells = {
        mode: result_cells(RowOutcome(0, Status.PLANNED, mode.endpoint)) for mode in Mode
    }

    def planned() -> Iterator[tuple[Record, list[str]]]:
        requests: dict[Endpoint, int] = dict.fromkeys(Endpoint, 0)
        planned = 0
        for chunk, _ in source.chunks():
            verdicts = planner.classify(chunk)
            rows = [v for v in verdicts if isinstance(v, Row)]
            covered = planner.covering(rows)  # sent later, and only if still needed
            for record, verdict in zip(chunk, verdicts, strict=True):
                if isinstance(verdict, Row):
                    planned += 1
                    if verdict.row not in covered and (batch := planner.place(verdict)):
                        requests[batch.endpoint] += 1
                    yield record, planned_cells[verdict.mode]
                else:
                    tally.add(verdict)
                    yield record, result_cells(verdict)
        if not tally.total and not planned:
            raise source.named(no_records(source.path))
        for batch in planner.finish():
            requests[batch.endpoint] += 1
        tally.by_status[Status.PLANNED] = planned
        tally.requests = {endpoint: count for endpoint, count in requests.items() if count}

    try:
        with raising_interrupts(handle_signals):
            write_results(output, source.columns, planned(), excel=config.excel)
    except BaseException:
        output.unlink(missing_ok=True)  # a dry run refused or interrupted leaves nothing
        raise
    finally:
        planner.close()
    calls = sum(tally.requests.values())
    return RunReport(output, tally, 0.0, True, estimate=_estimate(calls, config.rate_limit))


# --- the input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
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

    @classmethod
    def open(cls, config: RunConfig, *, whole: bool) -> _Source:
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
            if whole:
                found = scan(path)
                source = replace(
                    named,
                    columns=found.columns,
                    field_index=found.field_index,
                    records=found.records,
                    sha256=found.sha256,
                    stamp=found.stamp,
                )
            else:
                columns, field_index = header(path)
                source = replace(named, columns=columns, field_index=field_index)
        except InputError as exc:
            raise named.named(exc) from exc
        if not config.settle_result:
            return source
        width = len(source.columns) - len(RESULT_COLUMNS)
        if width < 2 or source.columns[width:] != RESULT_COLUMNS:
            raise named.named(
                InputError(
                    path,
                    "is not a batch-revoke result file (its last columns are not "
                    + ", ".join(RESULT_COLUMNS)
                    + ")",
                    "pass a result file written by `batch-revoke run`",
                )
            )
        field_index = {key: index for key, index in source.field_index.items() if index < width}
        columns = source.columns[:width]
        return replace(source, columns=columns, field_index=field_index, earlier=True)

    def chunks(self) -> Iterator[tuple[list[Record], list[RowOutcome] | None]]:
        """The records in chunks, with (for a result file) the outcome each one holds."""
        try:
            for chunk in records(self.path, self.stamp):
                if self.earlier:
                    split = [self._split(record) for record in chunk]
                    yield [record for record, _ in split], [outcome for _, outcome in split]
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

    def _split(self, record: Record) -> tuple[Record, RowOutcome]:
        """An earlier result's record: its input columns, and the outcome it holds."""
        width = len(self.columns)
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
            )
        except ValueError as exc:
            raise InputError(
                self.path,
                f"row {record.row} has result columns this version cannot read ({exc})",
                "pass the result file as batch-revoke wrote it",
            ) from exc
        return Record(record.row, record.values[:width], record.defect), outcome


def _planner(config: RunConfig, source: _Source) -> Planner:
    return Planner(
        source.field_index,
        config.identifier_type,
        config.batch_size,
        from_workbook=source.from_workbook,
    )


# --- opening the record ------------------------------------------------------------------


def _open_copied_run(
    config: RunConfig, now: Callable[[], datetime]
) -> tuple[_Source, Path, Journal]:
    """A run that reads its own copy of its input, beside the result file and journal
    (`input_copy_path`): a workbook's sheet as CSV, or (--auto-resume) the CSV itself. A kill
    -9 leaves it there, not in /tmp, and --resume reads that copy, so the rows and the
    journal's identity of the input are the ones the run began with, even when the input
    was replaced since. The copy is deleted when the run finishes."""
    workbook = config.input_path
    if config.resume and config.output_path is None:
        config = replace(config, output_path=_resumable_workbook_output(config))
    kept = input_copy_path(config.output_path) if config.resume and config.output_path else None
    if kept is not None and kept.exists():
        log.info("resuming from the copy of the sheet the run began with: %s", kept)
        if _mtime(workbook) > _mtime(kept):
            log.warning(
                "%s changed since the run began; the run goes on with the rows it began with "
                "(a new run without --resume reads the workbook as it is now)",
                workbook,
            )
        converted = replace(config, input_path=kept, input_name=workbook)
        source = _Source.open(converted, whole=True)
        config.check_connection()
        identity = JournalIdentity(source.sha256, config.identity_options())
        return source, *_open_record(converted, identity, now)
    # Converted beside where the result goes, then named after it once the run holds the
    # journal's lock: a run refused (or an --overwrite of a run still going) touches no copy.
    folder = config.output_path.parent if config.output_path else config.output_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".batch-revoke-sheet-", suffix=".csv")
    except OSError as exc:
        raise _cannot_start(StorageError(folder, exc.strerror or str(exc))) from exc
    partial = Path(name)
    converted = replace(config, input_path=partial, input_name=workbook)
    try:
        if is_workbook(workbook):
            with open(handle, "w", encoding="utf-8", newline="") as out:
                _convert(converted, out)
        else:
            with open(handle, "wb") as out, workbook.open("rb") as given:
                shutil.copyfileobj(given, out)
        source = _Source.open(converted, whole=True)
        config.check_connection()
        identity = JournalIdentity(source.sha256, config.identity_options())
        output, journal = _open_record(converted, identity, now)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    copy = input_copy_path(output)
    partial.replace(copy)  # same folder: a rename, so its size and time (the stamp) hold
    return replace(source, path=copy), output, journal


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _resumable_workbook_output(config: RunConfig) -> Path:
    """--resume of a workbook without --output: the run of this sheet's rows, found by
    the content of a fresh conversion (its own copy is then read, not this one)."""
    with _sheet_in_temp(config) as converted:
        source = _Source.open(converted, whole=True)
        return _resumable_output(
            converted, JournalIdentity(source.sha256, config.identity_options())
        )


def _open_record(
    config: RunConfig, identity: JournalIdentity, now: Callable[[], datetime]
) -> tuple[Path, Journal]:
    """The result file and its journal. A resume checks the journal before touching the file;
    a new run claims the file first, and leaves nothing behind if its journal cannot start."""
    label = "verified" if config.settle_result else "results"
    if config.resume:
        output = config.output_path or _resumable_output(config, identity)
        journal = Journal.resume(journal_path(output), identity)
        try:
            # A finished run's complete file stays until its rewrite replaces it whole.
            if journal.meta().get("state") != "finished":
                claim_output(output, config.shown_input, now(), replace_existing=True, label=label)
        except BaseException:
            journal.close()
            raise
        return output, journal
    output = _claim(config, now)
    try:
        journal = Journal.create(journal_path(output), identity)
        # What a later resume needs that is not the run's identity: the input's name (its
        # copy may be all that is left of it) and whether the result file is for Excel.
        journal.set_meta(input=str(config.shown_input), excel="1" if config.excel else "")
        return output, journal
    except KeyboardInterrupt:
        output.unlink(missing_ok=True)  # nothing was sent: leave nothing behind
        _remove_journal(journal_path(output))
        raise
    except (StorageError, ConfigError) as exc:
        if isinstance(exc, StorageError) or not journal_path(output).exists():
            output.unlink(missing_ok=True)  # nothing was sent: leave nothing behind
            _remove_journal(journal_path(output))
        raise _cannot_start(exc) if isinstance(exc, StorageError) else exc from exc


def _claim(config: RunConfig, now: Callable[[], datetime]) -> Path:
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
        )
    except StorageError as exc:
        raise _cannot_start(exc) from exc


def _cannot_start(exc: StorageError) -> ConfigError:
    return ConfigError(
        f"{exc}; nothing was sent",
        "free some space or fix the folder's permissions, or pass another --output",
    )


def _remove_journal(path: Path) -> None:
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        Path(name).unlink(missing_ok=True)


def _resumable_output(config: RunConfig, identity: JournalIdentity) -> Path:
    """--resume without --output: the newest run in --output-dir of this very file, when it
    has not finished (resuming a finished run is asked for by naming it with -o)."""
    folder = config.output_dir
    found = find_journal(folder, input_stem(config.shown_input), identity.input_sha256)
    if found is None:
        raise ConfigError(
            f"no journal of a run of {config.shown_input} in {folder}/",
            "pass the run's result file with --output (its journal is beside it)",
        )
    if found.finished:
        raise ConfigError(
            f"the newest run of {config.shown_input} in {folder}/ finished "
            f"({_when(found.created)}; results {found.output}): there is nothing to resume",
            f"to write its result file again pass -o {found.output} --resume; to revoke the "
            "file again, leave out --resume",
        )
    log.info("resuming the run begun %s, results %s", _when(found.created), found.output)
    return found.output


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


# --- planning ----------------------------------------------------------------------------


class _Plan:
    """The input streamed into requests: each chunk's verdicts go to the journal, its rows
    into batches as they fill, and aside what must wait: rows to read back (sent by an
    earlier run with no definite answer), rows waiting for the customers row that covers
    them. A resume skips settled rows. The batches are made as the sender asks for them, so
    the file is read only as fast as requests go out."""

    def __init__(self, source: _Source, run: _Run) -> None:
        self.source = source
        self.run = run
        self.journal = run.journal
        self.planner = run.planner
        self.deferred: dict[int, list[Row]] = {}  # covering row -> the rows waiting for it
        self._unknown: list[tuple[Row, RowOutcome | None]] = []

    def batches(self) -> Iterator[Batch]:
        if self.journal.meta().get("state") == "finished":
            return  # resuming a finished run: the result file is rewritten, nothing sent
        in_flight = self.journal.in_flight()
        try:
            for records, earlier in self.source.chunks():
                if self.run.stop.requested:
                    return  # what is not planned is not sent, and --resume sends it
                yield from self._chunk(records, earlier, in_flight)
        except (InputError, StorageError) as exc:  # the journal is intact: --resume goes on
            self.run.stop.request(str(exc))
            return
        yield from self.planner.finish()

    def unsettled(self) -> list[Unsettled]:
        """The rows to read back, with when their latest request left."""
        items, self._unknown = self._unknown, []
        sent_at = self.journal.last_sent(row.row for row, _ in items)
        return [Unsettled(row, previous, sent_at.get(row.row)) for row, previous in items]

    def _chunk(
        self, records: list[Record], earlier: list[RowOutcome] | None, in_flight: dict[int, float]
    ) -> Iterator[Batch]:
        verdicts = self.planner.classify(records)
        known = self.journal.outcomes_between(records[0].row, records[-1].row)
        if earlier is not None:  # `verify`: the result file's outcomes are the starting point
            new = [outcome for outcome in earlier if outcome.row not in known]
            self.run.record(new)
            known.update((outcome.row, outcome) for outcome in new)
        decided = [v for v in verdicts if isinstance(v, RowOutcome)]
        kept = {v.row for v in decided if v.row in known and known[v.row].settled}
        for number in kept:
            self.run.kept(known[number])  # an earlier session's verdicts stand
        self.run.record(v for v in decided if v.row not in kept)
        rows = [v for v in verdicts if isinstance(v, Row)]
        covered = self.planner.covering(rows)
        for row in rows:
            outcome = known.get(row.row)
            if outcome is not None and outcome.settled:
                self.run.kept(outcome)
            elif row.row in in_flight or (outcome and outcome.status is Status.UNCONFIRMED):
                self._unknown.append((row, outcome))
            elif earlier is not None:
                continue  # `verify` of a result file touches its unconfirmed rows only
            elif (first := covered.get(row.row)) is not None:
                self.deferred.setdefault(first, []).append(row)
            elif (batch := self.planner.place(row)) is not None:
                yield batch


def _estimate(calls: int, limit: RateLimit | None) -> str:
    """ "1,204 calls: about 12 min at 100/min": under a rate limit, time is calls."""
    text = f"{calls:,} calls"
    if limit is None:
        return f"{text} (pass --rate-limit for how long they take)"
    seconds = calls / limit.count * limit.period
    took = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{math.ceil(seconds / 60)} min"
    return f"{text}: about {took} at {limit}"


# --- the run's stages --------------------------------------------------------------------


class _Run:
    """The stages after the sender: outcomes go to the journal, the run's counts, and the
    early-stop check. It owns the counts the summary and progress line show."""

    def __init__(
        self, journal: Journal, max_errors: ErrorLimit | None, planner: Planner, rows: int
    ) -> None:
        self.journal = journal
        self.max_errors = max_errors
        self.planner = planner
        self.rows = rows  # in the input
        self.rows_done = 0  # with an outcome (kept from an earlier session, or new)
        self.by_status: dict[Status, int] = {}  # the same, per status
        self.stop = Stop()
        self.answered_rows = 0
        self.error_rows = 0
        self.read_backs = 0  # calls of this session's read-backs
        # The whole run counts every session: the calls of the earlier ones, as the journal
        # last recorded them, and of the requests it holds.
        self.earlier = journal.counts()
        self.earlier_requests = sum(journal.requests_by_endpoint().values())
        self.storage_error: StorageError | None = None
        self.pacer: Pacer | None = None
        self.sender: Sender | None = None
        self.unconfirmed: list[Unsettled] = []  # to read back after the sends
        self.blind: dict[int, bool] = {}  # rows sent again without a read-back
        self._sent_at: dict[int, float] = {}
        self._checked = 0.0  # when the journal was last seen in its folder

    # Recorder, for the sender

    def sending(self, batch: Batch) -> None:
        if not self._safely(self.journal.sending, batch):
            raise Stopped  # no durable intent, no request
        self._sent_at[batch.number] = time.time()

    def nothing_done(self, batch: Batch, nothing: bool) -> None:
        if not self._safely(self.journal.nothing_done, batch, nothing) and not nothing:
            raise Stopped  # no durable "may be applied", no attempt

    def answered(self, batch: Batch, outcomes: list[RowOutcome]) -> None:
        sent_at = self._sent_at.pop(batch.number, None)
        rows = {row.row: row for row in batch.rows}
        if batch.mode is Mode.ISSUALS:
            outcomes = [self._raced(rows[o.row], o) for o in outcomes]
        if self.blind:
            outcomes = [
                sent_blind(o, rows[o.row]) if self.blind.pop(o.row, False) else o for o in outcomes
            ]
        if not self._safely(self.journal.answered, batch, outcomes, self.counts()):
            return
        for outcome in outcomes:
            if outcome.status is Status.UNCONFIRMED:
                self.unconfirmed.append(Unsettled(rows[outcome.row], outcome, sent_at))
        self._count(outcomes)

    def abandoned(self, batch: Batch) -> None:
        self._sent_at.pop(batch.number, None)
        self._safely(self.journal.abandoned, batch)

    def _raced(self, row: Row, outcome: RowOutcome) -> RowOutcome:
        """A revokeIssuals row told its enrolment is not there, when a customers row later in
        the file (so not waited for) may have revoked it first: revoked through that row when
        its answer lists the enrolment, unknown (read back) while that answer is not in."""
        if outcome.status is not Status.FAILED or outcome.error_code not in NOT_PRESENT_CODES:
            return outcome
        later = self.planner.later_customers_row(row)
        if later is None:
            return outcome
        covering = self.journal.outcome(later)
        if covering is not None and covering.settled:
            return _through(row, later, covering) or outcome
        return replace(
            outcome,
            status=Status.UNCONFIRMED,
            error_message=f"{outcome.error_message}; row {later}, which revokes every enrolment "
            "of this customer for this badge, was sent at the same time and may have revoked "
            "it first",
        )

    # the rest of the run

    def counts(self) -> dict[str, int]:
        """The whole run's calls: the earlier sessions' and this one's."""
        sender, pacer = self.sender, self.pacer
        now = {
            "http_calls": sender.http_calls if sender else 0,
            "retries": sender.retries if sender else 0,
            "read_backs": self.read_backs,
            "throttled": pacer.throttled_calls if pacer else 0,
        }
        return {key: self.earlier.get(key, 0) + value for key, value in now.items()}

    def kept(self, outcome: RowOutcome) -> None:
        """An earlier session's outcome that stands."""
        self.rows_done += 1
        self.by_status[outcome.status] = self.by_status.get(outcome.status, 0) + 1

    def record(self, outcomes: Iterable[RowOutcome]) -> None:
        listed = list(outcomes)
        if self._safely(self.journal.record, listed):
            self._count(listed)

    def _count(self, outcomes: list[RowOutcome]) -> None:
        self.rows_done += len(outcomes)
        for outcome in outcomes:
            self.by_status[outcome.status] = self.by_status.get(outcome.status, 0) + 1
            if outcome.status in (Status.REVOKED, Status.FAILED, Status.UNCONFIRMED):
                self.answered_rows += 1
                self.error_rows += outcome.status is not Status.REVOKED
        if self.max_errors is not None and self.max_errors.exceeded(
            self.error_rows, self.answered_rows
        ):
            self.stop.request(
                f"--max-errors {self.max_errors} reached: {self.error_rows} of "
                f"{self.answered_rows} rows sent were not revoked"
            )

    def _safely(self, write: Callable[..., None], *args: object) -> bool:
        """A journal write; when it fails the run stops, and what was written stays valid."""
        if self.storage_error is not None:
            return False
        try:
            self._check_in_place()
            write(*args)
        except StorageError as exc:
            self.storage_error = exc
            self.stop.request(str(exc))
            return False
        return True

    def _check_in_place(self) -> None:
        """A journal whose folder was deleted or moved is still written through its open
        file, but nothing would be left to resume from: stop, and restore it at the end."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        if self.journal.missing():
            assert self.journal.path is not None
            raise StorageError(
                self.journal.path, "the journal disappeared (was its folder deleted or moved?)"
            )


# --- sending -----------------------------------------------------------------------------


async def _execute(
    config: RunConfig,
    plan: _Plan,
    run: _Run,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep,
    handle_signals: bool,
) -> None:
    assert config.credentials is not None
    limits = httpx.Limits(
        max_connections=config.concurrency, max_keepalive_connections=config.concurrency
    )
    async with httpx.AsyncClient(
        base_url=check_base_url(config.base_url),
        timeout=httpx.Timeout(config.timeout),
        limits=limits,
        transport=transport,
        headers={"User-Agent": "batch-revoke"},
    ) as http:
        client = CapillaryClient(http, Authenticator(config.credentials))
        policy = replace(
            config.retry,
            max_attempts=config.max_attempts,
            max_throttle_wait=config.max_throttle_wait,
        )
        pacer = Pacer(
            config.rate_limit,
            config.rate_window,
            max_retry_after=policy.max_retry_after,
            sleep=sleep,
        )
        sender = Sender(
            client, policy, config.concurrency, pacer, sleep, run.stop, config.max_unanswered
        )
        run.pacer, run.sender = pacer, sender
        log.info(
            "sending %d rows to %s, %d requests at a time%s",
            run.rows,
            config.base_url,
            config.concurrency,
            f", at most {config.rate_limit}" if config.rate_limit else "",
        )
        rounds = asyncio.create_task(_rounds(config, plan, run, sender))
        progress = asyncio.create_task(
            _report_progress(sender, run, config.progress_every, config.show_progress)
        )
        interrupts = Interrupts(run.stop, rounds, config.grace)
        if handle_signals:
            interrupts.install()
        try:
            await rounds
        except asyncio.CancelledError:
            if not interrupts.cancelled:
                raise
        finally:
            interrupts.remove()
            progress.cancel()


async def _rounds(config: RunConfig, plan: _Plan, run: _Run, sender: Sender) -> None:
    """Send the input as it is planned; then read back what is unknown, send again what was
    not applied, and release rows that waited for a row covering them. A few rounds at most:
    each is rarer than the last."""
    try:
        await sender.send_all(plan.batches(), run)
        run.unconfirmed.extend(plan.unsettled())
        for _ in range(VERIFY_ROUNDS):
            if run.stop.requested:
                return
            again = _release_deferred(plan, run)
            if run.unconfirmed:
                again += await _read_back(config, run, sender)
                again += _release_deferred(plan, run)  # the read-back may settle a covering row
            if not again or run.stop.requested:
                break
            await sender.send_all(_batches(run.planner, again), run)
        if not run.stop.requested:
            _give_up_deferred(plan, run)
    finally:
        if run.stop.requested:
            # Rows whose broader row did revoke their enrolment say so even when the run
            # stopped; the others were not sent, and --resume sends them.
            _release_deferred(plan, run)


_NOT_READ_BACK = "not read back (--no-verify; `batch-revoke verify RESULT.csv` reads it back)"


async def _read_back(config: RunConfig, run: _Run, sender: Sender) -> list[Row]:
    items, run.unconfirmed = run.unconfirmed, []
    if not config.verify:
        run.record(
            replace(o, error_message=f"{o.error_message}; {_NOT_READ_BACK}")
            if (o := item.previous) is not None
            else RowOutcome(
                item.row.row,
                Status.UNCONFIRMED,
                item.row.mode.endpoint,
                ErrorCode.RUN_ABORTED,
                f"in flight when an earlier run stopped; {_NOT_READ_BACK}",
            )
            for item in items
            if item.previous is None or "--no-verify" not in item.previous.error_message
        )
        return []
    calls = sender.http_calls
    found = await verify(items, sender)
    run.read_backs += sender.http_calls - calls
    run.record(found.outcomes)
    run.blind.update(dict.fromkeys((row.row for row in found.blind), True))
    read = found.read
    if read:
        revoked = sum(o.status is Status.REVOKED for o in found.outcomes)
        left = len(items) - len(found.outcomes) - len(found.resend) - len(found.blind)
        log.info(
            "read back %d rows: %d revoked, %d not applied (sent again), %d still unknown%s",
            read,
            revoked,
            len(found.resend),
            read - revoked - len(found.resend),
            f"; {left} not read back (the run stopped)" if left else "",
        )
    return found.resend + found.blind


def _batches(planner: Planner, rows: list[Row]) -> list[Batch]:
    batches = [batch for row in rows if (batch := planner.place(row)) is not None]
    return batches + list(planner.finish())


def _through(row: Row, first: int, covering: RowOutcome) -> RowOutcome | None:
    """Revoked through the customers row `first`, when its answer lists this enrolment."""
    if id_key(row.issue_id) not in {id_key(i) for i in covering.issued_ids}:
        return None
    return RowOutcome(
        row.row,
        Status.REVOKED,
        Endpoint.REVOKE_ISSUE,
        "",
        f"revoked through row {first}, which revoked every enrolment of this customer for "
        "this badge",
        (row.issue_id,),
        covering.http_status,
        0,
    )


def _release_deferred(plan: _Plan, run: _Run) -> list[Row]:
    """Rows whose covering row is settled: revoked through it, or sent on their own."""
    send: list[Row] = []
    for first in list(plan.deferred):
        covering = run.journal.outcome(first)
        if covering is None or not covering.settled:
            continue
        settled = []
        for row in plan.deferred.pop(first):
            through = _through(row, first, covering)
            if through is None:
                send.append(row)
            else:
                settled.append(through)
        run.record(settled)
    return send


def _give_up_deferred(plan: _Plan, run: _Run) -> None:
    for first, rows in plan.deferred.items():
        covering = run.journal.outcome(first)
        status = covering.status.value if covering else "no outcome"
        run.record(
            RowOutcome(
                row.row,
                Status.UNCONFIRMED,
                Endpoint.REVOKE_ISSUE,
                ErrorCode.COVERING_ROW_UNKNOWN,
                f"not sent: row {first} revokes every enrolment of this customer for this "
                f"badge and its outcome is {status}, so this enrolment may be revoked already",
            )
            for row in rows
        )
    plan.deferred.clear()


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, for a live display or a log line."""

    rows_done: int  # rows with an outcome
    rows: int  # in the input
    by_status: dict[Status, int]  # outcomes this session (revoked, failed, unconfirmed, …)
    requests: int  # answered
    calls_per_second: float  # over the session so far
    retries: int
    throttled: int
    pace: str  # the pace the run settled on, for people
    seconds_left: float | None  # None while unknown

    def line(self) -> str:
        left = "?" if self.seconds_left is None else f"{self.seconds_left:.0f}s"
        share = 100 * self.rows_done / self.rows if self.rows else 100
        counts = ", ".join(f"{count} {status}" for status, count in self.by_status.items())
        return (
            f"progress: {self.rows_done} of {self.rows} rows have an outcome ({share:.0f}%)"
            f"{': ' + counts if counts else ''}; {self.requests} requests, "
            f"{self.calls_per_second:.1f} calls/s, {self.retries} retries, {self.throttled} "
            f"throttled, {self.pace}; about {left} left"
        )


async def _report_progress(
    sender: Sender, run: _Run, every: float, show: Callable[[Progress], None] | None
) -> None:
    """Every `every` seconds, where the run stands: to `show` (a live display), or as a plain
    log line, so a long run is never silent (stderr may be a log file)."""
    started, done_before = time.monotonic(), run.rows_done
    while True:
        await asyncio.sleep(every)
        done = run.rows_done
        elapsed = time.monotonic() - started
        rate = (done - done_before) / elapsed
        counts = run.counts()
        progress = Progress(
            done,
            run.rows,
            dict(run.by_status),
            run.earlier_requests + sender.batches_done,
            sender.http_calls / elapsed,
            counts["retries"],
            counts["throttled"],
            sender.pacer.describe(),
            (run.rows - done) / rate if rate > 0 else None,
        )
        if show is None:
            log.info("%s", progress.line(), extra={"event": "progress"})
        else:
            show(progress)


# --- the result file ---------------------------------------------------------------------


def _finish(
    source: _Source,
    journal: Journal,
    report: RunReport,
    finishing: Finishing,
    *,
    excel: bool,
    finished: bool = False,
) -> None:
    """Write the result file: the input re-read, joined with the journal. One more interrupt
    here is noted and the file still written; the next one stops at once and leaves the file
    marked INCOMPLETE. `finished`: the run had finished before; its complete file is only
    replaced whole, so an interrupt leaves it as it was, and the run stays finished."""
    reason = f"not sent: {report.aborted or 'the run ended before it was sent'}"

    def joined(records: Iterable[Record]) -> Iterator[tuple[Record, list[str]]]:
        report.tally = Tally(
            requests=report.tally.requests,
            http_calls=report.tally.http_calls,
            retries=report.tally.retries,
            duplicates_pending=journal.duplicates_not_revoked(),
        )
        for record, outcome in join_outcomes(
            records, journal.outcomes(), journal.in_flight(), reason
        ):
            report.tally.add(outcome)
            yield record, result_cells(outcome)

    try:
        with finishing.writing():
            if journal.missing():
                journal.restore()
                log.warning("the journal was gone from its folder: restored at %s", journal.path)
            write_results(
                report.output_path,
                source.columns,
                joined(source.just_records()),
                excel=excel,
            )
    except (KeyboardInterrupt, Exception) as exc:
        if finished and isinstance(exc, KeyboardInterrupt):
            log.warning("interrupted: %s stays as it was, complete", report.output_path)
            for _ in joined(Record(row, ()) for row in range(1, source.records + 1)):
                pass  # the counts, from the journal
            return
        report.incomplete = True
        if isinstance(exc, KeyboardInterrupt):
            report.aborted = report.aborted or "interrupted while writing the result file"
        elif isinstance(exc, StorageError | InputError):
            report.aborted = report.aborted or str(exc)
        else:
            log.debug("writing the result file failed", exc_info=exc)
            report.aborted = f"writing the result file went wrong: {describe(exc)}" + (
                f" (after: {report.aborted})" if report.aborted else ""
            )
        if not isinstance(exc, StorageError | InputError):
            with contextlib.suppress(StorageError):
                # The run's own copy of its input, when it has one, finishes it surely.
                copy = input_copy_path(report.output_path)
                mark_incomplete(report.output_path, copy if source.path == copy else source.shown)
        # The counts still tell what happened, from the journal, without the file.
        with contextlib.suppress(Exception):
            for _ in joined(Record(row, ()) for row in range(1, source.records + 1)):
                pass


def _same_file(a: Path, b: Path) -> bool:
    """The same file by path, symlink or hard link."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False
