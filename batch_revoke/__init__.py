"""Revoke Capillary loyalty badges in bulk from a CSV file.

from batch_revoke import RunConfig, run_job
report = run_job(RunConfig("revoke.csv", base_url="https://eu.api.capillarytech.com",
                           credentials=BasicCredentials("till", "password"),
                           rate_limit="100/min"))
report.exit_status, report.tally.by_status, report.output_path
"""

from batch_revoke.client import BasicCredentials, OAuthCredentials
from batch_revoke.errors import BatchRevokeError, ConfigError, InputError, StorageError
from batch_revoke.job import ErrorLimit, RunConfig, RunReport, run_job, run_job_async
from batch_revoke.model import ExitStatus, Status
from batch_revoke.pacing import RateLimit

__all__ = [
    "BasicCredentials",
    "BatchRevokeError",
    "ConfigError",
    "ErrorLimit",
    "ExitStatus",
    "InputError",
    "OAuthCredentials",
    "RateLimit",
    "RunConfig",
    "RunReport",
    "Status",
    "StorageError",
    "run_job",
    "run_job_async",
]
