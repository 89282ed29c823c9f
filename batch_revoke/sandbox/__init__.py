"""A local stand-in of Capillary's badge API, so batch-revoke runs with no credentials."""

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
    "default_state_path",
    "make_app",
    "running_sandbox",
]
