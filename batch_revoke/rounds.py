"""The run's rounds over HTTP: send the plan, read back what is unknown, send again what was
not applied, release rows that waited for a covering row; with progress reported as it goes.
One httpx client, one pace and one sender for the whole run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from batch_revoke.answers.readbacks import InDoubt, not_read_back
from batch_revoke.client import CapillaryClient, auth_for
from batch_revoke.config import RetryPolicy, RunConfig
from batch_revoke.hosts import check_base_url
from batch_revoke.interrupts import Interrupts
from batch_revoke.model import Row, Status
from batch_revoke.pacing import Pacer
from batch_revoke.plan import Plan
from batch_revoke.readback import read_back
from batch_revoke.recorder import RunRecorder
from batch_revoke.report import Progress
from batch_revoke.sender import Sender
from batch_revoke.stop import Sleep

log = logging.getLogger(__name__)

VERIFY_ROUNDS = 3  # read back, send again what was not applied, read back what is still unknown


async def send_in_rounds(
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
        client = CapillaryClient(http, auth_for(config.credentials, http))
        policy = RetryPolicy(
            max_attempts=config.max_attempts, max_throttle_wait=config.max_throttle_wait
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
    not applied, and release rows that waited for a row covering them. A few rounds at most:
    each is rarer than the last."""
    try:
        await plan.look_up(sender)
        await sender.send_all(plan.batches(), run)
        earlier = plan.unsettled()  # rows an earlier session left unknown: read back too
        for _ in range(VERIFY_ROUNDS):
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
            _unanswered_lookups(run)
    finally:
        if run.stop.requested:
            # Rows whose broader row did revoke their enrolment say so even when the run
            # stopped; the others were not sent, and --resume sends them.
            plan.release_deferred()


def _unanswered_lookups(run: RunRecorder) -> None:
    """Rows whose customer lookup got no answer were not sent (or not read back): the run
    ends resumable (exit 3), so that --resume looks them up again."""
    if unanswered := run.lookups.unanswered:
        last = next(reversed(unanswered.values()))
        run.stop.request(
            f"{len(unanswered)} customer lookup(s) got no answer (last: {last}); their rows "
            "were not sent (or not read back): --resume looks them up again"
        )


async def _read_back(
    config: RunConfig, run: RunRecorder, sender: Sender, items: list[InDoubt]
) -> list[Row]:
    if not config.verify:
        run.record(outcome for item in items if (outcome := not_read_back(item)) is not None)
        return []
    calls = sender.http_calls
    found = await read_back(items, sender)
    run.record_read_back(found, sender.http_calls - calls)
    read = found.read
    if read:
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
    """Every `every` seconds, where the run stands: to `show` (a live display), or as a plain
    log line, so a long run is never silent (stderr may be a log file)."""
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
