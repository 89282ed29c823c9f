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
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx

from batch_revoke.answers import NOT_PRESENT_CODES, sent_blind
from batch_revoke.chunker import Planner
from batch_revoke.client import (
    Authenticator,
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
    Batch,
    Endpoint,
    ErrorCode,
    ExitStatus,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
    Tally,
    id_key,
)
from batch_revoke.outputs import claim, open_copied_run, open_outputs, this_input_run, when
from batch_revoke.pacing import Pacer, Sleep
from batch_revoke.reader import no_records
from batch_revoke.report import Progress, RunReport, estimate
from batch_revoke.sender import Sender, Stop, Stopped, describe
from batch_revoke.source import Source, spooled
from batch_revoke.spreadsheet import (
    is_workbook,
)
from batch_revoke.verify import Unsettled, verify
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


class _Plan:
    """The input streamed into requests: each chunk's verdicts go to the journal, its rows
    into batches as they fill, and aside what must wait: rows to read back (sent by an
    earlier run with no definite answer), rows waiting for the customers row that covers
    them. A resume skips settled rows. The batches are made as the sender asks for them, so
    the file is read only as fast as requests go out."""

    def __init__(self, source: Source, run: _Run) -> None:
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
