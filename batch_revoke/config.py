"""The run's settings, RunConfig (and its parts ErrorLimit, RateLimit, RetryPolicy), and their
checks: one place (click's ranges only mirror them)."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_revoke.credentials import (
    CLUSTER_ALIASES,
    CLUSTERS,
    NO_CREDENTIALS_FIX,
    Credentials,
    check_base_url,
)
from batch_revoke.errors import ConfigError
from batch_revoke.model import MAX_BATCH_SIZE, IdentifierType

if TYPE_CHECKING:
    from batch_revoke.report import Progress

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|second|m|min|minute)\s*")


@dataclass(frozen=True, slots=True)
class ErrorLimit:
    """--max-errors: a number of rows, or a share of the rows that have an outcome."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> ErrorLimit:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
        problem = f"--max-errors {text!r} is not a number of rows or a percentage"
        if match:
            number, percent = match.group(1), bool(match.group(2))
            if percent and 0 < float(number) <= 100:
                return cls(percent=float(number))
            if not percent and number.isdigit() and int(number) > 0:
                return cls(count=int(number))
            problem = f"--max-errors {text!r} is below 1 row" + " or above 100%" * percent
        raise ConfigError(
            problem, "e.g. --max-errors 50 or --max-errors 5%; leave it out for no limit"
        )

    def exceeded(self, errors: int, answered: int) -> bool:
        if self.count is not None:
            return errors >= self.count
        if self.percent is None or answered < 100:  # a share of fewer rows says little
            return False
        return 100 * errors / answered >= self.percent

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """--rate-limit: at most `count` calls started in any `period` seconds."""

    count: int
    period: float  # seconds

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        match = _RATE.fullmatch(text)
        if match:
            count, size = int(match.group(1)), float(match.group(2) or 1)
            period = size * (60.0 if match.group(3).startswith("m") else 1.0)
            if count >= 1 and period > 0:
                return cls(count, period)
        raise ConfigError(
            f"rate limit {text!r} is not N/s or N/min",
            "e.g. --rate-limit 100/min (Capillary demo clusters allow 100 per minute)",
        )

    def __str__(self) -> str:
        if self.period == 60.0:
            return f"{self.count}/min"
        return f"{self.count}/s" if self.period == 1.0 else f"{self.count}/{self.period:g}s"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a call is retried; the sender's tenacity loop follows it."""

    max_attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 300.0  # longer Retry-After values are capped, not obeyed blindly
    max_throttle_wait: float = 1800.0  # answers that did nothing, in a row, before stopping


DEFAULT_FOLDER = Path("output")  # where default-named result files go
SANDBOX_LABEL = "the embedded sandbox"  # the host a journal records for a --sandbox run


@dataclass(frozen=True)
class RunConfig:
    input_path: Path
    output_path: Path | None = None  # None: output/<input name>-results-<timestamp>.csv
    base_url: str = ""
    credentials: Credentials | None = None
    dry_run: bool = False
    batch_size: int = MAX_BATCH_SIZE
    concurrency: int = 4
    rate_limit: RateLimit | None = None
    timeout: float = 30.0
    retry: RetryPolicy = RetryPolicy()  # --max-attempts, --max-throttle-wait
    identifier_type: IdentifierType = IdentifierType.ID
    progress_every: float = 15.0  # seconds between progress reports
    show_progress: Callable[[Progress], None] | None = None  # a live display; None: log lines
    resume: bool = False  # continue the run recorded in the output's journal
    overwrite: bool = False  # replace an existing --output (and its journal)
    verify: bool = True  # settle unconfirmed rows by reading them back
    max_errors: ErrorLimit | None = None
    max_unanswered: int = 20  # stop after this many calls in a row got no answer; 0: never
    rate_window: float = 60.0  # the server's rate-limit window when --rate-limit is not given
    grace: float = 10.0  # seconds requests in flight get to finish after a stop
    host_label: str = ""  # what the journal records as the host, when base_url is not stable
    input_is_result: bool = False  # an earlier result file (verify): unconfirmed rows read back
    input_name: Path | None = None  # the input as named to people, when input_path is a copy
    retry_of: Path | None = None  # `retry`: the earlier result file its rows come from
    excel: bool = False  # the result file for Excel: a BOM, and no cell runs as a formula
    sheet: str = ""  # of an .xlsx input; "": the first
    auto_resume: bool = False  # for schedulers: finish any run stopped earlier, then this input
    output_dir: Path = DEFAULT_FOLDER  # where default-named result files go
    cluster: str = ""  # a documented host by name (CLUSTERS), instead of base_url
    report: Path | None = None  # the HTML report of the run, written when it ends
    default_region: str | None = None  # of mobiles written without their country code, e.g. IN

    @property
    def shown_input(self) -> Path:
        return self.input_name or self.input_path

    def __post_init__(self) -> None:
        # Library callers may pass text where the CLI passes parsed values; anything else is
        # refused here, at construction, not half-way through a run.
        if self.cluster:
            named = self.cluster if self.cluster in CLUSTERS else CLUSTER_ALIASES.get(self.cluster)
            if named is None:
                raise ConfigError(
                    f"cluster {self.cluster!r} is unknown", f"use one of {', '.join(CLUSTERS)}"
                )
            object.__setattr__(self, "cluster", named)  # by its name in the vendor's host list
            if self.base_url and self.base_url != CLUSTERS[self.cluster]:
                raise ConfigError("a base URL and a cluster both given", "pass one of them")
            object.__setattr__(self, "base_url", CLUSTERS[self.cluster])
        for name, readable, kept, read, example in _SPELLED:
            value = getattr(self, name)
            if isinstance(value, readable) and not isinstance(value, bool):
                object.__setattr__(self, name, read(str(value)))
            elif not isinstance(value, kept):
                raise TypeError(f"RunConfig.{name} must be {example}, not {value!r}")

    def check_options(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"--batch-size {self.batch_size} is out of range", "use 1 to 20")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency {self.concurrency} is below 1", "use 1 or more")
        retry = self.retry
        if retry.max_attempts < 1:
            raise ConfigError(f"--max-attempts {retry.max_attempts} is below 1", "use 1 or more")
        if not retry.max_throttle_wait > 0:
            raise ConfigError(
                f"--max-throttle-wait {retry.max_throttle_wait} is not positive",
                "use seconds, e.g. 1800",
            )
        if not self.rate_window > 0:
            raise ConfigError(f"--rate-window {self.rate_window} is not positive", "e.g. 60")
        if not self.grace >= 0:
            raise ConfigError(f"--grace {self.grace} is negative", "use seconds, e.g. 10")
        if not self.timeout > 0:
            raise ConfigError(f"--timeout {self.timeout} is not positive", "use seconds, e.g. 30")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite both given", "pass one of them")
        if self.resume and self.dry_run:
            raise ConfigError("--resume and --dry-run both given", "a dry run has no journal")
        if self.auto_resume and self.input_is_result:
            raise ConfigError("--auto-resume is for `run`", "leave it out of `verify`")
        if self.auto_resume and (self.resume or self.overwrite or self.dry_run):
            other = "--resume" if self.resume else "--overwrite" if self.overwrite else "--dry-run"
            raise ConfigError(
                f"--auto-resume and {other} both given",
                "--auto-resume resumes what is unfinished and starts what is new by itself",
            )

    def check_connection(self) -> None:
        if self.dry_run:
            return
        if not self.base_url:
            raise ConfigError(
                "no API host",
                "pass --cluster eu|in|apac2|us|cn, --base-url URL or set CAP_BASE_URL",
            )
        check_base_url(self.base_url)
        if self.credentials is None:
            raise ConfigError("no credentials", NO_CREDENTIALS_FIX)

    def identity_options(self) -> dict[str, str]:
        """The options a resume must repeat: they change what is sent, or where."""
        return {
            "host": self.host_label or self.base_url.rstrip("/"),
            "identifier_type": self.identifier_type.value,
            "batch_size": str(self.batch_size),
            # It changes which customer a national mobile names. A journal written before
            # the option has no such key, and is not asked to match it.
            "default_region": self.default_region or "",
        }


def _identifier_type(text: str) -> IdentifierType:
    parsed = IdentifierType.parse(text)
    if parsed is None:
        raise ConfigError(
            f"identifier_type {text!r} is unknown", f"use one of {', '.join(IdentifierType)}"
        )
    return parsed


def _region_code(text: str) -> str:
    from batch_revoke.mobiles import region_code  # phonenumbers: only with a region

    return region_code(text)


# The settings a library caller may spell as the command line does: the types each is read
# from, and how; the types it is kept as; else a TypeError with an example. Text that names no
# choice is the ConfigError the command line gives for it.
_SPELLED: tuple[tuple[str, Any, Any, Callable[[str], object], str], ...] = (
    ("input_path", str, Path, Path, "a path (str or Path)"),
    ("output_path", str, Path | None, Path, "a path (str or Path)"),
    ("output_dir", str, Path, Path, "a path (str or Path)"),
    ("rate_limit", str, RateLimit | None, RateLimit.parse, "e.g. '100/min'"),
    ("identifier_type", str, IdentifierType, _identifier_type, "e.g. 'mobile'"),
    ("max_errors", str | int, ErrorLimit | None, ErrorLimit.parse, "e.g. 50 or '5%'"),
    ("default_region", str, type(None), _region_code, "e.g. 'IN'"),
)


def estimate(calls: int, limit: RateLimit | None, lookups: int = 0) -> str:
    """ "1,204 calls: about 12 min at 100/min": under a rate limit, time is calls."""
    text = f"{calls:,} calls"
    if lookups:
        text += f" ({lookups:,} lookups, {calls - lookups:,} revokes)"
    if limit is None:
        return f"{text} (pass --rate-limit for how long they take)"
    seconds = calls / limit.count * limit.period
    took = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{math.ceil(seconds / 60)} min"
    return f"{text}: about {took} at {limit}"


def resume_options(options: Mapping[str, str], command: str = "run") -> list[str]:
    """`RunConfig.identity_options` as a command line says them (`verify` takes no --sandbox
    and no --batch-size)."""
    host = options.get("host", "")
    args: list[str] = []
    if host == SANDBOX_LABEL:
        args += ["--sandbox"] if command == "run" else []
    elif host:
        cluster = next((name for name, url in CLUSTERS.items() if url == host), None)
        args += ["--cluster", cluster] if cluster else ["--base-url", host]
    if options.get("identifier_type", "id") != "id":
        args += ["--identifier-type", options["identifier_type"]]
    if options.get("batch_size", str(MAX_BATCH_SIZE)) != str(MAX_BATCH_SIZE) and command == "run":
        args += ["--batch-size", options["batch_size"]]
    if options.get("default_region"):
        args += ["--default-region", options["default_region"]]
    return args


def finish_command(input_path: str | Path, output: Path, options: Mapping[str, str]) -> str:
    """The command that finishes a stopped run, from its recorded options."""
    args = ["batch-revoke", "run", str(input_path), *resume_options(options)]
    return shlex.join([*args, "-o", str(output), "--resume"])
