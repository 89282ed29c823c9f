"""The scheduler recipes of docs/scheduling.md, run as printed on three consecutive nights
against the sandbox as a real server: a new input each night, the second night killed mid-run.
Every row of every night must end revoked, and each night's exit status must be what the page
says."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from batch_revoke.journal import Journal, JournalIdentity, in_use
from batch_revoke.outputs import RunOnDisk, journal_path, run_at
from batch_revoke.sandbox import (
    FaultPlan,
    FaultSpec,
    SandboxConfig,
    SandboxState,
    running_sandbox,
)
from batch_revoke.sandbox.server import RunningSandbox
from batch_revoke.scheduled import let_go
from tests.conftest import (
    ROOT,
    SAMPLE,
    active_earns,
    active_enrolments,
    cli_env,
    read_rows,
    run_cli,
    sandbox,
    wait_for,
)

pytestmark = pytest.mark.e2e
PAGE = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
NIGHTS = 3
ROWS = 40  # a night: 30 revokeEarn rows (a call each) and 10 revokeIssuals rows


def code_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.S)
    return next(block for block in blocks if containing in block)


def cron_command(root: Path) -> str:
    """The cron line's command, as cron hands it to sh (`%` is cron's newline, `\\%` a %)."""
    line = next(
        line for line in code_block("cron", "batch-revoke").splitlines() if line[:1].isdigit()
    )
    command = line.split(None, 5)[5]
    assert "%" not in command.replace("\\%", ""), "an unescaped % is a newline to cron"
    # The tool by the full path printed (cron's PATH, /usr/bin:/bin, has no other), made ours.
    installed = Path(sys.executable).parent / "batch-revoke"
    command = re.sub(r"/\S*/batch-revoke(?= run )", lambda _: str(installed), command)
    return command.replace("\\%", "%").replace("/srv/revokes", str(root))


def airflow_command(root: Path, night: int) -> str:
    """The BashOperator's bash_command, rendered as Airflow renders its template."""
    tree = ast.parse(code_block("python", "BashOperator("))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    template = ast.literal_eval(keywords["bash_command"])
    params = {
        key: value.replace("/data", str(root))
        for key, value in ast.literal_eval(keywords["params"]).items()
    }
    context = {f"params.{key}": value for key, value in params.items()}
    context["ds"] = f"2026-11-{20 + night:02d}"
    rendered = re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: context[m.group(1)], template)
    assert "{{" not in rendered, rendered
    assert "{%" not in rendered, rendered
    return rendered


def airflow_input(root: Path) -> Path:
    tree = ast.parse(code_block("python", "BashOperator("))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    params = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "params"))
    return Path(params["input"].replace("/data", str(root)))


def kubernetes_command(root: Path) -> str:
    """The container's `sh -c` argument: YAML's folded block, its lines joined by spaces."""
    lines = code_block("yaml", "kind: Job").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- >-")
    indent = len(lines[start + 1]) - len(lines[start + 1].lstrip())
    folded = []
    for line in lines[start + 1 :]:
        if len(line) - len(line.lstrip()) < indent:
            break
        folded.append(line.strip())
    return " ".join(folded).replace("/data", str(root))


def night_rows(night: int) -> tuple[list[list[str]], dict]:
    """One night's input, and the sandbox data that holds what it revokes."""
    rows, held = [], {"customers": [], "enrolments": [], "earns": []}
    for n in range(ROWS):
        customer = str(500_000 + night * 1000 + n)
        held["customers"].append({"customerId": customer})
        if n < 30:
            earned = f"E{night}-{n}"
            held["earns"].append(
                {"earnedBadgeId": earned, "badgeMetaId": "B", "customerId": customer}
            )
            rows.append(["B", customer, "", earned])
        else:
            issue = f"I{night}-{n}"
            held["enrolments"].append(
                {"issueId": issue, "badgeMetaId": "B", "customerId": customer}
            )
            rows.append(["B", customer, issue, ""])
    return rows, held


def write_input(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["badgeMetaId", "customerId", "issueId", "earnedBadgeId"])
        out.writerows(rows)


def nights_state() -> SandboxState:
    state: dict = {"badges": ["B"], "customers": [], "enrolments": [], "earns": []}
    for night in range(1, NIGHTS + 1):
        for key, items in night_rows(night)[1].items():
            state[key] += items
    return SandboxState.from_dict(state)


RECIPES: dict[str, tuple[Callable[[Path, int], str], Callable[[Path], Path], bool]] = {
    # recipe: (its command on a night, where its input is, whether cron runs it)
    "cron": (
        lambda root, night: cron_command(root),
        lambda root: root / "in" / "tonight.csv",
        True,
    ),
    "airflow": (airflow_command, airflow_input, False),
    "kubernetes": (
        lambda root, night: kubernetes_command(root),
        lambda root: root / "in" / "revoke.csv",
        False,
    ),
}


def shell(
    command: str, cwd: Path, env: dict[str, str], under: Sequence[str] = ()
) -> subprocess.Popen:
    """`sh -c command`, `under` a command that starts it (unshare: as a container's PID 1)."""
    return subprocess.Popen(
        [*under, "sh", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a night killed is its whole process group, as a reboot is
    )


def released(root: Path) -> bool:
    """No killed process holds a lock any more: flock's, or a run's on its journal."""
    return not any(in_use(path) for path in [*root.rglob("*.journal"), *root.glob(".lock")])


def recipe_env(running: RunningSandbox, root: Path, cron: bool) -> dict[str, str]:
    """Credentials as each recipe gets them, and the installed command first on PATH. A cron
    job gets cron's own environment and no more (PATH=/usr/bin:/bin), and cap.env."""
    credentials = {
        "CAP_BASE_URL": running.base_url,
        "CAP_OAUTH_KEY": "demo-key",
        "CAP_OAUTH_SECRET": "demo-secret",
    }
    if cron:
        lines = [f"export {key}={value}" for key, value in credentials.items()]
        (root / "cap.env").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": str(root), "LOGNAME": "cron"}
    env = cli_env(None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(credentials)
    return env


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_a_recipe_as_printed_revokes_every_row_of_every_night(tmp_path, recipe):
    command_of, input_of, cron = RECIPES[recipe]
    root = tmp_path
    config = SandboxConfig(state=nights_state(), latency_ms=(150.0, 150.0))
    with running_sandbox(config) as running:
        env = recipe_env(running, root, cron)
        for night in range(1, NIGHTS + 1):
            write_input(input_of(root), night_rows(night)[0])  # tonight's file replaces the last
            seen = len(running.requests)
            process = shell(command_of(root, night), root, env)
            if night == 2:  # killed half-way, as a reboot would
                wait_for(lambda: len(running.requests) >= seen + 6)  # noqa: B023
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate(timeout=30)
                wait_for(lambda: released(root))  # a process in an fsync finishes it first
                continue
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, (recipe, night, stderr)
            if recipe == "cron":  # cron mails what a job prints: a good night prints nothing
                assert (stdout, stderr) == ("", "")
                stderr = (root / "batch-revoke.log").read_text(encoding="utf-8")
            if night == 3:  # the killed night was finished first, from its own copy
                assert "finished first, a run that had stopped" in stderr
    active = {e.earnedBadgeId for e in config.state.earns.values() if e.isActive}
    active |= {e.issueId for e in config.state.enrolments.values() if e.issuedStatus == "ACTIVE"}
    assert active == set(), f"{recipe}: left active: {sorted(active)}"
    results = sorted(root.rglob("*-results-*.csv"))
    assert len(results) == NIGHTS  # one result file a night, none overwritten
    for path in results:
        text = path.read_text(encoding="utf-8")
        assert not text.startswith("INCOMPLETE")
        assert {r["status"] for r in csv.DictReader(text.splitlines())} == {"revoked"}
    assert not list(root.rglob("*.input.csv"))  # every run's copy gone once it finished


def test_a_scheduled_run_overlapping_a_running_one_leaves_it_alone(tmp_path):
    """An Airflow retry while the worker it replaces is still alive, a CronJob that overlaps:
    the second invocation sends nothing and says so with exit 3 (stopped, not "bad input"),
    and the first finishes."""
    root = tmp_path
    config = SandboxConfig(state=nights_state(), latency_ms=(300.0, 300.0))
    with running_sandbox(config) as running:
        env = recipe_env(running, root, False)
        write_input(airflow_input(root), night_rows(1)[0])
        first = shell(airflow_command(root, 1), root, env)
        wait_for(lambda: len(running.requests) >= 2)
        second = shell(airflow_command(root, 1), root, env)
        _, told = second.communicate(timeout=120)
        _, stderr = first.communicate(timeout=120)
    assert second.returncode == 3, told
    assert "still going in another process" in told
    assert first.returncode == 0, stderr
    active = {e.earnedBadgeId for e in config.state.earns.values() if e.isActive}
    assert not {earned for *_, earned in night_rows(1)[0] if earned} & active


# --- stopped by the scheduler -----------------------------------------------------------------


def pid_namespace() -> list[str]:
    """What starts a command as PID 1 of a PID namespace of its own, as a container's first
    process is; skips the test where this machine allows none."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) here to start the recipe as PID 1")
    # As root a PID namespace; otherwise a user namespace too (-U) to be allowed one.
    own = ["--pid", "--fork", "--mount-proc"] if os.geteuid() == 0 else ["-Urpf", "--mount-proc"]
    tried = subprocess.run(
        [unshare, *own, "true"], capture_output=True, text=True, timeout=60, check=False
    )
    if tried.returncode != 0:
        pytest.skip(f"this machine allows no PID namespace: {tried.stderr.strip()}")
    return [unshare, *own]


def namespace_init(parent: int) -> int | None:
    """The process `parent` (unshare) started as PID 1 of its namespace, by its pid here."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue  # gone meanwhile
        if fields["PPid"].strip() == str(parent) and fields["NSpid"].split()[-1] == "1":
            return int(status.parent.name)
    return None


def slow_call_state() -> SandboxConfig:
    """Night 1's data, its 6th call answered 6 s late (carried out at once): a run that has
    sent it is surely still going, and an interrupted one drains for seconds (grace: 10 s)."""
    return SandboxConfig(
        state=nights_state(),
        faults=FaultPlan([FaultSpec.parse("slow:#6")]),
        slow_seconds=6.0,
        latency_ms=(100.0, 100.0),
    )


def assert_sandbox_agrees(rows: list[dict[str, str]], state: SandboxState) -> None:
    """What the result file says is what the API holds: a row revoked is revoked there, a row
    not sent (or failed) is still active; an unconfirmed row may be either."""
    active = active_earns(state) | active_enrolments(state)
    for row in rows:
        badge = row["earnedBadgeId"] or row["issueId"]
        if row["status"] == "revoked":
            assert badge not in active, row
        elif row["status"] != "unconfirmed":
            assert badge in active, row


def night_active(state: SandboxState, night: int) -> set[str]:
    """What the night's input revokes that the API still holds active."""
    listed = {issue or earned for _, _, issue, earned in night_rows(night)[0]}
    return listed & (active_earns(state) | active_enrolments(state))


def test_the_kubernetes_recipe_as_pid_1_stops_cleanly_on_sigterm(tmp_path):
    """The container's `sh -c` is PID 1, which the kernel spares every signal it has no
    handler for: the recipe must pass SIGTERM on to the run and wait for it to stop."""
    as_pid_1 = pid_namespace()
    root = tmp_path
    config = slow_call_state()
    with running_sandbox(config) as running:
        env = recipe_env(running, root, False)
        write_input(root / "in" / "revoke.csv", night_rows(1)[0])
        pod = shell(kubernetes_command(root), root, env, under=as_pid_1)
        wait_for(lambda: len(running.requests) >= 6)  # the slow call is in flight
        init = namespace_init(pod.pid)
        assert init is not None
        os.kill(init, signal.SIGTERM)  # the kubelet stopping the container
        _, stderr = pod.communicate(timeout=120)
        assert pod.returncode == 3, stderr  # stopped early, resumable
        summary = json.loads((root / "out" / "last-run.json").read_text(encoding="utf-8"))
        assert summary["stopped"].startswith("interrupted (SIGTERM)"), summary
        result = Path(summary["output"])
        rows = read_rows(result)
        assert [int(row["row"]) for row in rows] == list(range(1, ROWS + 1)), rows[:3]
        assert_sandbox_agrees(rows, config.state)
        # The Job's next pod finishes the run.
        retried = shell(kubernetes_command(root), root, env)
        _, stderr = retried.communicate(timeout=120)
    assert retried.returncode == 0, stderr
    assert {row["status"] for row in read_rows(result)} == {"revoked"}
    assert not night_active(config.state, 1)


def test_an_airflow_retry_right_after_sigterm_finishes_the_run(tmp_path):
    """Airflow stops a BashOperator with SIGTERM to its process group: the shell ends at once,
    so does the task, and its retry starts while the run still drains its requests in flight.
    The retry waits for that run to let go, then finishes it: every row revoked, once."""
    root = tmp_path
    config = slow_call_state()
    with running_sandbox(config) as running:
        env = recipe_env(running, root, False)
        write_input(airflow_input(root), night_rows(1)[0])
        task = shell(airflow_command(root, 1), root, env)
        wait_for(lambda: len(running.requests) >= 6)  # the slow call is in flight
        os.killpg(task.pid, signal.SIGTERM)  # BashOperator.on_kill
        task.wait(timeout=60)  # the task has ended (its run still writes to its pipes)
        assert not released(root)  # and the run drains on
        retry = shell(airflow_command(root, 1), root, env)
        _, stderr = retry.communicate(timeout=120)
        drained = task.communicate(timeout=60)[1]
    assert task.returncode != 0
    assert "SIGTERM: no new requests" in drained
    assert retry.returncode == 0, stderr
    assert "is stopping in another process" in stderr
    (result,) = root.rglob("*-results-*.csv")
    rows = read_rows(result)
    assert {row["status"] for row in rows} == {"revoked"}  # none lost, none revoked twice
    assert len(rows) == ROWS
    assert_sandbox_agrees(rows, config.state)
    assert not night_active(config.state, 1)


def test_a_retry_waits_a_bounded_time_and_only_for_a_run_that_is_stopping(tmp_path, caplog):
    """A run held by a process that is not stopping is left to it at once; one that is
    stopping is waited for, but not for ever."""
    output = tmp_path / "in-results-20261121-013000.csv"
    held = Journal.create(journal_path(output), JournalIdentity("0" * 64, {}))  # locked
    try:
        assert let_go(run_at_or_fail(output), wait=60.0) is None
        assert "waiting" not in caplog.text
        held.mark_stopping()
        assert let_go(run_at_or_fail(output), wait=0.2) is None
        assert "is stopping in another process: waiting up to 0s" in caplog.text
    finally:
        held.close()
    assert let_go(run_at_or_fail(output), wait=0.0) is not None
    resumed = Journal.resume(journal_path(output), JournalIdentity("0" * 64, {}))
    try:  # the process that holds it now is not stopping
        assert resumed.meta()["state"] == "running"
    finally:
        resumed.close()


def run_at_or_fail(output: Path) -> RunOnDisk:
    found = run_at(output)
    assert found is not None
    return found


# --- what a scheduled run leaves in its folder --------------------------------------------------


def test_finished_runs_leave_no_sqlite_side_files(tmp_path):
    """A journal is one file once its run is over: no -wal or -shm beside it, neither after a
    run nor after an --auto-resume that read every journal of the folder."""
    out = tmp_path / "out"
    other = tmp_path / "other.csv"
    other.write_text(SAMPLE.read_text(encoding="utf-8") + "T,B,1,,,,\n", encoding="utf-8")

    def side_files() -> list[str]:
        return sorted(p.name for p in out.iterdir() if p.name.endswith(("-wal", "-shm")))

    with sandbox() as (running, _state):
        first = run_cli(running, str(SAMPLE), "--output-dir", str(out))
        assert first.returncode == 1, first.stderr  # the sample has rows that are not revoked
        assert side_files() == []
        for path in (other, SAMPLE):
            done = run_cli(running, str(path), "--output-dir", str(out), "--auto-resume")
            assert done.returncode == 1, done.stderr
            assert side_files() == []
