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

if TYPE_CHECKING:  # `name as name`: exported, for type checkers
    from batch_revoke.config import ErrorLimit as ErrorLimit
    from batch_revoke.config import RateLimit as RateLimit
    from batch_revoke.config import RetryPolicy as RetryPolicy
    from batch_revoke.config import RunConfig as RunConfig
    from batch_revoke.credentials import BasicCredentials as BasicCredentials
    from batch_revoke.credentials import OAuthCredentials as OAuthCredentials
    from batch_revoke.credentials import credentials_from_env as credentials_from_env
    from batch_revoke.errors import AuthError as AuthError
    from batch_revoke.errors import BatchRevokeError as BatchRevokeError
    from batch_revoke.errors import ConfigError as ConfigError
    from batch_revoke.errors import InputError as InputError
    from batch_revoke.errors import RunInProgress as RunInProgress
    from batch_revoke.errors import StorageError as StorageError
    from batch_revoke.frames import read_result as read_result
    from batch_revoke.frames import revoke_frame as revoke_frame
    from batch_revoke.frames import revoke_frame_async as revoke_frame_async
    from batch_revoke.html_report import write_report as write_report
    from batch_revoke.job import run_job as run_job
    from batch_revoke.job import run_job_async as run_job_async
    from batch_revoke.model import ExitStatus as ExitStatus
    from batch_revoke.model import IdentifierType as IdentifierType
    from batch_revoke.model import Status as Status
    from batch_revoke.report import Progress as Progress
    from batch_revoke.report import RunReport as RunReport

# Imported on first use, so the command can guard its first instant (batch_revoke.interrupts)
# before the second it takes to import the rest.
_HOMES = {
    "config": ("ErrorLimit", "RateLimit", "RetryPolicy", "RunConfig"),
    "credentials": ("BasicCredentials", "OAuthCredentials", "credentials_from_env"),
    "errors": (
        "AuthError",
        "BatchRevokeError",
        "ConfigError",
        "InputError",
        "RunInProgress",
        "StorageError",
    ),
    "frames": ("read_result", "revoke_frame", "revoke_frame_async"),
    "html_report": ("write_report",),
    "job": ("run_job", "run_job_async"),
    "model": ("ExitStatus", "IdentifierType", "Status"),
    "report": ("Progress", "RunReport"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'batch_revoke' has no attribute {name!r}")
    value = getattr(import_module(f"batch_revoke.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, which are not loaded yet (a notebook completes from this)."""
    return __all__
