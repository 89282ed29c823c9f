"""Batches -> outcomes: concurrency, the shared pace (pacing.py), and tenacity retries around
client calls. An answer that did nothing (429, 503, 521, a lookup's 461) never uses up
--max-attempts: --max-throttle-wait of them in a row stops the run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Protocol, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential_jitter

from batch_revoke.answers.replies import (
    RetryableFailure,
    client_failed,
    exhausted,
    failure_of,
    interpret,
)
from batch_revoke.client import (
    ApiRequest,
    CapillaryClient,
    RequestNotSent,
    TokenUnavailable,
    build_request,
    snippet,
)
from batch_revoke.config import RetryPolicy
from batch_revoke.errors import AuthError
from batch_revoke.model import ApiReply, Batch, ErrorCode, RowOutcome
from batch_revoke.pacing import Pacer
from batch_revoke.stop import Sleep, Stop, Stopped

log = logging.getLogger(__name__)
T = TypeVar("T")


class Recorder(Protocol):
    """Where the sender reports each request (the journal, through the run's stages): `sending`
    and `sending_again` before an attempt leaves (from then on it may be applied), `nothing_done`
    when every answer so far said nothing was done, `answered` with its rows' outcomes, or
    `abandoned`: stopped while nothing of it can have been applied (its rows were not sent)."""

    def sending(self, batch: Batch) -> None: ...
    def sending_again(self, batch: Batch) -> None: ...
    def nothing_done(self, batch: Batch) -> None: ...
    def answered(self, batch: Batch, outcomes: list[RowOutcome]) -> None: ...
    def abandoned(self, batch: Batch) -> None: ...


class Sender:
    """Sends batches, `concurrency` at a time, each reported as soon as its outcome is known,
    until `stop` is requested: by a 401/403, by `max_unanswered` calls in a row unanswered, or
    by throttling for `max_throttle_wait`."""

    def __init__(
        self,
        client: CapillaryClient,
        policy: RetryPolicy = RetryPolicy(),
        concurrency: int = 4,
        pacer: Pacer | None = None,
        sleep: Sleep = asyncio.sleep,
        stop: Stop | None = None,
        max_unanswered: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.policy = policy
        self.concurrency = concurrency
        self.pacer = pacer or Pacer(sleep=sleep)
        self.sleep = sleep
        self.stop = stop or Stop()
        self.max_unanswered = max_unanswered
        self._clock = clock
        self._backoff = wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait)
        # The calls made, retries among them: the run's Counts take them from here.
        self.http_calls = 0
        self.retries = 0
        self.unanswered = 0  # HTTP calls in a row that got no answer at all
        self.nothing_done_since: float | None = None  # first of a run of 429/503/521 answers

    async def send_all(self, batches: Iterable[Batch], recorder: Recorder) -> None:
        def failed(exc: Exception, batch: Batch | None) -> str:
            what = f"request {batch.number}" if batch is not None else "planning"
            log.debug("%s went wrong", what, exc_info=exc)  # the stack with -v
            return f"{what} went wrong: {describe(exc)}; --resume goes on from here"

        await self.each(batches, partial(self.send_recorded, recorder=recorder), failed)

    async def each(
        self,
        items: Iterable[T],
        work: Callable[[T], Awaitable[None]],
        failed: Callable[[Exception, T | None], str] | None = None,
    ) -> None:
        """`work` on each item, `concurrency` at a time, until the run stops. Any other
        exception than a stop or refused credentials stops the run for `failed`'s reason, when
        given: in a TaskGroup it would cancel the others and leave no result file."""
        pending = iter(items)

        async def worker() -> None:
            while not self.stop.requested:
                item = None
                try:
                    item = next(pending, None)
                    if item is None:
                        return
                    await work(item)
                except (Stopped, AuthError):
                    return  # the run stops; --resume goes on from here
                except Exception as exc:
                    if failed is None:
                        raise
                    self.stop.request(failed(exc, item))
                    return

        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(worker())

    async def send_recorded(self, batch: Batch, recorder: Recorder) -> None:
        """One batch, reported: answered, abandoned, or (interrupted on the wire) left in
        flight for the journal to say so."""
        name = f"request {batch.number} ({batch.mode.endpoint}, {len(batch.rows)} rows)"
        state = Attempts(name, build_request(batch), failure_of, batch, recorder)
        try:
            reply = await self._retried(state)
        except RetryableFailure as failure:
            outcomes = exhausted(batch, failure, state.sends, state.lost)
        except RequestNotSent as exc:
            problem = f"the request could not be sent ({exc})"
            outcomes = client_failed(batch, problem, state.sends, state.lost, False)
        except (Stopped, AuthError):
            if not state.maybe_applied:
                recorder.abandoned(batch)
            return
        except asyncio.CancelledError:
            if state.tried and not state.maybe_applied:
                recorder.abandoned(batch)
            raise
        except Exception as exc:
            if not state.tried:
                raise  # nothing of this batch is recorded: not its outcome, the run's problem
            # Once its intent is recorded the batch needs an outcome, or it would stay in
            # flight, to crash again on every --resume. Unknown if it may have left.
            log.debug("request %d: unexpected error", batch.number, exc_info=True)
            problem = f"unexpected error while sending: {describe(exc)}"
            outcomes = client_failed(batch, problem, state.sends, state.lost, state.on_wire)
        else:
            outcomes = interpret(batch, reply, state.sends, "; ".join(state.lost))
        if log.isEnabledFor(logging.DEBUG):
            said = {f"{o.status}{' ' + o.error_code if o.error_code else ''}" for o in outcomes}
            answer_id = next((o.request_id for o in outcomes if o.request_id), "")
            status = outcomes[0].http_status if outcomes else None
            log.debug(
                "%s: %s, %s%s",
                name,
                f"HTTP {status}" if status is not None else "no answer",
                ", ".join(sorted(said)),
                traced(answer_id),
                extra={
                    "event": "request",
                    "request": batch.number,
                    "request_id": answer_id or None,
                },
            )
        recorder.answered(batch, outcomes)

    async def fetch(
        self,
        request: ApiRequest,
        what: str,
        classify: Callable[[ApiReply], RetryableFailure | None] = failure_of,
    ) -> ApiReply | str:
        """A call that only reads (a read-back, a lookup), paced and retried like a request; a
        reason string when it failed."""
        try:
            return await self._retried(Attempts(what, request, classify))
        except RetryableFailure as failure:
            return f"{what} failed: {failure.message}"
        except RequestNotSent as exc:
            return f"{what} could not be sent ({exc})"
        except (Stopped, AuthError):
            raise
        except Exception as exc:
            # It only reads: whatever went wrong, its rows stay as they were.
            log.debug("%s: unexpected error", what, exc_info=True)
            return f"{what} failed: unexpected error: {describe(exc)}"

    async def _retried(self, state: Attempts) -> ApiReply:
        """The call until it gets a final answer; RetryableFailure when retries ran out. A
        401/403 stops the run (AuthError). Answers that did nothing do not count."""
        retrying = AsyncRetrying(
            stop=lambda _: state.counted >= self.policy.max_attempts,
            wait=self._wait,
            retry=retry_if_exception_type(RetryableFailure),
            sleep=lambda seconds: self.stop.sleep(seconds, self.sleep),
            before_sleep=lambda retry: _log_retry(state, retry),
            reraise=True,
        )
        try:
            reply: ApiReply = await retrying(self._attempt, state)
        except AuthError as exc:
            self.stop.request(f"the API refused the credentials: {exc}")
            raise
        return reply

    async def _attempt(self, state: Attempts) -> ApiReply:
        """One HTTP call in its turn, paced and counted; RetryableFailure without a final answer."""
        started = await self.pacer.acquire(lambda: self.stop.requested)
        try:
            await self.client.auth.ready()  # a refused key raises AuthError here, before sending
            if state.leaving():
                self.retries += 1  # counted when the retry leaves, not when it is planned
            self.http_calls += 1  # counted as it leaves, so a call cut off still counts
            reply = await self.client.send(state.request)
        except Exception as exc:
            self.pacer.answered(started, None)  # a probe that never ends stalls them all
            if isinstance(exc, TokenUnavailable):
                failure = RetryableFailure(ErrorCode.CONNECTION_ERROR, str(exc), False)
                raise state.failed(failure) from exc
            if isinstance(exc, RequestNotSent):
                self.http_calls -= 1  # it never left
                state.on_wire = False
            elif isinstance(exc, httpx.TransportError):
                state.sends += 1
                self.unanswered += 1
                if self.max_unanswered and self.unanswered >= self.max_unanswered:
                    self.stop.request(
                        f"{self.unanswered} requests in a row got no answer at all "
                        f"(last: {type(exc).__name__}: {exc}); is the host reachable?"
                    )
                raise state.failed(transport_failure(exc)) from exc
            raise
        state.sends += reply.sends
        state.on_wire = False
        self.http_calls += reply.sends - 1  # a token renewed after a 401 sent it twice
        after = reply.retry_after
        self.pacer.answered(
            started, reply.http_status, None if after is None else self._capped(after)
        )
        self.unanswered = 0
        problem = state.classify(reply)
        self._nothing_done(problem is not None and problem.did_nothing, reply.retry_after)
        if problem is not None:
            raise state.failed(problem)
        return reply

    def _wait(self, retry: RetryCallState) -> float:
        """The server's Retry-After, capped; else backoff with jitter. A 429 waits here for
        nothing: the shared pacer pauses every worker instead."""
        failure = retry.outcome.exception() if retry.outcome is not None else None
        if isinstance(failure, RetryableFailure):
            if failure.http_status == 429:
                return 0.0
            if failure.retry_after is not None:
                return self._capped(failure.retry_after)
        return self._backoff(retry)

    def _nothing_done(self, nothing_done: bool, retry_after: float | None) -> None:
        if not nothing_done:
            self.nothing_done_since = None
            return
        now = self._clock()
        if self.nothing_done_since is None:
            self.nothing_done_since = now
        waited = now - self.nothing_done_since
        limit = self.policy.max_throttle_wait
        if waited >= limit:
            self.stop.request(
                f"throttled or unavailable (429/503/521, a busy search engine) for {waited:.0f}s "
                f"in a row (--max-throttle-wait {limit:g}); {self.pacer.describe()}"
            )
        elif retry_after is not None and waited + self._capped(retry_after) > limit:
            self.stop.request(
                f"the server asks to wait {retry_after:.0f}s (Retry-After), past "
                f"--max-throttle-wait {limit:g}"
            )

    def _capped(self, retry_after: float) -> float:
        return min(retry_after, self.policy.max_retry_after)


class Attempts:
    """One call's attempts: what they have shown so far and, for a request, the recorder told
    of each as it happens, so the journal always knows whether its rows may be applied."""

    def __init__(
        self,
        name: str,  # for the log: a request, a read-back, a customer lookup
        request: ApiRequest,
        classify: Callable[[ApiReply], RetryableFailure | None],  # the replies to retry
        batch: Batch | None = None,  # none for a call that only reads
        recorder: Recorder | None = None,
    ) -> None:
        self.name, self.request, self.classify = name, request, classify
        self.batch, self.recorder = batch, recorder
        self.sends = 0
        self.tried = False  # a call has left (a request's intent is recorded): next, a retry
        self.counted = 0  # attempts that count against --max-attempts
        self.nothing_done = False  # recorded: every answer so far said nothing was done
        self.on_wire = False  # a request is out and its answer not yet in
        self.lost: list[str] = []  # attempts whose answer never came

    @property
    def maybe_applied(self) -> bool:
        return self.on_wire or bool(self.lost)

    def leaving(self) -> bool:
        """An attempt is about to leave, recorded first (a failed write raises Stopped); True
        for a retry."""
        retry = self.tried
        if self.batch is not None and self.recorder is not None:
            if retry:
                self.recorder.sending_again(self.batch)  # counted: a lost answer shows its sends
            else:
                self.recorder.sending(self.batch)
        self.tried, self.nothing_done, self.on_wire = True, False, True
        return retry

    def failed(self, failure: RetryableFailure) -> RetryableFailure:
        """An attempt that got no final answer; a request whose answers so far all did
        nothing is recorded as not applied."""
        self.on_wire = False
        if not failure.did_nothing:
            self.counted += 1
        if failure.maybe_applied:
            self.lost.append(failure.message)
        quiet = not self.maybe_applied and not self.nothing_done
        if quiet and self.batch is not None and self.recorder is not None:
            self.recorder.nothing_done(self.batch)
            self.nothing_done = True
        return failure


def describe(exc: BaseException) -> str:
    """An unexpected error in one line: its type and message (the first of a group's)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {snippet(str(exc)) or 'no detail'}"


def traced(request_id: str) -> str:
    """An answer's X-Cap-Requestid for a log line, when it had one."""
    return f"; X-Cap-Requestid {request_id}" if request_id else ""


def _log_retry(attempts: Attempts, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    answer_id = failure.request_id if isinstance(failure, RetryableFailure) else ""
    wait = state.upcoming_sleep
    throttled = isinstance(failure, RetryableFailure) and failure.http_status == 429
    when = "retrying when the shared pause ends" if throttled else f"retrying in {wait:.1f}s"
    log.info(
        "%s: attempt %d failed (%s%s); %s",
        attempts.name,
        state.attempt_number,
        failure,
        traced(answer_id),
        when,
        extra={
            "event": "retry",
            "request": attempts.batch.number if attempts.batch is not None else None,
            "request_id": answer_id or None,
            "attempt": state.attempt_number,
            "wait_seconds": round(wait, 3),
        },
    )


def transport_failure(exc: httpx.TransportError) -> RetryableFailure:
    name = type(exc).__name__
    code = (
        ErrorCode.TIMEOUT if isinstance(exc, httpx.TimeoutException) else ErrorCode.CONNECTION_ERROR
    )
    # Nothing reached the server on these; on the others the request may have been processed.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return RetryableFailure(code, f"{name} before sending", maybe_applied=False)
    return RetryableFailure(code, f"{name}: {str(exc) or 'no detail'}", maybe_applied=True)
