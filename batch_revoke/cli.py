"""click commands only: parse options, call the core, map exceptions to exit statuses."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click
from click.core import ParameterSource

from batch_revoke.client import CLUSTERS, BasicCredentials, credentials_from_env
from batch_revoke.config import ErrorLimit, RunConfig
from batch_revoke.errors import BatchRevokeError, ConfigError, InputError
from batch_revoke.interrupts import raising_interrupts
from batch_revoke.job import run_job
from batch_revoke.model import MAX_BATCH_SIZE, ExitStatus, IdentifierType
from batch_revoke.pacing import RateLimit
from batch_revoke.report import RunReport
from batch_revoke.startup import Interrupted, hold_interrupts, take_held
from batch_revoke.writer import write_text_atomically

if TYPE_CHECKING:  # the sandbox (aiohttp) and the live display (rich) load only when used
    from batch_revoke.sandbox import SandboxConfig

F = TypeVar("F", bound=Callable[..., Any])


def exit_status_for(exc: BaseException) -> ExitStatus:
    """The one place that turns a failure into an exit status."""
    if isinstance(exc, InputError | ConfigError | click.UsageError):
        return ExitStatus.USAGE
    return ExitStatus.ABORTED


class Failed(Exception):
    """A failure worded for people, with its exit status; shown by `_Group.main`."""

    def __init__(
        self, message: str, status: ExitStatus, level: int = logging.ERROR, *, prefix: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(status)
        self.level = level
        self.prefix = prefix  # in text only: a JSON line has its level

    def format_message(self) -> str:
        return self.message

    def show(self) -> None:
        click.echo(f"batch-revoke: {self.prefix}{self.message}", err=True)


def interrupted(exc: BaseException) -> Failed:
    """An interrupt that reached the command, not a run: before anything was sent."""
    name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
    return Failed(
        f"interrupted ({name}) before anything was sent", ExitStatus.ABORTED, logging.WARNING
    )


class _Group(click.Group):
    """The command line's one exit point: every way it ends (a summary, a refusal, click's
    usage errors, an interrupt at any moment) is one exit status and, on stderr, lines in the
    --log-format asked for."""

    log_format = "text"
    run_id = ""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        argv = list(sys.argv[1:] if args is None else args)
        # Read before click parses anything, so that its own errors come in the same format.
        self.log_format = "json" if _asks_for_json(argv) else "text"
        self.run_id = uuid.uuid4().hex[:12]
        with raising_interrupts(enabled=True):
            try:
                if (held := take_held()) is not None:  # came while Python imported the package
                    failure = interrupted(held)
                    raise Failed(
                        f"{failure.message}; nothing was created", ExitStatus.ABORTED, failure.level
                    )
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
                status = code if isinstance(code, int) else ExitStatus.OK
            except (Failed, click.ClickException) as exc:
                hold_interrupts()  # the outcome is decided: told, not cut short
                self.show(exc)
                status = exc.exit_code
            except (KeyboardInterrupt, click.exceptions.Abort) as exc:
                hold_interrupts()
                failure = interrupted(exc.__cause__ or exc)
                self.show(failure)
                status = failure.exit_code
        if standalone_mode:
            sys.exit(status)
        return status

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt as exc:  # click would print an empty line and "Aborted!"
            raise interrupted(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchRevokeError as exc:
            if ctx.meta.get("traceback"):
                raise
            raise Failed(str(exc), exit_status_for(exc), prefix="error: ") from exc
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, Failed):
            raise
        except KeyboardInterrupt as exc:
            # Interrupts during sending are handled by the core; this is before it.
            raise interrupted(exc) from exc
        except Exception as exc:
            if ctx.meta.get("traceback"):
                raise
            raise Failed(
                f"internal error: {type(exc).__name__}: {exc} "
                "(rerun with --traceback and report it)",
                exit_status_for(exc),
            ) from exc

    def show(self, exc: Failed | click.ClickException) -> None:
        """A failure on stderr: click's own wording, or one JSON object."""
        if self.log_format != "json":
            exc.show()
            return
        message = exc.format_message()
        if isinstance(exc, click.UsageError):
            command = exc.ctx.command_path if exc.ctx else "batch-revoke"
            message = f"{message} (see {command} --help)"
        level = exc.level if isinstance(exc, Failed) else logging.ERROR
        say(message, level=level, event="error", exit_status=exc.exit_code)


def _asks_for_json(argv: Sequence[str]) -> bool:
    for position, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--log-format=json" or (
            arg == "--log-format" and argv[position + 1 :][:1] == ["json"]
        ):
            return True
    return False


def say(message: str, *, level: int = logging.INFO, event: str = "log", **fields: object) -> None:
    """A line on stderr that is not a log record (a refusal, the sandbox's address), in the
    --log-format asked for, whatever the log level."""
    if cli.log_format != "json":
        click.echo(f"batch-revoke: {message}", err=True)
        return
    record = logging.makeLogRecord(
        {"msg": message, "levelno": level, "levelname": logging.getLevelName(level), **fields}
    )
    record.__dict__.setdefault("event", event)
    sys.stderr.write(JsonLines(cli.run_id).format(record) + "\n")
    sys.stderr.flush()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batch-revoke")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and the summary on stderr.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Also one line per request (and no live display)."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: every stderr line one JSON object (time, level, run_id, event, message), "
    "refusals and usage errors included (event 'error'), and the summary as a last line "
    "with event 'summary', for log collectors.",
)
@click.option(
    "--traceback", is_flag=True, help="Show the Python stack on errors (for bug reports)."
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool, log_format: str, traceback: bool) -> None:
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
    # A live display is for a person at a terminal; a log file gets plain lines.
    ctx.meta["live"] = not (quiet or verbose) and sys.stderr.isatty() and log_format == "text"
    ctx.meta["json_log"] = log_format == "json"
    cli.log_format = log_format
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        JsonLines(cli.run_id or uuid.uuid4().hex[:12])
        if log_format == "json"
        else logging.Formatter("batch-revoke: %(message)s")
    )
    root = logging.getLogger("batch_revoke")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


class JsonLines(logging.Formatter):
    """One JSON object per line. Only the message and the fields the code attaches are
    written: credentials are never in either."""

    FIELDS = ("event", "request", "attempt", "wait_seconds", "summary", "exit_status")

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "run_id": self.run_id,
            "event": "log",
            "message": record.getMessage(),
        }
        entry.update(
            (name, value)
            for name in self.FIELDS
            if (value := record.__dict__.get(name)) is not None
        )
        return json.dumps(entry)


class _Stderr:
    """sys.stderr as it is at each write: the live display redirects it, so log lines
    scroll above the display instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _apply(options: Sequence[Callable[[Any], Any]], function: F) -> F:
    """Decorate with the options in reading order, so --help lists them as written."""
    decorated: Any = function
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)


_RUN_CONFIG_DEFAULTS = {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING}


def _library_default(name: str) -> Any:
    """RunConfig's default for `name`: an option's default is the library's, defined once."""
    default = _RUN_CONFIG_DEFAULTS[name]
    return default.value if isinstance(default, IdentifierType) else default


def connection_options(function: F) -> F:
    """Where requests go and how hard they are pushed; shared by `run` and `verify`."""
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
            "--batch-size",
            type=click.IntRange(1, MAX_BATCH_SIZE),
            default=_library_default("batch_size"),
            show_default=True,
            help="revokeIssue entries per request (the API allows at most 20).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=_library_default("concurrency"),
            show_default=True,
            envvar="BATCH_REVOKE_CONCURRENCY",
            show_envvar=True,
            help="Requests in flight at once.",
        ),
        click.option(
            "--rate-limit",
            metavar="N/s|N/min|N/<secs>s",
            envvar="BATCH_REVOKE_RATE_LIMIT",
            show_envvar=True,
            help="Never start more than N requests (retries and read-backs included) in any "
            "second/minute. Capillary limits are per minute; demo clusters allow 100/min.",
        ),
        click.option(
            "--rate-window",
            type=click.FloatRange(min=0, min_open=True),
            default=_library_default("rate_window"),
            show_default=True,
            metavar="SECONDS",
            help="How long the server's rate-limit window is, when --rate-limit is not given "
            "(Capillary counts per minute). After a 429 without Retry-After, every request "
            "waits for the next window.",
        ),
        click.option(
            "--max-throttle-wait",
            type=click.FloatRange(min=0, min_open=True),
            default=_library_default("max_throttle_wait"),
            show_default=True,
            metavar="SECONDS",
            help="Stop (resumable, exit 3) after this long of 429/503/521 answers in a row. "
            "Those answers never use up --max-attempts.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=_library_default("timeout"),
            show_default=True,
            envvar="BATCH_REVOKE_TIMEOUT",
            show_envvar=True,
            help="Seconds to wait for connecting, sending, and each read.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(min=1),
            default=_library_default("max_attempts"),
            show_default=True,
            envvar="BATCH_REVOKE_MAX_ATTEMPTS",
            show_envvar=True,
            help="Tries per request on 5xx, timeouts and dropped connections (exponential "
            "backoff with jitter; Retry-After is honoured). 429, 503 and 521 say nothing was "
            "done and never use up attempts: --max-throttle-wait bounds them.",
        ),
        click.option(
            "--max-unanswered",
            type=click.IntRange(min=0),
            default=_library_default("max_unanswered"),
            show_default=True,
            help="Stop (resumable, exit 3) after this many HTTP calls in a row got no answer "
            "at all: the host is down or unreachable. 0 never stops.",
        ),
        click.option(
            "--identifier-type",
            type=click.Choice([t.value for t in IdentifierType], case_sensitive=False),
            default=_library_default("identifier_type"),
            show_default=True,
            help="What customerId holds in revokeEarn rows without an identifierType column value.",
        ),
    ]
    return _apply(options, function)


def record_options(function: F) -> F:
    """The result file and the journal beside it; shared by `run` and `verify`."""
    options = [
        click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Result CSV; its journal is written beside it as <file>.journal. "
            "Default: output/<input name>-results-<timestamp>.csv (verify: -verified-).",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue the interrupted run recorded in the journal of --output (or, "
            "without --output, the newest unfinished run of this file in --output-dir): "
            "settled rows keep their outcome, rows in flight are read back, the rest are sent.",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Replace an existing --output and its journal (otherwise refused).",
        ),
        click.option(
            "--output-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=_library_default("output_dir"),
            show_default=True,
            help="Where result files get their default dated names, and where --resume and "
            "--auto-resume look for runs.",
        ),
        click.option(
            "--sheet",
            default=_library_default("sheet"),
            metavar="NAME",
            help="For an .xlsx input: the sheet to read (default: the first).",
        ),
        click.option(
            "--excel",
            is_flag=True,
            help="Write the result file for Excel: a UTF-8 BOM (so accents show right), and a "
            "leading ' on any cell starting with = + - or @ (so none runs as a formula).",
        ),
        click.option(
            "--summary-json",
            metavar="FILE|-",
            help="Also write the summary as JSON (schema in the README) to FILE, or to stdout "
            "with -: counts per status and error code, calls, exit status, paths.",
        ),
    ]
    return _apply(options, function)


def run_options(function: F) -> F:
    """Options of `run` only, defined once with help text."""
    options = [
        click.option(
            "--auto-resume",
            is_flag=True,
            help="For a job run on a schedule: first finish every run in --output-dir that "
            "stopped before it was done (from its own copy of its input), then run INPUT once: "
            "resume its unfinished run, report a finished one (nothing sent), or start a new "
            "run with a dated result file. The same command works every night.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Validate and plan only; no HTTP call. Rows become planned/invalid/duplicate.",
        ),
        click.option(
            "--no-verify",
            is_flag=True,
            help="Leave unconfirmed rows unconfirmed instead of reading them back.",
        ),
        click.option(
            "--progress-every",
            type=click.FloatRange(min=0.1),
            default=_library_default("progress_every"),
            show_default=True,
            metavar="SECONDS",
            help="How often a progress line is logged when stderr is not a terminal (at a "
            "terminal a live display shows rows done, calls/s, the pace, counts and time left).",
        ),
        click.option(
            "--max-errors",
            metavar="N|N%",
            help="Stop (resumable, exit 3) once N rows sent were not revoked, or N% of them "
            "(counted after 100 rows have an outcome).",
        ),
    ]
    return _apply(options, function)


def sandbox_options(function: F) -> F:
    """How the sandbox behaves; shared by `sandbox` and `run --sandbox`."""
    options = [
        click.option(
            "--latency-ms",
            metavar="N|MIN-MAX",
            default="0",
            show_default=True,
            help="Delay every sandbox answer by N ms, or a random MIN-MAX ms (never blocking).",
        ),
        click.option(
            "--fault",
            "faults",
            metavar="KIND[:WHEN]",
            multiple=True,
            help="Misbehave on revoke requests (repeatable). KIND: 429, 500, 502, 503, 504, 521, "
            "drop, apply-drop, slow, non-json. WHEN: P% of requests, #N,#M by request number, "
            "or omitted for all. E.g. --fault 429:10% --fault apply-drop:#3",
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Seed for faults and ids."
        ),
        click.option(
            "--sandbox-rate-limit",
            metavar="N/min|N/s|N/<secs>s",
            help="Answer 429 above N calls per till in windows aligned to the clock (a minute "
            "starts at :00), like Capillary's per-minute limits. No Retry-After unless "
            "--retry-after is given.",
        ),
        click.option(
            "--retry-after",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Send Retry-After with 429s (Capillary documents none): the 429 fault asks for "
            "SECONDS, the rate limit for what is left of its window.",
        ),
        click.option(
            "--slow-seconds",
            type=click.FloatRange(min=0),
            default=60.0,
            show_default=True,
            help="How late a `slow` fault answers.",
        ),
        click.option(
            "--token-ttl",
            type=click.IntRange(min=1),
            default=300,
            show_default=True,
            help="Lifetime of the sandbox's OAuth tokens, in seconds.",
        ),
    ]
    return _apply(options, function)


def _sandbox_config(state_path: Path | None, options: dict[str, Any]) -> SandboxConfig:
    from batch_revoke.sandbox import (
        FaultPlan,
        FaultSpec,
        RateLimitSpec,
        SandboxConfig,
        SandboxState,
        default_state_path,
    )

    seed = options["seed"]
    state = SandboxState.load(state_path or default_state_path(), seed)
    rate = options["sandbox_rate_limit"]
    return SandboxConfig(
        state=state,
        faults=FaultPlan((FaultSpec.parse(f) for f in options["faults"]), seed),
        latency_ms=_latency(options["latency_ms"]),
        rate_limit=RateLimitSpec.parse(rate) if rate else None,
        retry_after=options["retry_after"],
        slow_seconds=options["slow_seconds"],
        token_ttl=options["token_ttl"],
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


def _given(ctx: click.Context, names: list[str]) -> list[str]:
    """The options among `names` typed on the command line (not defaults or environment)."""
    params = {param.name: param for param in ctx.command.params}
    return [
        next(opt for opt in params[name].opts if opt.startswith("--"))
        for name in names
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]


@cli.command()
@click.argument("input_path", metavar="INPUT.csv", type=click.Path(path_type=Path))
@connection_options
@record_options
@run_options
@click.option(
    "--sandbox",
    is_flag=True,
    help="Start a local sandbox of the API on a free 127.0.0.1 port and run against it "
    "(no credentials needed; nothing leaves the machine).",
)
@click.option(
    "--sandbox-state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sandbox data (JSON or CSV). Default: samples/sandbox-state.json",
)
@sandbox_options
def run(input_path: Path, **options: Any) -> None:
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
    Every request is recorded in a journal beside the result file before it is
    sent. Ctrl-C, SIGTERM or SIGHUP stop the run cleanly (a second one at once);
    after any stop, even kill -9, the same command with --resume finishes it:
      batch-revoke run INPUT.csv -o RESULT.csv --resume

    \b
    Exit status: 0 every row revoked, 1 some rows not revoked, 2 bad usage or
    unreadable input (nothing sent), 3 run stopped (credentials refused,
    interrupted, --max-errors, host unreachable, disk full): resumable.
    """
    ctx = click.get_current_context()
    sandbox, sandbox_state = options.pop("sandbox"), options.pop("sandbox_state")
    sandbox_settings = {name: options.pop(name) for name in _SANDBOX_SETTINGS}
    if not sandbox and (stray := _given(ctx, ["sandbox_state", *sandbox_settings])):
        raise ConfigError(f"{', '.join(stray)} applies to --sandbox runs only", "add --sandbox")
    if sandbox and not options["dry_run"] and (clash := _given(ctx, ["base_url", "cluster"])):
        raise ConfigError(f"--sandbox and {clash[0]} both given", "pass one of them")
    max_errors = options.pop("max_errors")
    config = replace(
        _config(input_path, options, with_host=not sandbox),
        dry_run=options["dry_run"],
        verify=not options["no_verify"],
        max_errors=ErrorLimit.parse(max_errors) if max_errors else None,
        progress_every=options["progress_every"],
    )
    if config.dry_run or not sandbox:
        credentials = None if config.dry_run else credentials_from_env(os.environ)
        _finish(_run_job(replace(config, credentials=credentials)))
    from batch_revoke.sandbox import running_sandbox

    with running_sandbox(_sandbox_config(sandbox_state, sandbox_settings)) as running:
        say(f"sandbox running on {running.base_url}")
        local = replace(
            config,
            base_url=running.base_url,
            credentials=BasicCredentials(
                running.credentials.username, running.credentials.password
            ),
            host_label="the embedded sandbox",
        )
        report = _run_job(local)
    _finish(report)


@cli.command()
@click.argument("result_path", metavar="RESULT.csv", type=click.Path(path_type=Path))
@connection_options
@record_options
def verify(result_path: Path, **options: Any) -> None:
    """Settle the unconfirmed rows of an earlier result file by reading them back.

    \b
    Each unconfirmed row's customer and badge is read back from the API:
      revoked        the enrolment / earned badge shows as revoked
      sent again     it is still active, so the lost request was never applied
      unconfirmed    the read-back failed or has a shape this version does not know
    Every other row is copied as it is. The new result file has the same columns.
    Default output: output/<name>-verified-<timestamp>.csv
    """
    config = replace(
        _config(result_path, options, with_host=True),
        settle_result=True,
        credentials=credentials_from_env(os.environ),
    )
    _finish(_run_job(config))


def _run_job(config: RunConfig) -> RunReport:
    """The run, with the live display when a person watches a terminal."""
    target = click.get_current_context().params.get("summary_json")
    if target and target != "-":
        # Found before anything is sent, not after the whole run. Its folder is made, as the
        # result file's is: a scheduled job's first night finds none.
        try:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            problem = "is a folder" if Path(target).is_dir() else ""
        except OSError as exc:
            problem = f"cannot be written ({exc.strerror or exc})"
        if problem:
            raise ConfigError(
                f"--summary-json {target} {problem}", "pass a file path, or - for stdout"
            )
    if config.dry_run or not click.get_current_context().meta.get("live"):
        return run_job(config, handle_signals=True)
    from batch_revoke.display import LiveProgress

    with LiveProgress() as live:
        return run_job(replace(config, show_progress=live, progress_every=0.5), handle_signals=True)


_SANDBOX_SETTINGS = (
    "latency_ms",
    "faults",
    "seed",
    "sandbox_rate_limit",
    "retry_after",
    "slow_seconds",
    "token_ttl",
)


def _config(input_path: Path, options: dict[str, Any], *, with_host: bool) -> RunConfig:
    """The options `run` and `verify` share, as a RunConfig."""
    base_url, cluster = options["base_url"], options["cluster"]
    if with_host and base_url and cluster:
        # The command line wins over the environment; both from one of them is a mistake.
        typed = _given(click.get_current_context(), ["base_url", "cluster"])
        if len(typed) != 1:
            where = (
                "on the command line" if typed else "in the environment (CAP_BASE_URL, CAP_CLUSTER)"
            )
            raise ConfigError(f"--base-url and --cluster both given {where}", "pass one of them")
        if typed == ["--base-url"]:
            cluster = None
        else:
            base_url = None
    rate_limit = options["rate_limit"]
    return RunConfig(
        input_path=input_path,
        output_path=options["output"],
        base_url=(base_url or (CLUSTERS[cluster] if cluster else "")) if with_host else "",
        batch_size=options["batch_size"],
        concurrency=options["concurrency"],
        rate_limit=RateLimit.parse(rate_limit) if rate_limit else None,
        timeout=options["timeout"],
        max_attempts=options["max_attempts"],
        max_unanswered=options["max_unanswered"],
        max_throttle_wait=options["max_throttle_wait"],
        rate_window=options["rate_window"],
        identifier_type=IdentifierType.parse(options["identifier_type"]) or IdentifierType.ID,
        resume=options["resume"],
        overwrite=options["overwrite"],
        auto_resume=options.get("auto_resume", False),  # `run` only
        output_dir=options["output_dir"],
        excel=options["excel"],
        sheet=options["sheet"],
    )


def _finish(report: RunReport) -> NoReturn:
    """The run is over: the summary is printed, and from here to the process's end an
    interrupt is only noted (the outcome is decided and told)."""
    hold_interrupts()
    _summarise(report)
    click.get_current_context().exit(report.exit_status)


def _summarise(report: RunReport) -> None:
    summary = "\n".join(
        [
            *(
                f"finished first, a run that had stopped: {earlier.output_path} "
                f"({earlier.tally.total} rows, exit status {int(earlier.exit_status)})"
                for earlier in report.earlier
            ),
            *([report.note] if report.note else []),
            report.text(),
        ]
    )
    resume = resume_command(sys.argv[1:], report.output_path) if report.resumable else None
    if click.get_current_context().meta.get("json_log"):
        logging.getLogger("batch_revoke").warning(
            "%s",
            summary.replace("\n", "; "),
            extra={"event": "summary", "summary": report.to_dict(resume)},
        )
    else:
        click.echo(summary, err=True)
        if resume:
            click.echo(f"to finish it: {resume}", err=True)
    target = click.get_current_context().params.get("summary_json")
    if target:
        text = json.dumps(report.to_dict(resume), indent=2) + "\n"
        if target == "-":
            click.echo(text, nl=False)
        else:
            write_text_atomically(Path(target), text)


def resume_command(argv: list[str], output: Path) -> str:
    """The command as given, with the output named and --resume added (--overwrite dropped);
    with --auto-resume, the command as given finishes the run."""
    if "--auto-resume" in argv:
        return shlex.join(["batch-revoke", *argv])
    args = [arg for arg in argv if arg != "--overwrite"]
    named = any(arg in ("-o", "--output") or arg.startswith("--output=") for arg in args)
    if not named:
        args += ["-o", str(output)]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["batch-revoke", *args])


def main() -> int:
    """The `batch-revoke` command: its exit status (`batch_revoke.__main__` exits with it)."""
    return cli.main(prog_name="batch-revoke", standalone_mode=False)


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Data to serve (JSON or CSV). Default: samples/sandbox-state.json",
)
@click.option(
    "--dump-state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the state as JSON here when stopped (also live at GET /_sandbox/state).",
)
@sandbox_options
def sandbox(port: int, state_path: Path | None, dump_state: Path | None, **settings: Any) -> None:
    """Serve a local stand-in of the Capillary badge API until Ctrl-C.

    \b
    It answers revokeIssue, revokeEarn, issueBulk, earn, the badge read-back and
    OAuth token generation like the real API, keeps state (a revoked enrolment
    stays revoked), and misbehaves on demand (--fault) to show how runs cope.
    The first line printed is the base URL; then the credentials to export.
    """
    config = _sandbox_config(state_path, settings)
    from batch_revoke.sandbox.server import bind_loopback, demo_credentials, serve_forever

    sock = bind_loopback(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    demo = demo_credentials(config.state)
    lines = [
        url,
        f"export CAP_BASE_URL={url} CAP_USERNAME={demo.username} CAP_PASSWORD={demo.password}",
    ]
    for key, secret in config.state.credentials.oauth.items():
        lines.append(f"# or OAuth: export CAP_OAUTH_KEY={key} CAP_OAUTH_SECRET={secret}")
    click.echo("\n".join(lines))
    sys.stdout.flush()
    say(
        f"sandbox serving {len(config.state.enrolments)} enrolments and "
        f"{len(config.state.earns)} earns; Ctrl-C stops it"
    )
    serve_forever(config, sock)
    if dump_state is not None:
        dump_state.write_text(json.dumps(config.state.dump(), indent=2), encoding="utf-8")
        say(f"state written to {dump_state}")
