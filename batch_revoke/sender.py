"""Batches -> outcomes: concurrency, the rate limit, and tenacity retries around client calls."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from batch_revoke.client import ApiReply, CapillaryClient, TokenUnavailable, interpret
from batch_revoke.errors import AuthError, ConfigError
from batch_revoke.model import Batch, ErrorCode, RowOutcome, Status

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Sink = Callable[[list[RowOutcome]], None]

# Answers that say the request was not carried out, so a retry cannot double anything.
NOT_APPLIED_STATUSES = {429, 503, 521}


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    period: float  # seconds

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(s|sec|second|m|min|minute)\s*", text)
        if not match or int(match.group(1)) < 1:
            raise ConfigError(
                f"rate limit {text!r} is not N/s or N/min",
                "e.g. --rate-limit 100/min (Capillary demo clusters allow 100 per minute)",
            )
        period = 1.0 if match.group(2).startswith("s") else 60.0
        return cls(int(match.group(1)), period)

    def __str__(self) -> str:
        return f"{self.count}/{'s' if self.period == 1.0 else 'min'}"


class RateLimiter:
    """A sliding window: no `period`-long window ever holds more than `count` request starts,
    whatever fixed or sliding window the server counts in."""

    def __init__(
        self,
        limit: RateLimit,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.limit.period:
                    self._starts.popleft()
                if len(self._starts) < self.limit.count:
                    self._starts.append(now)
                    return
                await self._sleep(self._starts[0] + self.limit.period - now)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 300.0  # longer Retry-After values are capped, not obeyed blindly


class RetryableFailure(Exception):
    """One attempt ended without a final answer."""

    def __init__(
        self,
        code: str,
        message: str,
        maybe_applied: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.maybe_applied = maybe_applied
        self.http_status = http_status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class WaitRetryAfter(wait_base):
    """Honour the server's Retry-After; otherwise exponential backoff with jitter."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, RetryableFailure) and failure.retry_after is not None:
            return min(failure.retry_after, self.cap)
        return self.fallback(retry_state)


class Sender:
    """Sends batches with `concurrency` requests in flight and hands each batch's outcomes to
    a sink as soon as they are known. A 401/403 stops the run: unsent batches become
    `not_attempted` and `aborted` holds the reason."""

    def __init__(
        self,
        client: CapillaryClient,
        policy: RetryPolicy = RetryPolicy(),
        concurrency: int = 4,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.policy = policy
        self.concurrency = concurrency
        self.limiter = limiter
        self.sleep = sleep
        self.aborted: AuthError | None = None
        # Running counts, read by the progress line and the summary.
        self.batches_done = 0
        self.http_calls = 0
        self.retries = 0

    async def send_all(self, batches: Iterable[Batch], sink: Sink) -> None:
        pending = iter(batches)

        async def worker() -> None:
            while self.aborted is None:
                batch = next(pending, None)
                if batch is None:
                    return
                await self._send_reporting(batch, sink)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(worker())
        except asyncio.CancelledError:
            _give_up(pending, sink, "not sent: the run was interrupted")
            raise
        if self.aborted is not None:
            _give_up(pending, sink, f"not sent: the run stopped after {self.aborted}")

    async def _send_reporting(self, batch: Batch, sink: Sink) -> None:
        try:
            outcomes = await self.send_batch(batch)
        except asyncio.CancelledError:
            # Interrupted mid-request: whether it reached the API is unknown.
            sink(
                _all_rows(batch, Status.UNCONFIRMED, ErrorCode.RUN_ABORTED, "interrupted in flight")
            )
            raise
        self.batches_done += 1
        sink(outcomes)

    async def send_batch(self, batch: Batch) -> list[RowOutcome]:
        """One batch to the end: a final answer, or a definite give-up, never an exception."""
        sends = 0
        lost: list[str] = []  # attempts whose answer never came, so they may have applied

        def noted(failure: RetryableFailure) -> RetryableFailure:
            if failure.maybe_applied:
                lost.append(failure.message)
            return failure

        async def attempt() -> ApiReply:
            nonlocal sends
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                reply = await self.client.send(batch)
            except TokenUnavailable as exc:
                raise RetryableFailure(ErrorCode.CONNECTION_ERROR, str(exc), False) from exc
            except httpx.TransportError as exc:
                sends += 1
                raise noted(_transport_failure(exc)) from exc
            sends += reply.sends
            problem = _reply_failure(reply)
            if problem is not None:
                raise noted(problem)
            return reply

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=WaitRetryAfter(
                wait_exponential_jitter(
                    multiplier=self.policy.initial_wait, max=self.policy.max_wait
                ),
                self.policy.max_retry_after,
            ),
            retry=retry_if_exception_type(RetryableFailure),
            sleep=self.sleep,
            before_sleep=lambda state: self._retrying(batch, state),
            reraise=True,
        )
        try:
            reply: ApiReply = await retrying(attempt)
        except RetryableFailure as failure:
            return _exhausted(batch, failure, sends, lost)
        except AuthError as exc:
            self.aborted = self.aborted or exc
            return _all_rows(batch, Status.FAILED, exc.code, str(exc), exc.http_status, sends)
        finally:
            self.http_calls += sends
        return interpret(batch, reply, sends, "; ".join(lost))

    def _retrying(self, batch: Batch, state: RetryCallState) -> None:
        self.retries += 1
        _log_retry(batch, state)


def _transport_failure(exc: httpx.TransportError) -> RetryableFailure:
    name = type(exc).__name__
    code = (
        ErrorCode.TIMEOUT if isinstance(exc, httpx.TimeoutException) else ErrorCode.CONNECTION_ERROR
    )
    # Nothing reached the server on these; on the others the request may have been processed.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return RetryableFailure(code, f"{name} before sending", maybe_applied=False)
    return RetryableFailure(code, f"{name}: {exc or 'no detail'}", maybe_applied=True)


def _reply_failure(reply: ApiReply) -> RetryableFailure | None:
    status = reply.http_status
    if status in (401, 403):
        message = reply.text or ("authentication failed" if status == 401 else "not permitted")
        raise AuthError(status, message)
    if status == 429 or status >= 500:
        applied = status not in NOT_APPLIED_STATUSES
        text = f"HTTP {status}" + (f": {reply.text}" if reply.text else "")
        return RetryableFailure(f"http_{status}", text, applied, status, reply.retry_after)
    if status < 300 and not isinstance(reply.body, dict):
        text = f"HTTP {status} with a body that is not JSON: {reply.text!r}"
        return RetryableFailure(ErrorCode.BAD_RESPONSE, text, True, status)
    return None


def _exhausted(
    batch: Batch, failure: RetryableFailure, sends: int, lost: list[str]
) -> list[RowOutcome]:
    if lost:
        message = (
            f"no definite answer after {sends} attempt(s); last: {failure.message}; "
            "the revocation may or may not have happened"
        )
        return _all_rows(
            batch, Status.UNCONFIRMED, failure.code, message, failure.http_status, sends
        )
    message = f"gave up after {sends} attempt(s), none carried out; last: {failure.message}"
    return _all_rows(batch, Status.FAILED, failure.code, message, failure.http_status, sends)


def _all_rows(
    batch: Batch,
    status: Status,
    code: str,
    message: str,
    http_status: int | None = None,
    attempts: int = 0,
) -> list[RowOutcome]:
    return [
        RowOutcome(row.row, status, batch.endpoint, code, message, (), http_status, attempts)
        for row in batch.rows
    ]


def _give_up(pending: Iterator[Batch], sink: Sink, message: str) -> None:
    for batch in pending:
        sink(_all_rows(batch, Status.NOT_ATTEMPTED, ErrorCode.RUN_ABORTED, message))


def _log_retry(batch: Batch, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info(
        "request %d (%s, %d rows): attempt %d failed (%s); retrying in %.1fs",
        batch.number,
        batch.endpoint,
        len(batch.rows),
        state.attempt_number,
        failure,
        wait,
    )
