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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx

from batch_revoke.answers import stopped_in_flight
from batch_revoke.chunker import Planner
from batch_revoke.client import (
    CapillaryClient,
    check_base_url,
)
from batch_revoke.config import ErrorLimit, RunConfig
from batch_revoke.errors import ConfigError, InputError, RunInProgress, StorageError
from batch_revoke.interrupts import Finishing, Interrupts, raising_interrupts
from batch_revoke.journal import (
    Journal,
    JournalIdentity,
    in_use,
    input_copy_path,
    journal_path,
    runs_in,
)
from batch_revoke.model import (
    Endpoint,
    ExitStatus,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
    Tally,
)
from batch_revoke.outputs import claim, open_copied_run, open_outputs, this_input_run, when
from batch_revoke.pacing import Pacer, Sleep
from batch_revoke.plan import Plan, batches_of, give_up_deferred, release_deferred
from batch_revoke.reader import no_records
from batch_revoke.recorder import RunRecorder
from batch_revoke.report import Progress, RunReport, estimate
from batch_revoke.sender import Sender, describe
from batch_revoke.source import Source, spooled
from batch_revoke.spreadsheet import (
    is_workbook,
)
from batch_revoke.verify import verify
from batch_revoke.writer import (
    join_outcomes,
    mark_incomplete,
    result_cells,
    write_results,
)

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

VERIFY_ROUNDS = 3  # read back, send again what was not applied, read back what is still unknown


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
    with _rare_collections(), spooled(config) as config:
        if config.dry_run:
            report = _dry_run(config, now, handle_signals)
        elif config.auto_resume:
            report = _scheduled(config, transport, sleep, now, handle_signals)
        else:
            report = _run(config, transport, sleep, now, handle_signals)
    report.elapsed = time.monotonic() - started
    report.finished_at = now().astimezone().isoformat(timespec="seconds")
    return report


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
    planner = _planner(config, source)
    finished = journal.meta().get("state") == "finished"  # resumed after it finished
    try:
        run = RunRecorder(journal, config.max_errors, planner, source.records)
        plan = Plan(source, run)
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
                    when(stopped.created),
                    stopped.output,
                )
                continue
            log.warning(
                "finishing the run begun %s that stopped before it was done (input %s, results %s)",
                when(stopped.created),
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
    done = this_input_run(config)
    if done is not None and in_use(journal_path(done.output)):
        raise RunInProgress(done.output)
    if done is None:
        report = run(config)
    else:
        report = run(replace(config, output_path=done.output, resume=True, auto_resume=False))
        if done.finished:
            report.note = (
                f"this input was revoked by the run begun {when(done.created)}: nothing was "
                "sent, and its result file was written again"
            )
    report.earlier = tuple(earlier)
    return report


def _dry_run(config: RunConfig, now: Callable[[], datetime], handle_signals: bool) -> RunReport:
    """The same reading, checks and plan as a run, streamed straight into the result file:
    nothing is sent, so nothing needs a journal. A file found broken half-way is refused
    and its partial result removed."""
    with raising_interrupts(handle_signals):
        source = Source.open(config, whole=False)
        output = claim(config, now)
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
    return RunReport(output, tally, 0.0, True, estimate=estimate(calls, config.rate_limit))


# --- the input ---------------------------------------------------------------------------


def _planner(config: RunConfig, source: Source) -> Planner:
    return Planner(
        source.field_index,
        config.identifier_type,
        config.batch_size,
        from_workbook=source.from_workbook,
    )


# --- opening the record ------------------------------------------------------------------


# --- planning ----------------------------------------------------------------------------


# --- the run's stages --------------------------------------------------------------------


# --- sending -----------------------------------------------------------------------------


async def _execute(
    config: RunConfig,
    plan: Plan,
    run: RunRecorder,
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
        client = CapillaryClient(http, config.credentials.auth(http))
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


async def _rounds(config: RunConfig, plan: Plan, run: RunRecorder, sender: Sender) -> None:
    """Send the input as it is planned; then read back what is unknown, send again what was
    not applied, and release rows that waited for a row covering them. A few rounds at most:
    each is rarer than the last."""
    try:
        await sender.send_all(plan.batches(), run)
        run.unconfirmed.extend(plan.unsettled())
        for _ in range(VERIFY_ROUNDS):
            if run.stop.requested:
                return
            again = release_deferred(plan, run)
            if run.unconfirmed:
                again += await _read_back(config, run, sender)
                again += release_deferred(plan, run)  # the read-back may settle a covering row
            if not again or run.stop.requested:
                break
            await sender.send_all(batches_of(run.planner, again), run)
        if not run.stop.requested:
            give_up_deferred(plan, run)
    finally:
        if run.stop.requested:
            # Rows whose broader row did revoke their enrolment say so even when the run
            # stopped; the others were not sent, and --resume sends them.
            release_deferred(plan, run)


_NOT_READ_BACK = "not read back (--no-verify; `batch-revoke verify RESULT.csv` reads it back)"


async def _read_back(config: RunConfig, run: RunRecorder, sender: Sender) -> list[Row]:
    items, run.unconfirmed = run.unconfirmed, []
    if not config.verify:
        run.record(
            replace(o, error_message=f"{o.error_message}; {_NOT_READ_BACK}")
            if (o := item.previous) is not None
            else stopped_in_flight(item.row.row, item.row.mode.endpoint, _NOT_READ_BACK)
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


async def _report_progress(
    sender: Sender, run: RunRecorder, every: float, show: Callable[[Progress], None] | None
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
    source: Source,
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
