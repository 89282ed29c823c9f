"""A run that sends: open the input and its outputs, plan, send in rounds, settle, and write
the result file from the journal. `job.run_job` imports it only for a run that sends: HTTP and
the journal load here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx

from batch_revoke.answers.readbacks import InDoubt, not_read_back
from batch_revoke.answers.rows import as_the_run_left_them, join_outcomes
from batch_revoke.chunker import planner_for
from batch_revoke.client import CapillaryClient, auth_for
from batch_revoke.config import RunConfig
from batch_revoke.credentials import check_base_url
from batch_revoke.errors import InputError, StorageError
from batch_revoke.interrupts import Finishing, Interrupts, raising_interrupts
from batch_revoke.journal import Journal, ReadError
from batch_revoke.lookup import Lookups
from batch_revoke.model import Counts, Row, Status
from batch_revoke.outputs import input_copy_path, open_run
from batch_revoke.pacing import Pacer
from batch_revoke.plan import Plan
from batch_revoke.readback import read_back
from batch_revoke.recorder import RunRecorder
from batch_revoke.report import Progress, RunReport
from batch_revoke.sender import Sender, describe
from batch_revoke.source import Source
from batch_revoke.stop import Sleep
from batch_revoke.writer import mark_incomplete, outcome_parts, write_results

log = logging.getLogger(__name__)


def real_run(
    config: RunConfig,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep | None,
    now: Callable[[], datetime],
    handle_signals: bool,
) -> RunReport:
    """The run of `config`, sending (see `job.run_job`). `sleep`: None waits with asyncio.sleep."""
    with raising_interrupts(handle_signals):  # until the run's own handlers take over
        source, output, journal = open_run(config, now)
    lookups = Lookups(journal, config.default_region)
    run = RunRecorder(journal, config.max_errors, source.records, lookups)
    plan = Plan(source, run, planner_for(config, source))
    finished = journal.meta().get("state") == "finished"  # resumed after it finished
    try:
        try:
            asyncio.run(_send_in_rounds(config, plan, run, transport, sleep, handle_signals))
        except KeyboardInterrupt:  # before its handlers are in, or a library caller's Ctrl-C
            run.stop.request("interrupted")
        except Exception as exc:
            # Whatever it was, the journal holds every outcome so far: write the result file
            # and stop resumably, rather than leave it INCOMPLETE behind an internal error.
            log.debug("the run failed", exc_info=exc)
            run.stop.request(f"the run went wrong: {describe(exc)}; --resume goes on from here")
        with Finishing.handled(handle_signals) as finishing:
            aborted = run.stop.reason
            if run.storage_error is not None:
                aborted = str(run.storage_error)
            elif finished:
                aborted = ""  # nothing was left to send: an interrupt stopped nothing
            session = run.calls()
            with contextlib.suppress(StorageError, ReadError):
                journal.counted(session)
            reason = f"not sent: {aborted or 'the run ended before it was sent'}"
            aborted, incomplete = _write_result_file(
                config, source, journal, output, reason, finishing, finished, aborted
            )
            # A finished run run again sent nothing: its calls are this invocation's, and the
            # run's own are told apart (a resume's count the whole run, as they add up).
            whole = replace(journal.earlier + session, requests=journal.counts().requests)
            pacer = run.sender.pacer if run.sender else None
            report = RunReport(
                output,
                (replace(session, requests={}) if finished else whole)
                + _rows_counted(source, journal, reason),
                0.0,
                False,
                aborted,
                journal.path,
                incomplete=incomplete,
                pace=pacer.describe() if pacer and (pacer.pace or pacer.stray_429s) else "",
                finished_before=journal.earlier if finished else None,
            )
            past, first = journal.outcomes_past(source.records)
            if past:
                log.warning(
                    "the journal has outcomes for %d rows past the end of the input (from row "
                    "%d): the input changed during an earlier session; they are left out of the "
                    "result file and kept in the journal",
                    past,
                    first,
                )
            if not aborted and not incomplete:
                journal.set_meta(state="finished")
                if source.path == input_copy_path(output):
                    source.path.unlink(missing_ok=True)  # the run's copy: nothing to resume
    finally:
        plan.close()
        journal.close()
    return report


async def _send_in_rounds(
    config: RunConfig,
    plan: Plan,
    run: RunRecorder,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep | None,
    handle_signals: bool,
) -> None:
    assert config.credentials is not None
    sleep = sleep or asyncio.sleep
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
        client = CapillaryClient(http, auth_for(config.credentials, http))
        pacer = Pacer(config.rate_limit, config.rate_window, sleep=sleep)
        sender = Sender(
            client, config.retry, config.concurrency, pacer, sleep, run.stop, config.max_unanswered
        )
        run.attach(sender)
        log.info(
            "%s %d rows to %s, %d requests at a time%s",
            "verifying" if config.input_is_result else "sending",  # verify reads back only
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


async def _rounds(config: RunConfig, plan: Plan, run: RunRecorder, sender: Sender) -> None:
    """Send the input as it is planned; then read back what is unknown, send again what was
    not applied, and release rows that waited for a row covering them."""
    try:
        await plan.look_up(sender)
        await sender.send_all(plan.batches(), run)
        earlier = plan.unsettled()  # rows an earlier session left unknown: read back too
        for _ in range(3):  # read back, send again, read back what is still unknown
            if run.stop.requested:
                return
            again = plan.release_deferred()
            if items := run.take_unconfirmed() + earlier:
                earlier = []
                again += await _read_back(config, run, sender, items)
                again += plan.release_deferred()  # the read-back may settle a covering row
            if not again or run.stop.requested:
                break
            await sender.send_all(plan.batches_of(again), run)
        if not run.stop.requested:
            plan.give_up_deferred()
            # Rows whose customer lookup got no answer were not sent (or not read back): the
            # run ends resumable (exit 3), so that --resume looks them up again.
            if unanswered := run.lookups.unanswered:
                last = next(reversed(unanswered.values()))
                run.stop.request(
                    f"{len(unanswered)} customer lookup(s) got no answer (last: {last}); their "
                    "rows were not sent (or not read back): --resume looks them up again"
                )
    finally:
        if run.stop.requested:
            # Rows whose broader row did revoke their enrolment say so even when the run
            # stopped; the others were not sent, and --resume sends them.
            plan.release_deferred()


async def _read_back(
    config: RunConfig, run: RunRecorder, sender: Sender, items: list[InDoubt]
) -> list[Row]:
    if not config.verify:
        run.record(outcome for item in items if (outcome := not_read_back(item)) is not None)
        return []
    calls = sender.http_calls
    found = await read_back(items, sender)
    run.record_read_back(found, sender.http_calls - calls)
    if read := found.read:
        revoked = sum(o.status is Status.REVOKED for o in found.outcomes)
        left = len(items) - len(found.outcomes) - len(found.resend)
        log.info(
            "read back %d rows: %d revoked, %d not applied (sent again), %d still unknown%s",
            read,
            revoked,
            len(found.resend),
            read - revoked - len(found.resend),
            f"; {left} not read back (the run stopped)" if left else "",
        )
    return found.resend


async def _report_progress(
    sender: Sender, run: RunRecorder, every: float, show: Callable[[Progress], None] | None
) -> None:
    """Every `every` seconds, where the run stands: to `show` (a live display), or a log line."""
    started, done_before = time.monotonic(), run.tally().total
    while True:
        await asyncio.sleep(every)
        tally = run.tally()
        elapsed = time.monotonic() - started
        rate = (tally.total - done_before) / elapsed
        progress = Progress(
            tally,
            run.rows,
            sender.http_calls / elapsed,
            sender.pacer.describe(),
            (run.rows - tally.total) / rate if rate > 0 else None,
        )
        if show is None:
            log.info("%s", progress.line(), extra={"event": "progress"})
        else:
            show(progress)


def _write_result_file(
    config: RunConfig,
    source: Source,
    journal: Journal,
    output: Path,
    reason: str,
    finishing: Finishing,
    finished: bool,
    aborted: str,
) -> tuple[str, bool]:
    """The input re-read, joined with the journal; why the run stopped, and whether the file
    was left INCOMPLETE (a finished run's is only ever replaced whole)."""
    # A resume writes the result file as the run began it (--excel or not).
    excel = config.excel or journal.meta().get("excel") == "1"
    try:
        with finishing.writing():
            if not journal.path.exists():
                journal.restore()
                log.warning("the journal was gone from its folder: restored at %s", journal.path)
            records = (record for chunk, _ in source.chunks() for record in chunk)
            joined = join_outcomes(records, journal.outcomes(), journal.in_flight(), reason)
            write_results(output, source.columns, outcome_parts(joined), excel=excel)
    except (KeyboardInterrupt, Exception) as exc:
        if finished and isinstance(exc, KeyboardInterrupt):
            log.warning("interrupted: %s stays as it was, complete", output)
            return aborted, False
        if isinstance(exc, StorageError | InputError):
            return aborted or str(exc), True
        with contextlib.suppress(StorageError):
            # The run's own copy of its input, when it has one, finishes it surely.
            copy = input_copy_path(output)
            shown = copy if source.path == copy else source.shown
            mark_incomplete(output, shown, config.identity_options())
        if isinstance(exc, KeyboardInterrupt):
            return aborted or "interrupted while writing the result file", True
        log.debug("writing the result file failed", exc_info=exc)
        after = f" (after: {aborted})" if aborted else ""
        return f"writing the result file went wrong: {describe(exc)}{after}", True
    return aborted, False


def _rows_counted(source: Source, journal: Journal, reason: str) -> Counts:
    """The rows' counts, once, from the journal: what the result file says, or would say."""
    with contextlib.suppress(StorageError, ReadError):
        rows = range(1, source.records + 1)
        outcomes = as_the_run_left_them(rows, journal.outcomes(), journal.in_flight(), reason)
        return replace(Counts.of(outcomes), duplicates_pending=journal.duplicates_not_revoked())
    return Counts()
