"""click commands only: parse options, call the core, map exceptions to exit statuses."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batch_revoke.client import CLUSTERS, credentials_from_env
from batch_revoke.errors import BatchRevokeError, ConfigError, InputError
from batch_revoke.job import RunConfig, RunReport, run_job
from batch_revoke.model import MAX_BATCH_SIZE, ExitStatus, IdentifierType
from batch_revoke.sender import RateLimit
from batch_revoke.writer import format_summary

F = TypeVar("F", bound=Callable[..., Any])


def exit_status_for(exc: BaseException) -> ExitStatus:
    """The one place that turns a failure into an exit status."""
    if isinstance(exc, InputError | ConfigError | click.UsageError):
        return ExitStatus.USAGE
    return ExitStatus.ABORTED


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchRevokeError as exc:
            if ctx.meta.get("traceback"):
                raise
            click.echo(f"batch-revoke: error: {exc}", err=True)
            ctx.exit(exit_status_for(exc))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if ctx.meta.get("traceback"):
                raise
            click.echo(
                f"batch-revoke: internal error: {type(exc).__name__}: {exc} "
                "(rerun with --traceback and report it)",
                err=True,
            )
            ctx.exit(exit_status_for(exc))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batch-revoke")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and the summary on stderr.")
@click.option(
    "--traceback", is_flag=True, help="Show the Python stack on errors (for bug reports)."
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, traceback: bool) -> None:
    """Revoke Capillary loyalty badges in bulk from a CSV file.

    Every input row gets exactly one line in the result CSV saying what happened:
    revoked, failed, invalid, duplicate, unconfirmed, not_attempted or planned.

    \b
    Try it with no credentials, against a local stand-in of the API:
      batch-revoke run samples/badges.csv --sandbox
    Check a file without sending anything:
      batch-revoke run revoke.csv --dry-run
    Run it for real:
      export CAP_USERNAME=till.id CAP_PASSWORD=secret
      batch-revoke run revoke.csv --cluster eu --rate-limit 100/min
    """
    ctx.meta["traceback"] = traceback
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("batch-revoke: %(message)s"))
    root = logging.getLogger("batch_revoke")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def run_options(function: F) -> F:
    """Options of `run`, defined once with help text and the environment variable a
    scheduler would set."""
    options = [
        click.option(
            "--base-url",
            envvar="CAP_BASE_URL",
            show_envvar=True,
            metavar="URL",
            help="API host root, e.g. https://eu.api.capillarytech.com (paths are fixed).",
        ),
        click.option(
            "--cluster",
            type=click.Choice(sorted(CLUSTERS)),
            envvar="CAP_CLUSTER",
            show_envvar=True,
            help="Pick a documented host instead of --base-url: "
            + ", ".join(f"{k}={v.removeprefix('https://')}" for k, v in CLUSTERS.items()),
        ),
        click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Result CSV. Default: output/<input name>-results-<timestamp>.csv",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Validate and plan only; no HTTP call. Rows become planned/invalid/duplicate.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1, MAX_BATCH_SIZE),
            default=MAX_BATCH_SIZE,
            show_default=True,
            help="revokeIssue entries per request (the API allows at most 20).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=4,
            show_default=True,
            envvar="BATCH_REVOKE_CONCURRENCY",
            show_envvar=True,
            help="Requests in flight at once.",
        ),
        click.option(
            "--rate-limit",
            metavar="N/s|N/min",
            envvar="BATCH_REVOKE_RATE_LIMIT",
            show_envvar=True,
            help="Never start more than N requests (retries included) in any second/minute. "
            "Capillary limits are per minute; demo clusters allow 100/min.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=30.0,
            show_default=True,
            envvar="BATCH_REVOKE_TIMEOUT",
            show_envvar=True,
            help="Seconds to wait for connecting, sending, and each read.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(min=1),
            default=5,
            show_default=True,
            envvar="BATCH_REVOKE_MAX_ATTEMPTS",
            show_envvar=True,
            help="Tries per request on 429, 5xx, timeouts and dropped connections "
            "(exponential backoff with jitter; Retry-After is honoured).",
        ),
        click.option(
            "--identifier-type",
            type=click.Choice([t.value for t in IdentifierType], case_sensitive=False),
            default=IdentifierType.ID.value,
            show_default=True,
            help="What customerId holds in revokeEarn rows without an identifierType column value.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command()
@click.argument("input_path", metavar="INPUT.csv", type=click.Path(path_type=Path))
@run_options
def run(
    input_path: Path,
    base_url: str | None,
    cluster: str | None,
    output: Path | None,
    dry_run: bool,
    batch_size: int,
    concurrency: int,
    rate_limit: str | None,
    timeout: float,
    max_attempts: int,
    identifier_type: str,
) -> None:
    """Revoke the badges listed in INPUT.csv and write a result CSV.

    \b
    Columns (header names ignore case, spaces, _ and -):
      badgeMetaId     required
      customerId      required
      issueId         revoke this one enrolment (revokeIssue)
      earnedBadgeId   revoke this earned badge (revokeEarn)
      identifierType  id|mobile|email|externalId|cardNumber, for revokeEarn rows
    A row with neither issueId nor earnedBadgeId revokes every enrolment of the
    customer for that badge. Other columns are copied to the result untouched.

    \b
    Credentials come from the environment only:
      CAP_USERNAME + CAP_PASSWORD        Basic auth (the password is sent as MD5)
      CAP_OAUTH_KEY + CAP_OAUTH_SECRET   OAuth token, renewed before it expires

    \b
    Exit status: 0 every row revoked, 1 some rows not revoked, 2 bad usage or
    unreadable input (nothing sent), 3 run aborted (credentials refused, Ctrl-C).
    """
    if base_url and cluster:
        raise ConfigError("--base-url and --cluster both given", "pass one of them")
    config = RunConfig(
        input_path=input_path,
        output_path=output,
        base_url=base_url or (CLUSTERS[cluster] if cluster else ""),
        credentials=None if dry_run else credentials_from_env(os.environ),
        dry_run=dry_run,
        batch_size=batch_size,
        concurrency=concurrency,
        rate_limit=RateLimit.parse(rate_limit) if rate_limit else None,
        timeout=timeout,
        max_attempts=max_attempts,
        identifier_type=IdentifierType.parse(identifier_type) or IdentifierType.ID,
    )
    _finish(run_job(config))


def _finish(report: RunReport) -> None:
    summary = format_summary(
        report.tally,
        report.output_path,
        report.elapsed,
        dry_run=report.dry_run,
        aborted=report.aborted,
    )
    click.echo(summary, err=True)
    sys.exit(report.exit_status)


def main() -> None:
    cli(prog_name="batch-revoke")
