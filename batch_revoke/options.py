"""Every option of the command line, defined once with its help text, default and environment
variable; commands pick the ones they take. Defaults are the library's (RunConfig's)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from batch_revoke import profiles
from batch_revoke.config import SANDBOX_LABEL, RetryPolicy, RunConfig
from batch_revoke.credentials import CLUSTER_ALIASES, CLUSTERS, cluster_names, credentials_from_env
from batch_revoke.errors import ConfigError
from batch_revoke.exits import Stderr
from batch_revoke.model import MAX_BATCH_SIZE, IdentifierType

if TYPE_CHECKING:
    from batch_revoke.sandbox import SandboxConfig

F = TypeVar("F", bound=Callable[..., Any])

_LIBRARY = {f.name: f.default for f in fields(RunConfig)}
_RETRY = {f.name: f.default for f in fields(RetryPolicy)}  # RunConfig.retry's


def _setting(option: str, **attrs: Any) -> Callable[[F], F]:
    """The option for RunConfig's (or its RetryPolicy's) field of its name, with the library's
    default."""
    default = (_LIBRARY | _RETRY)[option.removeprefix("--").replace("-", "_")]
    default = default.value if isinstance(default, IdentifierType) else default
    return click.option(option, default=default, show_envvar=True, **attrs)


def run_config(
    ctx: click.Context,
    params: Mapping[str, Any],
    earlier: Mapping[str, str] | None = None,
    **fixed: Any,
) -> RunConfig:
    """The RunConfig the options describe, refused when they contradict one another. `earlier`:
    the options an earlier run's journal recorded (`verify`, `retry`), taken where none is given
    and refused where one given differs, as a resume refuses it."""
    params = dict(params)
    if earlier:
        host = earlier.get("host", "")
        if host == SANDBOX_LABEL and not (params["base_url"] or params["cluster"]):
            params["sandbox"] = True
        elif host and not (params.get("sandbox") or params["base_url"] or params["cluster"]):
            params["base_url"] = host
        for name in ("identifier_type", "batch_size", "default_region"):
            if earlier.get(name) and ctx.get_parameter_source(name) is ParameterSource.DEFAULT:
                params[name] = int(earlier[name]) if name == "batch_size" else earlier[name]
    sandbox, dry_run = params.get("sandbox", False), params.get("dry_run", False)
    profile = profiles.load(params["profile"]) if params.get("profile") else None
    if profile is not None:
        params = profile.apply(ctx, params)
    if not sandbox and (stray := _typed(ctx, "sandbox_state", *_SANDBOX)):
        raise ConfigError(f"{', '.join(stray)} applies to --sandbox runs only", "add --sandbox")
    hosts = _typed(ctx, "base_url", "cluster")
    if sandbox and not dry_run and hosts:
        raise ConfigError(f"--sandbox and {hosts[0]} both given", "pass one of them")
    base_url, cluster = params["base_url"] or "", params["cluster"] or ""
    if sandbox:  # its host is the sandbox: CAP_BASE_URL and CAP_CLUSTER are not asked
        base_url = cluster = ""
    elif base_url and cluster:  # the command line wins over the environment; both from one: no
        if len(hosts) != 1:
            where = (
                "on the command line" if hosts else "in the environment (CAP_BASE_URL, CAP_CLUSTER)"
            )
            raise ConfigError(f"--base-url and --cluster both given {where}", "pass one of them")
        base_url, cluster = (base_url, "") if hosts == ["--base-url"] else ("", cluster)
    config = RunConfig(
        **{name: value for name, value in params.items() if name in _LIBRARY}
        | {
            "base_url": base_url,
            "cluster": cluster,
            "credentials": None if dry_run or sandbox else credentials_from_env(os.environ),
            "rate_limit": params["rate_limit"] or None,
            "max_errors": params.get("max_errors") or None,
            "verify": not params.get("no_verify"),
            "retry": RetryPolicy(**{name: v for name, v in params.items() if name in _RETRY}),
            "host_label": SANDBOX_LABEL if sandbox and not dry_run else "",
            **fixed,
        }
    )
    # Asked once the options are known to be right (with no host, the run refuses first). A
    # sandbox run takes a profile's (to try a login), never CAP_*'s.
    wanted = sandbox or config.base_url
    if profile is not None and not dry_run and config.credentials is None and wanted:
        config = replace(config, credentials=profiles.credentials_for(profile))
    if earlier:
        from batch_revoke.journal import JournalIdentity
        from batch_revoke.outputs import journal_path

        # A dry run has no host to compare.
        theirs = {k: v for k, v in earlier.items() if k != "host" or not dry_run}
        mine = JournalIdentity("", config.identity_options())
        journal = journal_path(config.retry_of or config.input_path)
        if (problem := JournalIdentity("", theirs).mismatch(mine, journal)) is not None:
            raise problem
    return config


def sandbox_config(state: Path | None, params: Mapping[str, Any]) -> SandboxConfig:
    """The sandbox its settings describe (`--fault 429:2%`, `--latency-ms 20-80`)."""
    from batch_revoke.sandbox import configure  # aiohttp: only for a sandbox

    given = {name: params[name] for name in _SANDBOX if name != "sandbox_rate_limit"}
    return configure(state, rate_limit=params["sandbox_rate_limit"], **given)


def _typed(ctx: click.Context, *names: str) -> list[str]:
    """The options among `names` typed on the command line (not the environment), as spelled."""
    return [
        next(opt for opt in param.opts if opt.startswith("--"))
        for param in ctx.command.params
        if param.name in names
        and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
    ]


def _together(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, listed in --help in the order given."""

    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


# --- the whole command line: before the command or after it -------------------------------


def _note(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Set stderr up as the flags of the whole command line say, typed before the command or
    after it (`batch-revoke run f.csv -q`)."""
    noted = ctx.meta.setdefault("batch_revoke.noted", set())  # shared by the group and command
    if value:  # a flag, typed
        noted.add(param.name)
    quiet, verbose = "quiet" in noted, "verbose" in noted
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    Stderr.setup(level=level, traceback="traceback" in noted)


def _noted(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """An option of the whole command line: noted in the session, not passed to the command."""
    return click.option(*decls, expose_value=False, callback=_note, **attrs)


# The options of the whole command line, taken by the group and by every command.
whole_command_line = _together(
    _noted("-q", "--quiet", is_flag=True, help="Only warnings and the summary on stderr."),
    _noted(
        "-v", "--verbose", is_flag=True, help="Also one line per request (and no live display)."
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        help="json: every stderr line one JSON object (time, level, run_id, event, message), "
        "refusals and usage errors included (event 'error'), and the summary as a last line "
        "with event 'summary', for log collectors.",
        expose_value=False,  # read before click parses anything: exits.Stderr.json
    ),
    _noted("--traceback", is_flag=True, help="Show the Python stack on errors (for bug reports)."),
)


def _profile(required: bool) -> Callable[[F], F]:
    return click.option(
        "--profile",
        envvar="BATCH_REVOKE_PROFILE",
        show_envvar=True,
        required=required,
        metavar="NAME",
        help="Settings and credentials of the profile NAME in profiles.toml (`batch-revoke "
        "profiles` shows where): options typed here win over it, it over the environment's "
        "settings. Credentials: the environment's, else the OS keyring's (`batch-revoke "
        "login`), else a hidden prompt at a terminal.",
    )


profile = _profile(required=False)
login_profile = _profile(required=True)


# --- where requests go and how hard they are pushed (`run` and `verify`) -------------------

connection = _together(
    click.option(
        "--base-url",
        envvar="CAP_BASE_URL",
        show_envvar=True,
        metavar="URL",
        help="API host root, e.g. https://eu.api.capillarytech.com (paths are fixed).",
    ),
    click.option(
        "--cluster",
        type=click.Choice(sorted([*CLUSTERS, *CLUSTER_ALIASES])),
        envvar="CAP_CLUSTER",
        show_envvar=True,
        help="Pick a documented host instead of --base-url: "
        + ", ".join(
            f"{'/'.join(cluster_names(k))}={v.removeprefix('https://')}"
            for k, v in CLUSTERS.items()
        ),
    ),
    _setting(
        "--batch-size",
        type=click.IntRange(1, MAX_BATCH_SIZE),
        help="revokeIssue entries per request (the API allows at most 20).",
    ),
    _setting(
        "--concurrency",
        type=click.IntRange(min=1),
        envvar="BATCH_REVOKE_CONCURRENCY",
        help="Requests in flight at once.",
    ),
    click.option(
        "--rate-limit",
        metavar="N/s|N/min|N/<secs>s",
        envvar="BATCH_REVOKE_RATE_LIMIT",
        show_envvar=True,
        help="Never start more than N calls (retries, read-backs and customer lookups included) "
        "in any second/minute. Capillary limits are per minute; demo clusters allow 100/min.",
    ),
    _setting(
        "--rate-window",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="How long the server's rate-limit window is, when --rate-limit is not given "
        "(Capillary counts per minute). After a 429 without Retry-After, every request "
        "waits for the next window.",
    ),
    _setting(
        "--max-throttle-wait",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Stop (resumable, exit 3) after this long of 429/503/521 answers (or a customer "
        "lookup's 461) in a row. Those answers never use up --max-attempts.",
    ),
    _setting(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        envvar="BATCH_REVOKE_TIMEOUT",
        help="Seconds to wait for connecting, sending, and each read.",
    ),
    _setting(
        "--max-attempts",
        type=click.IntRange(min=1),
        envvar="BATCH_REVOKE_MAX_ATTEMPTS",
        help="Tries per request on 5xx, timeouts and dropped connections (exponential "
        "backoff with jitter; Retry-After is honoured). 429, 503 and 521 say nothing was "
        "done and never use up attempts: --max-throttle-wait bounds them.",
    ),
    _setting(
        "--max-unanswered",
        type=click.IntRange(min=0),
        help="Stop (resumable, exit 3) after this many HTTP calls in a row got no answer "
        "at all: the host is down or unreachable. 0 never stops.",
    ),
    _setting(
        "--grace",
        type=click.FloatRange(min=0),
        envvar="BATCH_REVOKE_GRACE",
        metavar="SECONDS",
        help="After a stop (Ctrl-C, SIGTERM, SIGHUP), how long requests in flight get to finish; "
        "then they are abandoned, their rows unconfirmed until --resume reads them back. Keep "
        "it below a scheduler's own grace (Kubernetes: terminationGracePeriodSeconds).",
    ),
    _setting(
        "--identifier-type",
        type=click.Choice([t.value for t in IdentifierType], case_sensitive=False),
        help="What customerId holds in rows without an identifierType column value. For "
        "revokeIssue rows other than id, each customer is looked up first (one call each).",
    ),
    _setting(
        "--default-region",
        metavar="CODE",
        help="The country (ISO 3166 code, e.g. IN) of mobiles written without their country "
        "code (09900000013); without it such a number is invalid.",
    ),
    profile,
)


# --- the result file and the journal beside it (`run` and `verify`) ------------------------


def _output(default: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        "output_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Result CSV; its journal is written beside it as <file>.journal. Default: {default}.",
    )


output = _output("output/<input name>-results-<timestamp>.csv (verify: -verified-)")
resume = click.option(
    "--resume",
    is_flag=True,
    help="Continue the interrupted run recorded in the journal of --output (or, "
    "without --output, the newest unfinished run of this file in --output-dir): "
    "settled rows keep their outcome, rows in flight are read back, the rest are sent.",
)
overwrite = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing --output and its journal (otherwise refused).",
)
output_dir = _setting(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where result files get their default dated names, and where --resume and "
    "--auto-resume look for runs.",
)
sheet = _setting(
    "--sheet",
    show_default=False,  # "" is "the first", as the help says
    metavar="NAME",
    help="For an .xlsx input: the sheet to read (default: the first).",
)
excel = click.option(
    "--excel",
    is_flag=True,
    help="Write the result file for Excel: a UTF-8 BOM (so accents show right), and a "
    "leading ' on any cell starting with = + - or @ (so none runs as a formula).",
)
summary_json = click.option(
    "--summary-json",
    metavar="FILE|-",
    help="Also write the summary as JSON (schema: docs/scheduling.md) to FILE, or to stdout "
    "with -: counts per status and error code, calls, exit status, paths.",
)


report = click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.html",
    help="Also write an HTML report of the run (one self-contained file to mail or print: "
    "counts, what each error means and what to do, the run over time, the rows that need a "
    "person). Replaced if it exists. `batch-revoke report RESULT.csv` makes one later.",
)
results = _together(output, resume, overwrite, output_dir, sheet, excel, summary_json, report)
retry_results = _together(
    _output(
        "RESULT-retry-<timestamp>.csv beside RESULT.csv (or in --output-dir), and the "
        "chosen rows beside it as <file>-input.csv"
    ),
    overwrite,
    output_dir,
    excel,
    summary_json,
    report,
)

# --- `run` only ----------------------------------------------------------------------------

auto_resume = click.option(
    "--auto-resume",
    is_flag=True,
    help="For a job run on a schedule: first finish every run in --output-dir that "
    "stopped before it was done (from its own copy of its input), then run INPUT once: "
    "resume its unfinished run, report a finished one (nothing sent), or start a new "
    "run with a dated result file. The same command works every night.",
)

# --- `run` and `retry` ----------------------------------------------------------------------

run_and_retry = _together(
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
    _setting(
        "--progress-every",
        type=click.FloatRange(min=0.1),
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
    click.option(
        "--sandbox",
        is_flag=True,
        help="Start a local sandbox of the API on a free 127.0.0.1 port and run against it "
        "(no credentials needed; nothing leaves the machine).",
    ),
    click.option(
        "--sandbox-state",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Sandbox data (JSON or CSV). Default: samples/sandbox-state.json",
    ),
)

# --- how the sandbox behaves (`sandbox`, and `run --sandbox`) ------------------------------

# By their parameter's name, as --help lists them (`run` takes them with --sandbox only).
_SANDBOX = {
    "latency_ms": click.option(
        "--latency-ms",
        metavar="N|MIN-MAX",
        default="0",
        help="Delay every sandbox answer by N ms, or a random MIN-MAX ms (never blocking).",
    ),
    "faults": click.option(
        "--fault",
        "faults",
        metavar="KIND[:WHEN]",
        multiple=True,
        help="Misbehave on calls: revokes and customer lookups (repeatable). KIND: 429, 500, "
        "502, 503, 504, 521, drop, apply-drop, slow, non-json; a lookup's own 461 (search "
        "engine busy) and 8015 (not found). WHEN: P% of requests, #N,#M by request number, or "
        "omitted for all. E.g. --fault 429:10% --fault apply-drop:#3",
    ),
    "seed": click.option("--seed", type=int, default=0, help="Seed for faults and ids."),
    "sandbox_rate_limit": click.option(
        "--sandbox-rate-limit",
        metavar="N/min|N/s|N/<secs>s",
        help="Answer 429 above N calls per till in windows aligned to the clock (a minute "
        "starts at :00), like Capillary's per-minute limits. No Retry-After unless "
        "--retry-after is given.",
    ),
    "retry_after": click.option(
        "--retry-after",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="Send Retry-After with 429s (Capillary documents none): the 429 fault asks for "
        "SECONDS, the rate limit for what is left of its window.",
    ),
    "slow_seconds": click.option(
        "--slow-seconds",
        type=click.FloatRange(min=0),
        default=60.0,
        help="How late a `slow` fault answers.",
    ),
    "token_ttl": click.option(
        "--token-ttl",
        type=click.IntRange(min=1),
        default=300,
        help="Lifetime of the sandbox's OAuth tokens, in seconds.",
    ),
}
sandbox_settings = _together(*_SANDBOX.values())

# --- `sandbox` only ------------------------------------------------------------------------

port = click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
state = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Data to serve (JSON or CSV). Default: samples/sandbox-state.json",
)
dump_state = click.option(
    "--dump-state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the state as JSON here when stopped (also live at GET /_sandbox/state).",
)

# --- `retry` only --------------------------------------------------------------------------

retry_selection = _together(
    click.option(
        "--status",
        "statuses",
        multiple=True,
        metavar="STATUS",
        help="Retry the rows of this status (repeatable) instead of those a retry can help.",
    ),
    click.option(
        "--code",
        "codes",
        multiple=True,
        metavar="CODE",
        help="Retry the rows of this error_code (repeatable); with --status, rows of both.",
    ),
)
