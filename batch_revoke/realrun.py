"""A run that sends: open the input and its outputs, plan, send in rounds, settle, and write the
result file from the journal. `job.run_job` imports it only for a run that sends: HTTP, the
journal and the rounds load here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import httpx

from batch_revoke.answers.rows import as_the_run_left_them, join_outcomes
from batch_revoke.chunker import planner_for
from batch_revoke.config import RunConfig
from batch_revoke.customers import ByCustomer
from batch_revoke.errors import InputError, StorageError
from batch_revoke.interrupts import Finishing, raising_interrupts
from batch_revoke.journal import Journal, ReadError
from batch_revoke.lookup import Lookups
from batch_revoke.model import Counts
from batch_revoke.outputs import input_copy_path, open_run
from batch_revoke.plan import Plan
from batch_revoke.recorder import RunRecorder
from batch_revoke.report import RunReport
from batch_revoke.rounds import send_in_rounds
from batch_revoke.scheduled import run_scheduled
from batch_revoke.sender import describe
from batch_revoke.source import Source
from batch_revoke.stop import Sleep
from batch_revoke.writer import mark_incomplete, result_cells, write_results

log = logging.getLogger(__name__)


def real_run(
    config: RunConfig,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep | None,
    now: Callable[[], datetime],
    handle_signals: bool,
) -> RunReport:
    """The run of `config`, sending (see `job.run_job`); with --auto-resume, the runs of
    --output-dir that stopped are finished first. `sleep`: None waits with asyncio.sleep."""

    def run(settings: RunConfig) -> RunReport:
        return _run(settings, transport, sleep or asyncio.sleep, now, handle_signals)

    return run_scheduled(config, run) if config.auto_resume else run(config)


def _run(
    config: RunConfig,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep,
    now: Callable[[], datetime],
    handle_signals: bool,
) -> RunReport:
    with raising_interrupts(handle_signals):  # until the run's own handlers take over
        source, output, journal = open_run(config, now)
    planner = planner_for(config, source)
    customers = ByCustomer(planner, Lookups(journal, config.default_region))
    finished = journal.meta().get("state") == "finished"  # resumed after it finished
    try:
        run = RunRecorder(journal, config.max_errors, source.records, customers)
        plan = Plan(source, run, planner, customers)
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
            session = run.calls()
            with contextlib.suppress(StorageError, ReadError):
                journal.counted(session)
            # A finished run run again sent nothing: its calls are this invocation's, and the
            # run's own are told apart (a resume's count the whole run, as they add up). The
            # rows are counted once the result file is written.
            whole = replace(journal.earlier + session, requests=journal.counts().requests)
            pacer = run.pacer
            report = RunReport(
                output,
                replace(session, requests={}) if finished else whole,
                0.0,
                False,
                aborted,
                journal.path,
                pace=pacer.describe() if pacer and (pacer.pace or pacer.stray_429s) else "",
                finished_before=journal.earlier if finished else None,
            )
            _write_result_file(config, source, journal, report, finishing, finished)
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
    config: RunConfig,
    source: Source,
    journal: Journal,
    report: RunReport,
    finishing: Finishing,
    finished: bool,
) -> None:
    """Write the result file: the input re-read, joined with the journal. One more interrupt
    here is noted and the file still written; the next one stops at once and leaves the file
    marked INCOMPLETE. `finished`: the run had finished before; its complete file is only
    replaced whole, so an interrupt leaves it as it was, and the run stays finished."""
    reason = f"not sent: {report.aborted or 'the run ended before it was sent'}"
    # A resume writes the result file as the run began it (--excel or not).
    excel = config.excel or journal.meta().get("excel") == "1"
    try:
        with finishing.writing():
            if not journal.path.exists():
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
            _left_incomplete(source, report, exc, config.identity_options())
    # The counts, once, from the journal: what the result file says, or would say.
    with contextlib.suppress(StorageError, ReadError):
        rows = range(1, source.records + 1)
        outcomes = as_the_run_left_them(rows, journal.outcomes(), journal.in_flight(), reason)
        pending = journal.duplicates_not_revoked()
        report.tally = replace(report.tally, duplicates_pending=pending) + Counts.of(outcomes)
    past, first = journal.outcomes_past(source.records)
    if past:
        log.warning(
            "the journal has outcomes for %d rows past the end of the input (from row %d): "
            "the input changed during an earlier session; they are left out of the result "
            "file and kept in the journal",
            past,
            first,
        )


def _left_incomplete(
    source: Source, report: RunReport, exc: BaseException, resume_options: dict[str, str]
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
            mark_incomplete(report.output_path, shown, resume_options)
