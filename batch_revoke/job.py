"""Orchestration, the importable core: `run_job` runs one file, as a dry run (here) or as a run
that sends (realrun.py).

from batch_revoke.job import RunConfig, run_job
report = run_job(RunConfig(Path("file.csv"), base_url=..., credentials=...))
"""

from __future__ import annotations

import gc
import itertools
import logging
import operator
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from batch_revoke.chunker import planner_for, valid_rows
from batch_revoke.config import SANDBOX_LABEL, RunConfig, estimate
from batch_revoke.credentials import BasicCredentials
from batch_revoke.duplicates import SeenRows
from batch_revoke.errors import BatchRevokeError, ConfigError
from batch_revoke.identifiers import lookup_key, needs_lookup
from batch_revoke.interrupts import raising_interrupts
from batch_revoke.model import Counts, Endpoint, IdentifierType, Mode, Row, RowOutcome, Status
from batch_revoke.outputs import check_targets, claim
from batch_revoke.report import RunReport
from batch_revoke.source import Source, no_records, spooled
from batch_revoke.writer import ResultPart, result_cells, write_results

if TYPE_CHECKING:  # HTTP and the sandbox (aiohttp) load only when a run sends
    import httpx

    from batch_revoke.sandbox import SandboxConfig
    from batch_revoke.stop import Sleep

log = logging.getLogger(__name__)
_MODE = operator.attrgetter("mode")
_TYPE = operator.attrgetter("identifier_type")


def run_job(
    config: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep | None = None,
    now: Callable[[], datetime] = datetime.now,
    handle_signals: bool = False,
    sandbox: SandboxConfig | None = None,
) -> RunReport:
    """Run one file end to end. Raises InputError/ConfigError before anything is sent; after
    that, every problem is a row outcome in the result file. `handle_signals`: SIGTERM and
    SIGHUP stop the run like Ctrl-C. `sandbox`: a local sandbox of the API started for this
    run (its demo till unless credentials are given)."""
    config.check_options()
    check_targets(config)
    asyncio = sys.modules.get("asyncio")  # looked up, not imported: a dry run does without it
    if asyncio is not None and asyncio._get_running_loop() is not None:
        raise ConfigError(
            "run_job was called inside a running event loop (Jupyter, an async framework)",
            "await run_job_async(config) instead",
        )
    if sandbox is not None and not config.dry_run:
        if config.base_url:
            raise ConfigError("a sandbox run was also given a host", "leave it out")
        from batch_revoke.sandbox import running_sandbox

        with running_sandbox(sandbox) as running:
            log.info("sandbox running on %s", running.base_url)
            demo = BasicCredentials(running.credentials.username, running.credentials.password)
            local = replace(
                config,
                base_url=running.base_url,
                credentials=config.credentials or demo,
                host_label=SANDBOX_LABEL,
            )
            return run_job(
                local, transport=transport, sleep=sleep, now=now, handle_signals=handle_signals
            )

    started = time.monotonic()
    # A run makes a few short-lived objects per input row, none in reference cycles: the
    # cycle collector's default (a pass every 700 allocations) cost 21% of the 1M dry run
    # (4.52 s -> 3.57 s CPU; bench, 2026-12). It collects far less often while a run lasts.
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        with spooled(config) as config:
            if config.dry_run:
                report = _dry_run(config, now, handle_signals)
            else:
                # Imported here: a dry run, and its start-up, need no HTTP and no journal.
                from batch_revoke.realrun import real_run
                from batch_revoke.scheduled import run_scheduled

                def run(settings: RunConfig) -> RunReport:
                    return real_run(settings, transport, sleep, now, handle_signals)

                # --auto-resume: the runs of --output-dir that stopped are finished first.
                report = run_scheduled(config, run) if config.auto_resume else run(config)
    finally:
        gc.set_threshold(*previous)
    report.elapsed = time.monotonic() - started
    report.finished_at = now().astimezone().isoformat(timespec="seconds")
    if config.report is not None:
        from batch_revoke.html_report import write_report  # Jinja2: only when a report is asked

        settings = {"concurrency": str(config.concurrency)}
        if config.rate_limit is not None:
            settings["rate limit"] = str(config.rate_limit)
        # The run's outcome is decided and its files written: a report not written is only said.
        try:
            report.html = write_report(
                report.output_path, config.report, report=report, settings=settings
            )
        except (BatchRevokeError, OSError, KeyboardInterrupt) as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            log.warning("the HTML report %s was not written: %s", config.report, why)
    return report


def _dry_run(config: RunConfig, now: Callable[[], datetime], handle_signals: bool) -> RunReport:
    """`--dry-run`: the same reading, checks and plan as a run, streamed straight into the
    result file, with the calls it would make; no journal, no HTTP."""
    with raising_interrupts(handle_signals):
        source = Source.open(config, whole=False)
        output = claim(config, now)
    planner = planner_for(config, source)
    customers = SeenRows()  # the customers named by an identifier: a lookup each
    lookups = 0
    region = config.default_region
    tally = Counts()  # the rows not planned (invalid, duplicate), chunk by chunk
    planned_cells = {
        mode: result_cells(RowOutcome(0, Status.PLANNED, mode.endpoint)) for mode in Mode
    }

    def planned() -> Iterator[ResultPart]:
        nonlocal lookups, tally
        requests: Counter[Endpoint] = Counter()
        planned = 0
        for chunk, _ in source.chunks():
            verdicts = planner.classify(chunk)
            rows = valid_rows(verdicts)
            covered = planner.covering(rows)  # sent later, and only if still needed
            # The rows named by an identifier, found by a C-level pass: most are by id.
            typed = itertools.compress(rows, map(IdentifierType.ID.__ne__, map(_TYPE, rows)))
            named = [
                (lookup_key(row.identifier_type, row.customer_id, region), row.row)
                for row in typed
                if needs_lookup(row)
            ]
            keys = [(hash(key), hash(key + "\x1f"), row) for key, row in named]
            lookups += len(keys) - len(customers.duplicates(keys))
            placed = [row for row in rows if row.row not in covered] if covered else rows
            for row in placed:
                # A revokeEarn row is a request of its own: counted, not made into a batch,
                # which costs a third of a dry run of a million of them (bench).
                if row.mode is Mode.EARN:
                    requests[Endpoint.REVOKE_EARN] += 1
                elif planner.place(row) is not None:
                    requests[row.mode.endpoint] += 1
            planned += len(rows)
            if len(rows) == len(verdicts):  # the usual chunk: every record planned
                yield chunk, list(map(planned_cells.__getitem__, map(_MODE, rows)))
                continue
            cells = [
                planned_cells[verdict.mode] if isinstance(verdict, Row) else result_cells(verdict)
                for verdict in verdicts
            ]
            tally += Counts.of(verdict for verdict in verdicts if not isinstance(verdict, Row))
            yield chunk, cells
        if not tally.total and not planned:
            raise source.named(no_records(source.path))
        requests.update(batch.mode.endpoint for batch in planner.finish())
        sent = {endpoint: requests[endpoint] for endpoint in Endpoint if requests[endpoint]}
        tally += Counts({Status.PLANNED: planned}, requests=sent)

    try:
        with raising_interrupts(handle_signals):
            write_results(output, source.columns, planned(), excel=config.excel)
    except BaseException:
        output.unlink(missing_ok=True)  # a dry run refused or interrupted leaves nothing
        raise
    finally:
        customers.close()
        planner.close()
    calls = sum(tally.requests.values()) + lookups
    return RunReport(output, tally, 0.0, True, estimate=estimate(calls, config.rate_limit, lookups))


async def run_job_async(
    config: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Callable[[], datetime] = datetime.now,
) -> RunReport:
    """`run_job` for callers already inside an event loop: the run gets a thread and an event
    loop of its own, so it neither blocks nor shares the caller's."""
    import asyncio  # loaded already: the caller's event loop runs on it

    return await asyncio.to_thread(run_job, config, transport=transport, now=now)
