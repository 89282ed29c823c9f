"""Batches -> outcomes: concurrency, the rate limit, and tenacity retries around client calls."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from batch_revoke.client import ApiReply, CapillaryClient, TokenUnavailable, interpret
from batch_revoke.errors import AuthError, ConfigError
from batch_revoke.model import Batch, ErrorCode, RowOutcome, Status

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

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


class Stopped(Exception):
    """A stop was requested while a request waited to be retried."""


class Stop:
    """A shared request to stop: no new request starts, waits for a retry end at once.
    The first reason given is the one reported."""

    def __init__(self) -> None:
        self.reason = ""
        self._event = asyncio.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
        self._event.set()

    async def sleep(self, seconds: float, sleep: Sleep) -> None:
        """`sleep(seconds)`, cut short by a stop (which raises Stopped)."""
        if self.requested:
            raise Stopped
        waiting = asyncio.ensure_future(sleep(seconds))
        stopping = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            stopping.cancel()
        if self.requested:
            raise Stopped


class Recorder(Protocol):
    """Where the sender reports each request: the journal, through the run's stages."""

    def sending(self, batch: Batch) -> None:
        """Before the request first leaves: from here on it may be applied."""

    def answered(self, batch: Batch, outcomes: list[RowOutcome]) -> None:
        """Every row of the batch has its outcome."""

    def abandoned(self, batch: Batch) -> None:
        """Stopped while nothing of it can have been applied: its rows were not sent."""


class Sender:
    """Sends batches with `concurrency` requests in flight and reports each one to a recorder
    as soon as its outcome is known. Stops starting requests when `stop` is requested; a
    401/403 requests it (and `aborted` holds the reason), and so does a host that answers
    nothing `max_unanswered` times in a row."""

    def __init__(
        self,
        client: CapillaryClient,
        policy: RetryPolicy = RetryPolicy(),
        concurrency: int = 4,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
        stop: Stop | None = None,
        max_unanswered: int = 0,
    ) -> None:
        self.client = client
        self.policy = policy
        self.concurrency = concurrency
        self.limiter = limiter
        self.sleep = sleep
        self.stop = stop or Stop()
        self.max_unanswered = max_unanswered
        self.aborted: AuthError | None = None
        # Running counts, read by the progress line and the summary.
        self.batches_done = 0
        self.http_calls = 0
        self.retries = 0
        self.unanswered = 0  # HTTP calls in a row that got no answer at all

    async def send_all(self, batches: Iterable[Batch], recorder: Recorder) -> None:
        pending = iter(batches)

        async def worker() -> None:
            while not self.stop.requested:
                batch = next(pending, None)
                if batch is None:
                    return
                await self.send_recorded(batch, recorder)

        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(worker())

    async def send_recorded(self, batch: Batch, recorder: Recorder) -> None:
        """One batch, reported: answered, abandoned, or (interrupted on the wire) left in
        flight for the journal to say so."""
        state = _Attempts()
        try:
            outcomes = await self._send(batch, state, lambda: recorder.sending(batch))
        except (Stopped, AuthError):
            if not state.maybe_applied:
                recorder.abandoned(batch)
            return
        except asyncio.CancelledError:
            if state.announced and not state.maybe_applied:
                recorder.abandoned(batch)
            raise
        self.batches_done += 1
        recorder.answered(batch, outcomes)

    async def send_batch(self, batch: Batch) -> list[RowOutcome]:
        """One batch to the end, unrecorded: a final answer or a definite give-up."""
        return await self._send(batch, _Attempts(), lambda: None)

    async def _send(
        self, batch: Batch, state: _Attempts, announce: Callable[[], None]
    ) -> list[RowOutcome]:
        async def attempt() -> ApiReply:
            if self.limiter is not None:
                await self.limiter.acquire()
            if self.stop.requested:
                raise Stopped
            if not state.announced:
                announce()
                state.announced = True
            state.on_wire = True
            try:
                reply = await self.client.send(batch)
            except TokenUnavailable as exc:
                state.on_wire = False
                raise RetryableFailure(ErrorCode.CONNECTION_ERROR, str(exc), False) from exc
            except httpx.TransportError as exc:
                state.sends += 1
                self._no_answer(exc)
                raise state.noted(_transport_failure(exc)) from exc
            state.on_wire = False
            state.sends += reply.sends
            self.unanswered = 0
            problem = _reply_failure(reply)
            if problem is not None:
                raise state.noted(problem)
            return reply

        try:
            reply: ApiReply = await self._retrying(batch)(attempt)
        except RetryableFailure as failure:
            return _exhausted(batch, failure, state.sends, state.lost)
        except AuthError as exc:
            self.aborted = self.aborted or exc
            self.stop.request(f"the API refused the credentials: {exc}")
            raise
        finally:
            self.http_calls += state.sends
        return interpret(batch, reply, state.sends, "; ".join(state.lost))

    def _retrying(self, batch: Batch | None) -> AsyncRetrying:
        """Tenacity around one request; `batch` None for a read-back."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=WaitRetryAfter(
                wait_exponential_jitter(
                    multiplier=self.policy.initial_wait, max=self.policy.max_wait
                ),
                self.policy.max_retry_after,
            ),
            retry=retry_if_exception_type(RetryableFailure),
            sleep=lambda seconds: self.stop.sleep(seconds, self.sleep),
            before_sleep=lambda state: self._log_retry(batch, state),
            reraise=True,
        )

    def _no_answer(self, exc: httpx.TransportError) -> None:
        self.unanswered += 1
        if self.max_unanswered and self.unanswered >= self.max_unanswered:
            self.stop.request(
                f"{self.unanswered} requests in a row got no answer at all "
                f"(last: {type(exc).__name__}: {exc or 'no detail'}); is the host reachable?"
            )

    async def read_back(self, customer_id: str, badge_meta_id: str) -> ApiReply | str:
        """The badge read-back, retried like a request; a reason string when it failed."""

        async def attempt() -> ApiReply:
            if self.limiter is not None:
                await self.limiter.acquire()
            if self.stop.requested:
                raise Stopped
            try:
                reply = await self.client.read_back(customer_id, badge_meta_id)
            except TokenUnavailable as exc:
                raise RetryableFailure(ErrorCode.CONNECTION_ERROR, str(exc), False) from exc
            except httpx.TransportError as exc:
                self.http_calls += 1
                self._no_answer(exc)
                raise _transport_failure(exc) from exc
            self.http_calls += reply.sends
            self.unanswered = 0
            problem = _reply_failure(reply)
            if problem is not None:
                raise problem
            return reply

        try:
            result: ApiReply = await self._retrying(None)(attempt)
        except RetryableFailure as failure:
            return f"read-back failed: {failure.message}"
        except AuthError as exc:
            self.aborted = self.aborted or exc
            self.stop.request(f"the API refused the credentials: {exc}")
            raise
        return result

    def _log_retry(self, batch: Batch | None, state: RetryCallState) -> None:
        self.retries += 1
        _log_retry(batch, state)


@dataclass(slots=True)
class _Attempts:
    """What one batch's attempts have shown so far."""

    sends: int = 0
    announced: bool = False  # the intent was recorded
    on_wire: bool = False  # a request is out and its answer not yet in
    lost: list[str] = field(default_factory=list)  # attempts whose answer never came

    @property
    def maybe_applied(self) -> bool:
        return self.on_wire or bool(self.lost)

    def noted(self, failure: RetryableFailure) -> RetryableFailure:
        self.on_wire = False
        if failure.maybe_applied:
            self.lost.append(failure.message)
        return failure


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


def _log_retry(batch: Batch | None, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    what = (
        f"request {batch.number} ({batch.endpoint}, {len(batch.rows)} rows)"
        if batch is not None
        else "read-back"
    )
    log.info(
        "%s: attempt %d failed (%s); retrying in %.1fs", what, state.attempt_number, failure, wait
    )
