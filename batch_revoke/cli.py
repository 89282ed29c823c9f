"""click commands only: options -> RunConfig -> run_job -> the report on stderr (and in
--summary-json); every way a command ends becomes one exit status in exits.py."""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from batch_revoke import options
from batch_revoke.config import SANDBOX_LABEL, RunConfig, finish_command
from batch_revoke.errors import ConfigError, StorageError
from batch_revoke.exits import ExitingGroup, Stderr
from batch_revoke.interrupts import hold_interrupts
from batch_revoke.model import ExitStatus
from batch_revoke.report import resume_command
from batch_revoke.writer import write_text_atomically


@click.group(
    cls=ExitingGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True}
)
@click.version_option(package_name="batch-revoke")
@options.whole_command_line
def cli() -> None:
    """Revoke Capillary loyalty badges in bulk from a CSV file.

    Every input row gets exactly one line in the result CSV saying what happened:
    revoked, failed, invalid, duplicate, unconfirmed, not_attempted or planned.

    \b
    Try it with no credentials, against a local stand-in of the API:
      batch-revoke samples            # the sample files, into ./samples
      batch-revoke run samples/badges.csv --sandbox
    Check a file without sending anything:
      batch-revoke run revoke.csv --dry-run
    Run it for real:
      export CAP_USERNAME=till.id CAP_PASSWORD=secret
      batch-revoke run revoke.csv --cluster eu --rate-limit 100/min

    Guide: docs/index.md
    """


@cli.command()
@click.argument("input_path", metavar="INPUT.csv", type=click.Path(path_type=Path))
@options.connection
@options.results
@options.auto_resume
@options.run_and_retry
@options.sandbox_settings
@options.whole_command_line
@click.pass_context
def run(ctx: click.Context, /, **params: Any) -> ExitStatus:
    """Revoke the badges listed in INPUT.csv and write a result CSV.

    \b
    Columns (header names ignore case, spaces, _ and -):
      badgeMetaId     required
      customerId      required
      issueId         revoke this one enrolment (revokeIssue)
      earnedBadgeId   revoke this earned badge (revokeEarn)
      identifierType  id|mobile|email|externalId|cardNumber (revokeIssue rows
                      other than id are looked up first, one call per customer)
    A row with neither issueId nor earnedBadgeId revokes every enrolment of the
    customer for that badge. Other columns are copied to the result untouched.

    \b
    Credentials come from the environment:
      CAP_USERNAME + CAP_PASSWORD        Basic auth (the password is sent as MD5)
      CAP_OAUTH_KEY + CAP_OAUTH_SECRET   OAuth token, renewed before it expires
    or, with --profile NAME, from the OS keyring (`batch-revoke login`) or a
    hidden prompt at a terminal: never from options, files or shell history.

    \b
    Every request is recorded in a journal beside the result file before it is
    sent. Ctrl-C, SIGTERM or SIGHUP stop the run cleanly (a second one at once);
    after any stop, even kill -9, the same command with --resume finishes it:
      batch-revoke run INPUT.csv -o RESULT.csv --resume

    \b
    Exit status: 0 every row revoked, 1 some rows not revoked, 2 bad usage or
    unreadable input (nothing sent), 3 run stopped (credentials refused,
    interrupted, --max-errors, host unreachable, disk full): resumable.

    Guide: docs/support.md
    """
    return _run(params, options.run_config(ctx, params))


@cli.command(short_help="Settle the unconfirmed rows of a result file by reading them back.")
@click.argument("input_path", metavar="RESULT.csv", type=click.Path(path_type=Path))
@options.connection
@options.results
@options.whole_command_line
@click.pass_context
def verify(ctx: click.Context, /, **params: Any) -> ExitStatus:
    """Settle the unconfirmed rows of an earlier result file by reading them back.

    \b
    Each unconfirmed row's customer and badge is read back from the API:
      revoked        the enrolment / earned badge shows as revoked
      sent again     it is still active, so the lost request was never applied
      unconfirmed    the read-back failed or has a shape this version does not know
    Every other row is copied as it is. The new result file has the same columns.
    The host and the options a resume checks come from the run's journal beside
    RESULT.csv: one that differs is refused, as a resume refuses it.
    Default output: output/<name>-verified-<timestamp>.csv

    Guide: docs/support.md
    """
    from batch_revoke import retry as again

    stored = again.earlier_options(params["input_path"])
    if stored is not None and stored.get("host") == SANDBOX_LABEL:
        raise ConfigError(
            f"{params['input_path']} was written by a run against --sandbox, whose state "
            "ended with it: there is nothing to read back",
            "run again with --sandbox, or verify runs made against `batch-revoke sandbox`",
        )
    config = options.run_config(ctx, params, stored, input_is_result=True)
    return _run(params, config)


@cli.command(short_help="Run again the rows of a result file that can still be revoked.")
@click.argument("result_path", metavar="RESULT.csv", type=click.Path(path_type=Path))
@options.retry_selection
@options.connection
@options.retry_results
@options.run_and_retry
@options.sandbox_settings
@options.whole_command_line
@click.pass_context
def retry(ctx: click.Context, /, result_path: Path, **params: Any) -> ExitStatus:
    """Run again the rows of an earlier result file that can still be revoked.

    \b
    Chosen: the rows a retry can help (not_attempted, unconfirmed, server errors,
    429/503/521, timeouts, refused connections, client_error); never a final answer
    (404, 814, 816, badge_not_found), an invalid row or a duplicate. --status and
    --code choose instead (a row of both, when both are given). Unconfirmed rows are
    read back first: they are sent again only if the lost request was not applied.
    The options a resume checks (host, --identifier-type, --batch-size,
    --default-region) come from the earlier run's journal; others are refused.

    \b
    The chosen rows, all their columns, go to RESULT-retry-<timestamp>-input.csv and
    are run as a new run: results RESULT-retry-<timestamp>.csv and its journal,
    beside RESULT.csv (or in --output-dir, or -o). Each result row keeps where it
    came from: input_row, input_status, input_error_code.
      batch-revoke retry output/badges-results-20250101-120000.csv --dry-run
      batch-revoke retry output/badges-results-20250101-120000.csv --code http_503

    Guide: docs/support.md
    """
    from batch_revoke import retry as again

    selection = again.Selection.of(params.pop("statuses"), params.pop("codes"))
    stored = again.earlier_options(result_path)
    if stored is None and result_path.is_file():
        Stderr.say(f"no journal beside {result_path}: the options are the command line's")
    source = ctx.get_parameter_source("output_dir")
    folder = None if source is ParameterSource.DEFAULT else params["output_dir"]
    rows, output = again.paths(result_path, params["output_path"], folder, datetime.now())
    named = {"input_path": rows, "output_path": output}
    config = options.run_config(ctx, params | named, stored, retry_of=result_path)
    if rows.exists() and not config.overwrite:
        raise ConfigError(f"{rows} already exists", "pass another -o, or --overwrite")
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch, rows.name) if config.dry_run else rows
        chosen, every = again.choose(result_path, selection, target)
        if not chosen:
            Stderr.say(f"no row of {result_path} to retry: {again.described(every) or 'none'}")
            return ExitStatus.OK
        kept = f"their input: {rows}; " if not config.dry_run else ""
        Stderr.say(
            f"{'would retry' if config.dry_run else 'retrying'} {chosen.total()} rows of "
            f"{result_path} ({again.described(chosen)}); "
            f"{kept}results: {output}"
        )
        finish = finish_command(rows, output, config.identity_options())
        if config.dry_run:
            config = replace(config, input_path=target, input_name=rows)
        return _run(params, config, finish)


def _run(params: dict[str, Any], config: RunConfig, finish: str | None = None) -> ExitStatus:
    """The run, then its summary on stderr and as JSON when asked; from then on an interrupt
    is only noted: the outcome is decided."""
    sandbox = None
    if config.host_label == SANDBOX_LABEL:  # not in a dry run: the sandbox is the host
        sandbox = options.sandbox_config(params["sandbox_state"], params)
    summary_json = params["summary_json"]
    if summary_json and summary_json != "-":
        # Found before anything is sent, not after the whole run. Its folder is made, as the
        # result file's is: a scheduled job's first night finds none.
        target = Path(summary_json)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            problem = "is a folder" if target.is_dir() else ""
        except OSError as exc:
            problem = f"cannot be written ({exc.strerror or exc})"
        if problem:
            raise ConfigError(
                f"--summary-json {target} {problem}", "pass a file path, or - for stdout"
            )
    from batch_revoke.job import run_job  # --help and --version need none of the core

    # A live display when a person watches a terminal; a log file gets plain lines.
    if config.dry_run or Stderr.json or Stderr.level != logging.INFO or not sys.stderr.isatty():
        report = run_job(config, handle_signals=True, sandbox=sandbox)
    else:
        from batch_revoke.display import LiveProgress

        with LiveProgress() as live:
            shown = replace(config, show_progress=live, progress_every=0.5)
            report = run_job(shown, handle_signals=True, sandbox=sandbox)
    hold_interrupts()
    summary = report.summary()
    resume = None
    if report.resumable:
        resume = finish or resume_command(sys.argv[1:], report.output_path)
    if Stderr.json:
        oneline = summary.replace("\n", "; ")
        Stderr.say(oneline, level=logging.WARNING, event="summary", summary=report.to_dict(resume))
    else:
        click.echo(summary, err=True)
        if resume:
            click.echo(f"to finish it: {resume}", err=True)
        elif not config.dry_run:
            from batch_revoke.codes import retryable

            by_error = report.tally.by_error.items()
            if again := sum(rows for (status, code), rows in by_error if retryable(status, code)):
                retry = shlex.join(["batch-revoke", "retry", str(report.output_path)])
                click.echo(f"{again} rows can be retried: {retry}", err=True)
    if summary_json:
        text = json.dumps(report.to_dict(resume), indent=2) + "\n"
        if summary_json == "-":
            try:
                click.echo(text, nl=False)
            except OSError as exc:  # a full disk or a closed pipe: an output not written
                raise StorageError(Path("standard output"), exc.strerror or str(exc)) from exc
        else:
            write_text_atomically(Path(summary_json), text)
    return report.exit_status


@cli.command()
@click.argument("result_path", metavar="RESULT.csv", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.html",
    help="Where the report goes. Default: beside the result file, as RESULT.html.",
)
@options.whole_command_line
def report(result_path: Path, output: Path | None) -> None:
    """Write the HTML report of an earlier run's result file.

    \b
    One self-contained file (no network needed to open it; prints well): how much
    was revoked, what failed and why, what to do about it, and, from the journal
    beside the result file when there is one, how the run went over time.
    The path of the report is printed on stdout.

    Guide: docs/support.md
    """
    from batch_revoke.html_report import write_report

    click.echo(str(write_report(result_path, output)))


@cli.command()
@click.argument(
    "folder",
    default="samples",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="[FOLDER]",
)
@options.whole_command_line
def samples(folder: Path) -> None:
    """Copy the bundled sample files into FOLDER (default: ./samples).

    \b
    badges.csv is a file of every kind of row, sandbox-state.json/.csv the data
    the sandbox serves. A file already there is left as it is. Then:
      batch-revoke run samples/badges.csv --sandbox

    Guide: docs/sandbox.md
    """
    from batch_revoke.sandbox.server import default_state_path

    folder.mkdir(parents=True, exist_ok=True)
    bundled = default_state_path().parent
    for name in ("badges.csv", "sandbox-state.json", "sandbox-state.csv"):
        target = folder / name
        if target.exists():
            click.echo(f"{target}: already there, left as it is")
            continue
        shutil.copyfile(bundled / name, target)
        click.echo(str(target))


@cli.command()
@options.port
@options.state
@options.dump_state
@options.sandbox_settings
@options.whole_command_line
def sandbox(port: int, state_path: Path | None, dump_state: Path | None, **settings: Any) -> None:
    """Serve a local stand-in of the Capillary badge API until Ctrl-C.

    \b
    It answers revokeIssue, revokeEarn, issueBulk, earn, the badge read-back, the
    customer lookup and OAuth token generation like the real API, keeps state (a revoked enrolment
    stays revoked), and misbehaves on demand (--fault) to show how runs cope.
    The first line printed is the base URL; then the credentials to export.

    Guide: docs/sandbox.md
    """
    from batch_revoke.sandbox.server import bind_loopback, demo_credentials, serve_forever

    config = options.sandbox_config(state_path, settings)
    sock = bind_loopback(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    demo = demo_credentials(config.state)
    click.echo(url)
    click.echo(
        f"export CAP_BASE_URL={url} CAP_USERNAME={demo.username} CAP_PASSWORD={demo.password}"
    )
    for key, secret in config.state.credentials.oauth.items():
        click.echo(f"# or OAuth: export CAP_OAUTH_KEY={key} CAP_OAUTH_SECRET={secret}")
    Stderr.say(
        f"sandbox serving {len(config.state.enrolments)} enrolments and "
        f"{len(config.state.earns)} earns; Ctrl-C stops it"
    )
    serve_forever(config, sock)
    if dump_state is not None:
        dump_state.write_text(json.dumps(config.state.dump(), indent=2), encoding="utf-8")
        Stderr.say(f"state written to {dump_state}")


@cli.command()
@options.login_profile
@click.option(
    "--sandbox",
    is_flag=True,
    help="Check them against a local sandbox of the API (its till: demo.till / demo-password).",
)
@options.whole_command_line
def login(profile: str, sandbox: bool) -> None:
    """Check a profile's credentials against the API and keep them in the OS keyring.

    \b
    Asks for the password (hidden; and the till id if the profile has none), or
    for the OAuth secret if the profile has an oauth_key, makes one call that
    changes nothing (a customer lookup of a value that cannot exist, or the OAuth
    token call) to the profile's cluster or base_url, and stores them only if
    the API accepts them. Then:
      batch-revoke run revoke.csv --profile NAME
    A server without an OS keyring: set CAP_USERNAME/CAP_PASSWORD in the job's
    environment, or write credentials = "prompt" in the profile.

    Guide: docs/support.md
    """
    from batch_revoke import profiles

    click.echo(profiles.login(profiles.load(profile), sandbox), err=True)


@cli.command(name="profiles")
@options.whole_command_line
def list_profiles() -> None:
    """Show where profiles.toml is, and each profile's settings.

    \b
    Each profile: its settings, where its credentials come from, and whether
    the OS keyring holds them (never the secret itself). When the file is not
    there yet, a sample to paste into it.

    Guide: docs/support.md
    """
    from batch_revoke import profiles

    click.echo(str(profiles.profiles_path()))
    found = profiles.read_all()
    if not found:
        click.echo(f"(not there yet) a sample to paste into it:\n\n{profiles.SAMPLE}", nl=False)
    for name, profile in found.items():
        settings = " ".join(f"{k}={v}" for k, v in profile.settings.items())
        click.echo(f"[{name}] {settings} username={profile.username}: {profiles.held(profile)}")
