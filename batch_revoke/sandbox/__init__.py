"""A local stand-in of Capillary's badge API, so batch-revoke runs with no credentials."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from batch_revoke.errors import ConfigError
from batch_revoke.sandbox.faults import FaultKind, FaultPlan, FaultSpec, RateLimitSpec
from batch_revoke.sandbox.server import (
    RunningSandbox,
    SandboxConfig,
    default_state_path,
    make_app,
    running_sandbox,
)
from batch_revoke.sandbox.state import SandboxState

__all__ = [
    "FaultKind",
    "FaultPlan",
    "FaultSpec",
    "RateLimitSpec",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "configure",
    "default_state_path",
    "make_app",
    "running_sandbox",
]


def configure(
    state_path: Path | None = None,
    *,
    latency_ms: str = "0",
    faults: Iterable[str] = (),
    seed: int = 0,
    rate_limit: str | None = None,
    retry_after: float | None = None,
    slow_seconds: float = 60.0,
    token_ttl: int = 300,
) -> SandboxConfig:
    """A sandbox as the command line describes it (`--fault 429:2%`, `--latency-ms 20-80`)."""
    return SandboxConfig(
        state=SandboxState.load(state_path or default_state_path(), seed),
        faults=FaultPlan((FaultSpec.parse(fault) for fault in faults), seed),
        latency_ms=_latency(latency_ms),
        rate_limit=RateLimitSpec.parse(rate_limit) if rate_limit else None,
        retry_after=retry_after,
        slow_seconds=slow_seconds,
        token_ttl=token_ttl,
        seed=seed,
    )


def _latency(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        bounds = (-1.0, -1.0)
    if not 0 <= bounds[0] <= bounds[1]:
        raise ConfigError(f"--latency-ms {text!r} is not N or MIN-MAX", "e.g. 50 or 20-80")
    return bounds
