"""How a call waits before it is retried: tenacity's wait that honours Retry-After, within
the run's policy (config.RetryPolicy: attempts, backoff, how long a Retry-After or throttling
is borne)."""

from __future__ import annotations

from tenacity import RetryCallState
from tenacity.wait import wait_base

from batch_revoke.answers import RetryableFailure


class WaitRetryAfter(wait_base):
    """Honour the server's Retry-After; otherwise exponential backoff with jitter. A 429 waits
    here for nothing: the shared pacer pauses every worker instead."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, RetryableFailure):
            if failure.http_status == 429:
                return 0.0
            if failure.retry_after is not None:
                return min(failure.retry_after, self.cap)
        return self.fallback(retry_state)
