"""The importable core: one call runs reader -> chunker -> sender -> writer.

from batch_revoke.job import RunConfig, run_job
report = run_job(RunConfig(Path("file.csv"), base_url=..., credentials=...))
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import httpx

from batch_revoke.chunker import Planner
from batch_revoke.client import (
    NO_CREDENTIALS_FIX,
    Authenticator,
    CapillaryClient,
    Credentials,
    check_base_url,
)
from batch_revoke.errors import ConfigError
from batch_revoke.model import (
    MAX_BATCH_SIZE,
    Batch,
    ErrorCode,
    ExitStatus,
    IdentifierType,
    RowOutcome,
    Status,
    Tally,
)
from batch_revoke.reader import read_input
from batch_revoke.sender import RateLimit, RateLimiter, RetryPolicy, Sender, Sleep
from batch_revoke.writer import ResultWriter, default_output_path

log = logging.getLogger(__name__)


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
    progress_every: float = 15.0  # seconds between progress lines on stderr

    def check_options(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"--batch-size {self.batch_size} is out of range", "use 1 to 20")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency {self.concurrency} is below 1", "use 1 or more")
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts {self.max_attempts} is below 1", "use 1 or more")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout {self.timeout} is not positive", "use seconds, e.g. 30")
        if self.output_path is not None and _same_file(self.output_path, self.input_path):
            raise ConfigError("--output is the input file", "pass another path for the results")

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


@dataclass
class RunReport:
    output_path: Path
    tally: Tally
    elapsed: float
    dry_run: bool = False
    aborted: str = ""

    @property
    def exit_status(self) -> ExitStatus:
        if self.aborted:
            return ExitStatus.ABORTED
        done = Status.PLANNED if self.dry_run else Status.REVOKED
        return ExitStatus.OK if self.tally.all_done(done) else ExitStatus.NOT_ALL_REVOKED


def run_job(
    config: RunConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    now: Callable[[], datetime] = datetime.now,
) -> RunReport:
    """Run one file end to end. Raises InputError/ConfigError before anything is sent;
    after that, every problem is a row outcome in the result file."""
    config.check_options()
    started = time.monotonic()
    table = read_input(config.input_path)
    config.check_connection()
    output = config.output_path or default_output_path(config.input_path, now())
    planner = Planner(table.field_index, config.identifier_type, config.batch_size)
    batches: list[Batch] = []
    with ResultWriter(output, table.columns) as writer:
        for record in table.records:
            writer.expect(record)
            for item in planner.add(record):
                if isinstance(item, Batch):
                    batches.append(item)
                else:
                    writer.add([item])
        batches.extend(planner.finish())
        for batch in batches:
            writer.tally.count_request(batch.endpoint)
        aborted = ""
        if config.dry_run:
            for batch in batches:
                writer.add(_planned(batch))
        else:
            try:
                aborted = asyncio.run(_send(config, batches, writer, transport, sleep))
            except KeyboardInterrupt:
                aborted = "interrupted"
        if aborted:
            # Rows the sender never reached (interrupted between batches) were not sent.
            writer.add(
                RowOutcome(
                    row, Status.NOT_ATTEMPTED, None, ErrorCode.RUN_ABORTED, f"not sent: {aborted}"
                )
                for row in writer.missing
            )
        if writer.missing:  # a bug, not an input problem: refuse to hand back a short file
            raise AssertionError(f"rows without an outcome: {writer.missing[:10]}")
    return RunReport(output, writer.tally, time.monotonic() - started, config.dry_run, aborted)


async def _send(
    config: RunConfig,
    batches: list[Batch],
    writer: ResultWriter,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep,
) -> str:
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
        limiter = RateLimiter(config.rate_limit, sleep=sleep) if config.rate_limit else None
        policy = replace(config.retry, max_attempts=config.max_attempts)
        sender = Sender(client, policy, config.concurrency, limiter, sleep)
        log.info(
            "sending %d requests to %s, %d at a time%s",
            len(batches),
            config.base_url,
            config.concurrency,
            f", at most {config.rate_limit}" if config.rate_limit else "",
        )
        progress = asyncio.create_task(
            _report_progress(sender, writer, len(batches), config.progress_every)
        )
        try:
            await sender.send_all(batches, writer.add)
        finally:
            progress.cancel()
            writer.tally.http_calls = sender.http_calls
            writer.tally.retries = sender.retries
        return str(sender.aborted) if sender.aborted else ""


async def _report_progress(sender: Sender, writer: ResultWriter, total: int, every: float) -> None:
    """A plain line now and then, so a long run is never silent (stderr may be a log file)."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(every)
        done = sender.batches_done
        elapsed = time.monotonic() - started
        left = f"{(total - done) * elapsed / done:.0f}s" if done else "?"
        log.info(
            "progress: %d of %d requests done (%.0f%%), %d rows with an outcome, %d retries; "
            "about %s left",
            done,
            total,
            100 * done / total if total else 100,
            writer.tally.total,
            sender.retries,
            left,
        )


def _planned(batch: Batch) -> list[RowOutcome]:
    return [RowOutcome(row.row, Status.PLANNED, batch.endpoint) for row in batch.rows]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
