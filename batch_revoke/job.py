"""Orchestration, the importable core: open the input, claim the outputs, plan, send in rounds,
settle, finish. One call runs reader -> chunker -> plan -> sender -> recorder -> verify ->
journal -> writer.

from batch_revoke.job import RunConfig, run_job
report = run_job(RunConfig(Path("file.csv"), base_url=..., credentials=...))
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from batch_revoke.answers import as_the_run_left_them, join_outcomes
from batch_revoke.chunker import planner_for
from batch_revoke.config import SANDBOX_LABEL, ErrorLimit, RunConfig
from batch_revoke.credentials import BasicCredentials
from batch_revoke.customers import ByCustomer
from batch_revoke.dryrun import dry_run
from batch_revoke.errors import BatchRevokeError, ConfigError, InputError, StorageError
from batch_revoke.interrupts import Finishing, raising_interrupts
from batch_revoke.journal import Journal, JournalIdentity, input_copy_path
from batch_revoke.lookup import Lookups
from batch_revoke.model import Tally
from batch_revoke.outputs import open_copied_run, open_outputs
from batch_revoke.pacing import Sleep
from batch_revoke.plan import Plan
from batch_revoke.recorder import RunRecorder
from batch_revoke.report import Progress, RunReport
from batch_revoke.rounds import VERIFY_ROUNDS, send_in_rounds
from batch_revoke.scheduled import run_scheduled
from batch_revoke.sender import describe
from batch_revoke.source import Source, spooled
from batch_revoke.spreadsheet import is_workbook
from batch_revoke.writer import mark_incomplete, result_cells, write_results

if TYPE_CHECKING:  # the sandbox (aiohttp) loads only when a run asks for it
    from batch_revoke.sandbox import SandboxConfig

# Callers import the run's config and report from here too.
__all__ = [
    "VERIFY_ROUNDS",
    "ErrorLimit",
    "Progress",
    "RunConfig",
    "RunReport",
    "run_job",
    "run_job_async",
]

log = logging.getLogger(__name__)


def run_job(
    config: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    now: Callable[[], datetime] = datetime.now,
    handle_signals: bool = False,
    sandbox: SandboxConfig | None = None,
) -> RunReport:
    """Run one file end to end. Raises InputError/ConfigError before anything is sent; after
    that, every problem is a row outcome in the result file, and the journal beside it keeps
    what a --resume needs. `handle_signals`: SIGTERM and SIGHUP stop the run like Ctrl-C.

    The input streams through: a structure pass first (so a broken file is refused before
    anything is sent), then records -> plan -> requests as they come, and the result file
    last, from the journal. Memory does not grow with the file.

    `sandbox`: run against a local sandbox of the API started for this run (on a free
    loopback port, with its own credentials); a dry run starts none."""
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
    if sandbox is not None and not config.dry_run:
        if config.base_url or config.credentials is not None:
            raise ConfigError(
                "a sandbox run was also given a host or credentials", "leave them out"
            )
        from batch_revoke.sandbox import running_sandbox

        with running_sandbox(sandbox) as running:
            log.info("sandbox running on %s", running.base_url)
            local = replace(
                config,
                base_url=running.base_url,
                credentials=BasicCredentials(
                    running.credentials.username, running.credentials.password
                ),
                host_label=SANDBOX_LABEL,
            )
            return run_job(
                local, transport=transport, sleep=sleep, now=now, handle_signals=handle_signals
            )

    def run(settings: RunConfig) -> RunReport:
        return _run(settings, transport, sleep, now, handle_signals)

    started = time.monotonic()
    with _rare_collections(), spooled(config) as config:
        if config.dry_run:
            report = dry_run(config, now, handle_signals)
        elif config.auto_resume:
            report = run_scheduled(config, run)
        else:
            report = run(config)
    report.elapsed = time.monotonic() - started
    report.finished_at = now().astimezone().isoformat(timespec="seconds")
    if config.report is not None:
        _write_html(config, report, config.report)
    return report


def _write_html(config: RunConfig, report: RunReport, target: Path) -> None:
    """The HTML report of the run that just ended. The run's outcome is decided and its files
    are written: a report that cannot be written, or is interrupted, is only said."""
    from batch_revoke.html_report import write_report  # Jinja2: only when a report is asked

    settings = {"concurrency": str(config.concurrency)}
    if config.rate_limit is not None:
        settings["rate limit"] = str(config.rate_limit)
    try:
        report.html = write_report(report.output_path, target, report=report, settings=settings)
    except (BatchRevokeError, OSError, KeyboardInterrupt) as exc:
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        log.warning("the HTML report %s was not written: %s", target, why)


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
            source, output, journal = open_copied_run(config, now)
        else:
            source = Source.open(config, whole=True)
            config.check_connection()
            identity = JournalIdentity(source.sha256, config.identity_options())
            output, journal = open_outputs(config, identity, now)
    planner = planner_for(config, source)
    customers = ByCustomer(planner, Lookups(journal, config.default_region))
    finished = journal.meta().get("state") == "finished"  # resumed after it finished
    try:
        run = RunRecorder(journal, config.max_errors, planner, source.records, customers)
        plan = Plan(source, run, customers)
        try:
            asyncio.run(send_in_rounds(config, plan, run, transport, sleep, handle_signals))
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
                lookups=counts["lookups"],
                throttled=counts["throttled"],
                pace=run.pacer.describe()
                if run.pacer and (run.pacer.pace or run.pacer.stray_429s)
                else "",
            )
            # A resume writes the result file as the run began it (--excel or not).
            excel = config.excel or journal.meta().get("excel") == "1"
            _write_result_file(
                source,
                journal,
                report,
                finishing,
                excel=excel,
                finished=finished,
                resume_args=config.resume_args(),
            )
            if not aborted and not report.incomplete:
                journal.set_meta(state="finished")
                if source.path == input_copy_path(output):
                    source.path.unlink(missing_ok=True)  # the run's copy: nothing to resume
    finally:
        customers.close()
        planner.close()
        journal.close()
    return report


# --- the result file ---------------------------------------------------------------------


def _write_result_file(
    source: Source,
    journal: Journal,
    report: RunReport,
    finishing: Finishing,
    *,
    excel: bool,
    finished: bool = False,
    resume_args: list[str],
) -> None:
    """Write the result file: the input re-read, joined with the journal. One more interrupt
    here is noted and the file still written; the next one stops at once and leaves the file
    marked INCOMPLETE. `finished`: the run had finished before; its complete file is only
    replaced whole, so an interrupt leaves it as it was, and the run stays finished."""
    reason = f"not sent: {report.aborted or 'the run ended before it was sent'}"
    try:
        with finishing.writing():
            if journal.missing():
                journal.restore()
                log.warning("the journal was gone from its folder: restored at %s", journal.path)
            joined = join_outcomes(
                source.just_records(), journal.outcomes(), journal.in_flight(), reason
            )
            write_results(
                report.output_path,
                source.columns,
                ((record, result_cells(outcome)) for record, outcome in joined),
                excel=excel,
            )
    except (KeyboardInterrupt, Exception) as exc:
        if finished and isinstance(exc, KeyboardInterrupt):
            log.warning("interrupted: %s stays as it was, complete", report.output_path)
        else:
            _left_incomplete(source, report, exc, resume_args)
    # The counts, once, from the journal: what the result file says, or would say.
    with contextlib.suppress(StorageError, sqlite3.Error):
        report.tally = _final_tally(journal, source.records, reason, report.tally)
    past, first = journal.outcomes_past(source.records)
    if past:
        log.warning(
            "the journal has outcomes for %d rows past the end of the input (from row %d): "
            "the input changed during an earlier session; they are left out of the result "
            "file and kept in the journal",
            past,
            first,
        )


def _final_tally(journal: Journal, rows: int, not_sent: str, calls: Tally) -> Tally:
    tally = Tally(
        requests=calls.requests,
        http_calls=calls.http_calls,
        retries=calls.retries,
        duplicates_pending=journal.duplicates_not_revoked(),
    )
    outcomes = as_the_run_left_them(
        range(1, rows + 1), journal.outcomes(), journal.in_flight(), not_sent
    )
    for outcome in outcomes:
        tally.add(outcome)
    return tally


def _left_incomplete(
    source: Source, report: RunReport, exc: BaseException, resume_args: list[str]
) -> None:
    """The result file could not be written whole: the run is reported stopped, and the
    file, marked INCOMPLETE, says how to finish it."""
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
            shown = copy if source.path == copy else source.shown
            mark_incomplete(report.output_path, shown, resume_args)
