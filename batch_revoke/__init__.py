"""Revoke Capillary loyalty badges in bulk from a CSV file.

from batch_revoke import RunConfig, run_job
report = run_job(RunConfig("revoke.csv", base_url="https://eu.api.capillarytech.com",
                           credentials=BasicCredentials("till", "password"),
                           rate_limit="100/min"))
report.exit_status, report.tally.by_status, report.output_path
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batch_revoke.config import ErrorLimit, RateLimit, RetryPolicy, RunConfig
    from batch_revoke.credentials import (
        BasicCredentials,
        OAuthCredentials,
        credentials_from_env,
    )
    from batch_revoke.errors import (
        AuthError,
        BatchRevokeError,
        ConfigError,
        InputError,
        RunInProgress,
        StorageError,
    )
    from batch_revoke.frames import read_result, revoke_frame, revoke_frame_async
    from batch_revoke.html_report import write_report
    from batch_revoke.job import run_job, run_job_async
    from batch_revoke.model import ExitStatus, IdentifierType, Status
    from batch_revoke.report import Progress, RunReport

# Imported on first use, so the command can guard its first instant (batch_revoke.startup)
# before the second it takes to import the rest.
_HOMES = {
    "BasicCredentials": "credentials",
    "OAuthCredentials": "credentials",
    "credentials_from_env": "credentials",
    "BatchRevokeError": "errors",
    "AuthError": "errors",
    "ConfigError": "errors",
    "InputError": "errors",
    "RunInProgress": "errors",
    "StorageError": "errors",
    "ErrorLimit": "config",
    "RetryPolicy": "config",
    "RunConfig": "config",
    "Progress": "report",
    "RunReport": "report",
    "run_job": "job",
    "run_job_async": "job",
    "ExitStatus": "model",
    "IdentifierType": "model",
    "Status": "model",
    "RateLimit": "config",
    "write_report": "html_report",
    "revoke_frame": "frames",
    "revoke_frame_async": "frames",
    "read_result": "frames",
}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'batch_revoke' has no attribute {name!r}")
    value = getattr(import_module(f"batch_revoke.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, which are not loaded yet (a notebook completes from this)."""
    return sorted(__all__)


__all__ = [
    "AuthError",
    "BasicCredentials",
    "BatchRevokeError",
    "ConfigError",
    "ErrorLimit",
    "ExitStatus",
    "IdentifierType",
    "InputError",
    "OAuthCredentials",
    "Progress",
    "RateLimit",
    "RetryPolicy",
    "RunConfig",
    "RunInProgress",
    "RunReport",
    "Status",
    "StorageError",
    "credentials_from_env",
    "read_result",
    "revoke_frame",
    "revoke_frame_async",
    "run_job",
    "run_job_async",
    "write_report",
]
