"""What several test modules share: sample paths, request batches, the CLI (in process and
as a subprocess), the sandbox as a real server, and waiting on events. Test modules import
these from here, never from one another."""

from __future__ import annotations

import asyncio
import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from batch_revoke.chunker import Planner, Validator
from batch_revoke.cli import cli
from batch_revoke.client import basic_header
from batch_revoke.config import RateLimit
from batch_revoke.journal import Journal, JournalIdentity
from batch_revoke.model import Batch, IdentifierType, Mode, Record, Row
from batch_revoke.pacing import Pacer
from batch_revoke.sandbox import (
    FaultPlan,
    FaultSpec,
    SandboxConfig,
    SandboxState,
    running_sandbox,
)
from batch_revoke.sandbox.server import RunningSandbox
from batch_revoke.source import map_fields

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "badges.csv"
SAMPLE_STATE = ROOT / "samples" / "sandbox-state.json"
HEADER = "badgeMetaId,customerId,issueId,earnedBadgeId,identifierType"


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write text (or bytes) to a CSV file in tmp_path and return its path."""

    def write(content: str | bytes, name: str = "input.csv") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return write


# --- batches, for what is sent and what an answer means -------------------------------------


def issue_batch(*rows: tuple[str, str], badge: str = "B1", number: int = 1) -> Batch:
    """A revokeIssuals batch of (customerId, issueId) pairs, rows numbered from 1."""
    built = tuple(Row(i, badge, c, issue) for i, (c, issue) in enumerate(rows, start=1))
    return Batch(number, Mode.ISSUALS, badge, built)


def customers_batch(*customers: str, badge: str = "B1") -> Batch:
    built = tuple(Row(i, badge, c) for i, c in enumerate(customers, start=1))
    return Batch(1, Mode.CUSTOMERS, badge, built)


def earn_batch(
    customer: str = "566135941",
    earned: str = "E1",
    identifier: IdentifierType = IdentifierType.ID,
    badge: str = "B3",
) -> Batch:
    return Batch(1, Mode.EARN, badge, (Row(1, badge, customer, "", earned, identifier),))


# --- a run's deciding parts, without HTTP ------------------------------------------------


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A new journal beside tmp_path/out.csv, closed (and its lock released) after the test."""
    opened = Journal.create(
        tmp_path / "out.csv.journal",
        JournalIdentity("0" * 64, {"host": "https://eu.example", "batch_size": "20"}),
    )
    yield opened
    opened.close()


def planner(columns: str = "badgeMetaId,customerId,issueId", batch_size: int = 20) -> Planner:
    """A planner for an input with these columns (a comma-separated header)."""
    names = tuple(columns.split(","))
    return Planner(Validator(map_fields(Path("input.csv"), names)), batch_size)


def records(*lines: str, first: int = 1) -> list[Record]:
    """Records of comma-separated values, numbered from `first`."""
    return [Record(n, tuple(line.split(","))) for n, line in enumerate(lines, start=first)]


# The Validator's two paths, for a test that one odd record is judged alike on each: a
# chunk of usual records is checked a column at a time; a record of a file with an
# identifierType column, or a customer with Excel's "keep as text" mark, one record at a
# time. `odd` takes the record's customerId and issueId.
EVERY_VALIDATION_PATH = pytest.mark.parametrize(
    ("columns", "neighbour", "odd"),
    [
        pytest.param(
            "badgeMetaId,customerId,issueId", "B1,8,I2", "B1,{customer},{issue}", id="columns"
        ),
        pytest.param(
            "badgeMetaId,customerId,issueId,identifierType",
            "B1,a@b.c,I2,email",
            "B1,{customer},{issue},",
            id="typed-file",
        ),
        pytest.param(
            "badgeMetaId,customerId,issueId", "B1,8,I2", "B1,'{customer},{issue}", id="full-checks"
        ),
    ],
)


# --- the pace, on a clock that only its sleeps move ------------------------------------------


class Clock:
    """Monotonic and wall time together; sleeping moves both."""

    def __init__(self, wall: float = 1_000_020.0) -> None:  # 20 s into a minute
        self.now = 0.0
        self.offset = wall

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.offset

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def pacer(clock: Clock, limit: RateLimit | None = None, window: float = 60.0) -> Pacer:
    return Pacer(limit, window, clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep)


class Server:
    """Allows `limit` calls per clock-aligned window and answers 429 above it; and, with
    `stray`, answers that share of calls 429 at random, as a gateway's burst limiter or
    another job on the till does."""

    def __init__(
        self,
        clock: Clock,
        limit: int | None,
        period: float = 60.0,
        stray: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.clock, self.limit, self.period = clock, limit, period
        self.stray, self.rng = stray, random.Random(seed)
        self.windows: dict[int, int] = {}
        self.throttled = 0

    def call(self) -> int:
        window = int(self.clock.wall() // self.period)
        stray = self.stray and self.rng.random() < self.stray
        if stray or (self.limit is not None and self.windows.get(window, 0) >= self.limit):
            self.throttled += 1
            return 429
        self.windows[window] = self.windows.get(window, 0) + 1
        return 200


# --- the command line -----------------------------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None):
    """The CLI in process, with no credentials or host from the environment."""
    clean = {
        "CAP_USERNAME": "",
        "CAP_PASSWORD": "",
        "CAP_OAUTH_KEY": "",
        "CAP_OAUTH_SECRET": "",
        "CAP_BASE_URL": "",
    }
    return CliRunner().invoke(cli, list(args), env={**clean, **(env or {})})


def read_rows(path: Path) -> list[dict[str, str]]:
    """A result file's rows."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the sandbox as a real server, and the CLI as a subprocess ------------------------------


@contextmanager
def sandbox(*faults: str, **settings) -> Iterator[tuple[RunningSandbox, SandboxState]]:
    state = SandboxState.load(SAMPLE_STATE)
    config = SandboxConfig(
        state=state, faults=FaultPlan((FaultSpec.parse(f) for f in faults), seed=1), **settings
    )
    with running_sandbox(config) as running:
        yield running, state


@contextmanager
def api_client(running: RunningSandbox) -> Iterator[httpx.Client]:
    """Calls to the sandbox by hand, as its demo till (Basic auth)."""
    headers = {"Authorization": basic_header(running.credentials)}
    with httpx.Client(base_url=running.base_url, headers=headers) as http:
        yield http


def cli_env(running: RunningSandbox | None, env: dict[str, str] | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAP_")}
    if running is not None:
        environ.update(
            CAP_BASE_URL=running.base_url,
            CAP_USERNAME=running.credentials.username,
            CAP_PASSWORD=running.credentials.password,
        )
    environ.update(env or {})
    return environ


def default_sigint() -> None:
    """For a CLI subprocess, before it starts: SIGINT as a terminal gives it. A suite started
    where SIGINT is ignored (`pytest &` in a non-interactive shell, some CI runners) would
    otherwise hand the ignored SIGINT on, and the tool rightly keeps an ignored signal ignored,
    so a Ctrl-C test would check how the suite was started instead of the code. SIGHUP and
    SIGTERM likewise (`nohup pytest` ignores SIGHUP)."""
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def run_cli(
    running: RunningSandbox | None,
    *args: str,
    env: dict[str, str] | None = None,
    command: str = "run",
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batch_revoke", command, *args],
        capture_output=True,
        text=True,
        env=cli_env(running, env),
        timeout=120,
        check=False,
    )


def start_cli(
    running: RunningSandbox | None, *args: str, env: dict[str, str] | None = None, **popen
) -> subprocess.Popen:
    """The CLI in the background, to be interrupted; stderr is piped. A `preexec_fn` given
    runs after SIGINT is made the default."""
    then = popen.pop("preexec_fn", None)

    def before_exec() -> None:
        default_sigint()
        if then is not None:
            then()

    return subprocess.Popen(
        [sys.executable, "-m", "batch_revoke", "run", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(running, env),
        preexec_fn=before_exec,
        **popen,
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    """Until `condition()` holds: an event the test waits for, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the event"
        time.sleep(0.005)


def active_enrolments(state: SandboxState) -> set[str]:
    return {e.issueId for e in state.enrolments.values() if e.issuedStatus == "ACTIVE"}


def active_earns(state: SandboxState) -> set[str]:
    return {e.earnedBadgeId for e in state.earns.values() if e.isActive}


def assert_revoked_really_are(
    rows: list[dict[str, str]], before: SandboxState, after: SandboxState
) -> None:
    """What the result calls revoked is gone from the server, and nothing else changed
    except what `unconfirmed` rows may have done."""
    claimed = {i for r in rows if r["status"] == "revoked" for i in r["issued_ids"].split(";") if i}
    maybe = {r["issueId"] or r["earnedBadgeId"] for r in rows if r["status"] == "unconfirmed"}
    maybe_customers = {
        (r["badgeMetaId"], r["customerId"]) for r in rows if r["status"] == "unconfirmed"
    }
    for issue_id in claimed:
        enrolment = after.enrolments.get(issue_id)
        earn = after.earns.get(issue_id)
        assert (enrolment and enrolment.issuedStatus == "REVOKED") or (
            earn and not earn.isActive
        ), issue_id
    gone = (active_enrolments(before) - active_enrolments(after)) | (
        active_earns(before) - active_earns(after)
    )
    for thing in gone - claimed - maybe:
        enrolment = after.enrolments.get(thing)
        assert enrolment is not None
        assert (enrolment.badgeMetaId, enrolment.customerId) in maybe_customers, thing


def catches(pid: int, signum: int) -> bool:
    """The process has a handler of its own for `signum` (Linux: SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    (mask,) = [line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")]
    return bool(int(mask, 16) >> (signum - 1) & 1)


# The revokeEarn page's example of a revoked earned badge, verbatim.
EARN_REVOKED = {
    "data": {
        "badgeMetaId": "698dae82d30c4f6b3da9dc06",
        "customerId": 566135941,
        "earnedBadgeId": "698daf848644c157e72d83f3",
        "isActive": False,
    },
    "errors": [],
    "warnings": [],
}


def envelope_error(code: int, message: str) -> dict:
    return {"data": None, "errors": [{"code": code, "message": message, "reference": None}]}
