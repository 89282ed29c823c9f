"""Speed and memory of batch-revoke, measured end to end (`make bench`).

Generates an input file and a matching sandbox state, starts the sandbox as its own process
(so the client is what is measured), runs `batch-revoke run` as a subprocess, and reports wall
time, throughput and the client's peak RSS. A dry run of a larger file measures reading,
planning and writing alone. Results go to stdout and bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from batch_revoke.client import REVOKE_ISSUE_PATH, basic_header
from batch_revoke.credentials import BasicCredentials

HERE = Path(__file__).resolve().parent
WORK = HERE / "results"


def generate(rows: int, folder: Path, seed: int = 7, state: bool = True) -> tuple[Path, Path]:
    """70% revokeIssuals rows, 20% customers rows, 10% revokeEarn rows, over 25 badges; and,
    with `state`, the sandbox state that holds them (only a run against the sandbox needs it)."""
    rng = random.Random(seed)
    badges = [f"{0x6700000000 + n:024x}" for n in range(25)]
    held: dict[str, list[dict[str, str]]] = {"customers": [], "enrolments": [], "earns": []}
    input_path, state_path = folder / f"bench-{rows}.csv", folder / f"bench-{rows}-state.json"

    def hold(kind: str, item: dict[str, str]) -> None:
        if state:
            held[kind].append(item)

    with input_path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["badgeMetaId", "customerId", "issueId", "earnedBadgeId", "identifierType", "ticket"]
        )
        for n in range(rows):
            badge, customer = rng.choice(badges), str(100_000_000 + n)
            hold("customers", {"customerId": customer, "mobile": f"919{customer}"})
            kind = rng.random()
            if kind < 0.7:
                issue = f"{0x5B00000000 + n:024x}"
                hold("enrolments", {"issueId": issue, "badgeMetaId": badge, "customerId": customer})
                out.writerow([badge, customer, issue, "", "", f"T{n}"])
            elif kind < 0.9:
                for k in range(2):
                    issue = f"{0x5C00000000 + 2 * n + k:024x}"
                    hold(
                        "enrolments",
                        {"issueId": issue, "badgeMetaId": badge, "customerId": customer},
                    )
                out.writerow([badge, customer, "", "", "", f"T{n}"])
            else:
                earned = f"{0x5D00000000 + n:024x}"
                hold(
                    "earns", {"earnedBadgeId": earned, "badgeMetaId": badge, "customerId": customer}
                )
                mobile = rng.random() < 0.5
                out.writerow(
                    [
                        badge,
                        f"919{customer}" if mobile else customer,
                        "",
                        earned,
                        "mobile" if mobile else "",
                        f"T{n}",
                    ]
                )
    if state:
        state_path.write_text(json.dumps({"badges": badges, **held}), encoding="utf-8")
    return input_path, state_path


def generate_mobiles(rows: int, folder: Path, seed: int = 7) -> Path:
    """revokeEarn rows whose customers are named by mobile, spelled as files have them: half
    919XXXXXXXXX, and +91 99000 00013, 0091-9900000013 and (a tenth) +91 (0) 99000 00013,
    which only phonenumbers reads."""
    rng = random.Random(seed)
    badges = [f"{0x6700000000 + n:024x}" for n in range(25)]
    path = folder / f"mobiles-{rows}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["badgeMetaId", "customerId", "earnedBadgeId", "identifierType", "ticket"])
        for n in range(rows):
            digits = str(9_100_000_000 + n)
            spelling = rng.random()
            if spelling < 0.5:
                mobile = "91" + digits
            elif spelling < 0.8:
                mobile = f"+91 {digits[:5]} {digits[5:]}"
            elif spelling < 0.9:
                mobile = "0091-" + digits
            else:
                mobile = f"+91 (0) {digits[:5]} {digits[5:]}"
            earned = f"{0x5D00000000 + n:024x}"
            out.writerow([rng.choice(badges), mobile, earned, "mobile", f"T{n}"])
    return path


def generated(rows: int, state: bool = True) -> tuple[Path, Path]:
    """Generated in a child process (a forked child's peak RSS would include ours), once:
    a file of that size already there is used again."""
    input_path, state_path = WORK / f"bench-{rows}.csv", WORK / f"bench-{rows}-state.json"
    if not input_path.exists() or (state and not state_path.exists()):
        flag = "--generate" if state else "--generate-input"
        subprocess.run([sys.executable, __file__, flag, str(rows)], check=True)
    return input_path, state_path


def generated_mobiles(rows: int) -> Path:
    path = WORK / f"mobiles-{rows}.csv"
    if not path.exists():
        generate_mobiles(rows, WORK)
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "batch_revoke", *args]


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stderr of one child process, from its own rusage."""
    started = time.perf_counter()
    # From the tree measured: `python -m` puts the working directory first on sys.path.
    child = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=env.get("PYTHONPATH"),
    )
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} exited {child.returncode}: {stderr}")
    return elapsed, usage.ru_maxrss / 1024, stderr


def figures(label: str, rows: int, seconds: float, peak: float) -> str:
    rate = rows / seconds
    return (
        f"{label:<9} {rows:>9,} rows {seconds:7.2f} s {rate:>9,.0f} rows/s peak RSS {peak:.1f} MiB"
    )


def statuses(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


async def load(
    url: str, pairs: list[tuple[str, str]], connections: int, requests: int
) -> tuple[float, dict[int, int]]:
    """The sandbox alone: `requests` revokeIssue calls of 20 customers, `connections` at once.
    aiohttp's client, not httpx: httpx's pool costs more CPU the more connections it holds,
    and at 256 it, not the sandbox, was what got measured."""
    rng = random.Random(3)
    headers = {"Authorization": basic_header(BasicCredentials("demo.till", "demo-password"))}
    codes: dict[int, int] = {}
    remaining = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            body = {
                "badgeMetaId": rng.choice(pairs)[0],
                "customers": [c for _, c in rng.sample(pairs, 20)],
            }
            async with session.post(
                url + REVOKE_ISSUE_PATH, json=body, headers=headers
            ) as response:
                await response.read()
                codes[response.status] = codes.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        return time.perf_counter() - started, codes


def start_sandbox(
    state: Path, latency: str, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], str]:
    sandbox = subprocess.Popen(
        cli("sandbox", "--port", "0", "--state", str(state), "--latency-ms", latency, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert sandbox.stdout is not None
    return sandbox, sandbox.stdout.readline().strip()


def sandbox_env(env: dict[str, str], url: str) -> dict[str, str]:
    """The environment of a run against the sandbox at `url`, with its demo credentials."""
    return {
        **env,
        "CAP_BASE_URL": url,
        "CAP_USERNAME": "demo.till",
        "CAP_PASSWORD": "demo-password",
    }


def earn_rows(rows: int, folder: Path, offset: int = 0) -> tuple[Path, Path]:
    """`rows` revokeEarn rows, one call each, and the state that holds their earns; rows of
    different `offset`s never overlap."""
    state: dict[str, list[dict[str, str]]] = {"customers": [], "earns": []}
    path = folder / f"earns-{rows}-{offset}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["badgeMetaId", "customerId", "earnedBadgeId"])
        for n in range(offset, offset + rows):
            customer, earned = str(400_000_000 + n), f"{0x5E00000000 + n:024x}"
            state["customers"].append({"customerId": customer})
            state["earns"].append(
                {"earnedBadgeId": earned, "badgeMetaId": "B", "customerId": customer}
            )
            out.writerow(["B", customer, earned])
    state_path = folder / f"earns-{rows}-{offset}-state.json"
    state_path.write_text(json.dumps(state), encoding="utf-8")
    return path, state_path


def served_by(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/_sandbox/requests") as answer:
        served: list[dict[str, object]] = json.loads(answer.read())
    return served


def limited_run(
    state: Path, inputs: list[Path], env: dict[str, str], sandbox_args: list[str], *extra: str
) -> tuple[list[float], list[dict[str, str]], list[dict[str, object]]]:
    """`inputs` run at once (one process each, one till) against one sandbox: each run's
    seconds, its result counts, and every call the sandbox saw."""
    sandbox, url = start_sandbox(state, "20", env, *sandbox_args)
    try:
        run_env = sandbox_env(env, url)
        outputs = [path.with_name(path.stem + "-out.csv") for path in inputs]
        commands = [
            cli("-q", "run", str(path), "-o", str(out), "--overwrite", *extra)
            for path, out in zip(inputs, outputs, strict=True)
        ]
        with ThreadPoolExecutor(len(commands)) as pool:
            timed = list(pool.map(lambda command: measure(command, run_env), commands))
        served = served_by(url)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    counts = [{k: str(v) for k, v in statuses(out).items()} for out in outputs]
    return [seconds for seconds, _, _ in timed], counts, served


def rate_limited(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """The field: Capillary's limits (per minute, clock-aligned windows, no Retry-After),
    unknown to the client or given, with stray 429s, and two runs sharing one till. Each
    next to its ideal time: calls / limit windows."""
    limit = args.limit_per_min
    rows = args.limit_rows
    limit_args = ["--sandbox-rate-limit", f"{limit}/min"]
    lines = [
        f"rate limits: revokeEarn calls (one a row) against --sandbox-rate-limit {limit}/min "
        "(60 s windows aligned to the clock, no Retry-After), 20 ms latency",
        f"{'scenario':<44}{'calls':>6}{'time':>8}{'ideal':>7}{'x ideal':>9}{'throttled':>11}"
        f"{'of calls':>10}{'used':>7}{'revoked':>9}",
    ]

    def line(label: str, seconds: float, ideal: float, served: list, revoked: int) -> str:
        throttled = sum(1 for e in served if e["throttled"] or e["fault"] == "429")
        times = sorted(float(e["at"]) for e in served if e["applied"] and not e["fault"])
        # The share of the limit used after the first window's burst: applied calls past the
        # first window's worth, over the time from the first call to the last.
        used = (len(times) - limit) / (times[-1] - times[0]) * 60 / limit if times else 0.0
        return (
            f"{label:<44}{len(served):>6}{seconds:>7.0f}s{ideal:>6.0f}s{seconds / ideal:>9.2f}"
            f"{throttled:>11}{throttled / max(len(served), 1):>10.1%}{used:>7.0%}{revoked:>9}"
        )

    def scenario(label: str, parts: int, calls: int, sandbox_args: list[str], *extra: str) -> str:
        folder = WORK / "".join(ch if ch.isalnum() else "-" for ch in label)
        folder.mkdir(exist_ok=True)
        inputs = [
            earn_rows(calls // parts, folder, offset=part * calls)[0] for part in range(parts)
        ]
        merged = folder / "state.json"
        _merge_states(inputs, merged)
        seconds, counts, served = limited_run(merged, inputs, env, sandbox_args, *extra)
        revoked = sum(int(c.get("revoked", 0)) for c in counts)
        ideal = math.ceil(calls / limit) * 60.0
        return line(label, max(seconds), ideal, served, revoked)

    jobs = {
        "unknown limit, 20 windows": (1, 20 * limit, limit_args),
        "unknown limit + 2% stray 429s": (1, rows, [*limit_args, "--fault", "429:2%"]),
        "two runs sharing one till's limit": (2, rows, limit_args),
        "unknown limit, --rate-limit given": (1, rows, limit_args),
    }
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {
            label: pool.submit(
                scenario,
                label,
                parts,
                calls,
                sandbox_args,
                *(["--rate-limit", f"{limit}/min"] if "given" in label else []),
            )
            for label, (parts, calls, sandbox_args) in jobs.items()
        }
        lines += [futures[label].result() for label in jobs]
    return lines + stray_429s(env)


def stray_429s(env: dict[str, str]) -> list[str]:
    """No limit at all, and 2% of revoke calls answered 429 at random (a gateway's burst
    limiter, another job on the till): each next to the same run without them."""
    path, state = generated(1300)
    lines = [
        "stray 429s, no limit: 1,300 rows (no latency), each run with --fault 429:2% next to "
        "the same file without it",
        f"{'seed':<6}{'without':>9}{'with':>9}{'ratio':>7}{'throttled':>11}{'revoked':>9}",
    ]
    for seed in (1, 2, 3):
        times = []
        for faults in ([], ["--fault", "429:2%", "--seed", str(seed)]):
            sandbox, url = start_sandbox(state, "0", env, *faults)
            try:
                output = WORK / "stray.csv"
                command = cli("-q", "run", str(path), "-o", str(output), "--overwrite")
                seconds, _, _ = measure(command, sandbox_env(env, url))
                served = served_by(url)
            finally:
                sandbox.terminate()
                sandbox.wait(timeout=10)
            times.append(seconds)
        throttled = sum(1 for e in served if e["fault"] == "429")
        revoked = statuses(output).get("revoked", 0)
        lines.append(
            f"{seed:<6}{times[0]:>8.1f}s{times[1]:>8.1f}s{times[1] / times[0]:>7.2f}"
            f"{throttled:>11}{revoked:>9}"
        )
    return lines


def _merge_states(inputs: list[Path], merged: Path) -> None:
    state: dict[str, list[object]] = {"customers": [], "earns": []}
    for path in inputs:
        part = json.loads(path.with_name(path.stem + "-state.json").read_text(encoding="utf-8"))
        for key in state:
            state[key] += part[key]
    merged.write_text(json.dumps(state), encoding="utf-8")


# A bare csv.reader pass over the same file: what reading costs before any work is done.
BASELINE = """
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as handle:
    for _ in csv.reader(handle):
        pass
"""
RESULTS = HERE / "results.md"


def best_of(repeat: int, command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The fastest of `repeat` runs (this machine is shared: the rest is noise) and the
    largest peak RSS."""
    runs = [measure(command, env)[:2] for _ in range(repeat)]
    return min(seconds for seconds, _ in runs), max(peak for _, peak in runs)


def dry_run_line(label: str, path: Path, repeat: int, env: dict[str, str]) -> tuple[str, ...]:
    """A dry run of `path` next to a bare csv.reader pass over it, each the fastest of
    `repeat`, run in turn so both meet the same load."""
    output = WORK / "dry.csv"
    command = cli("-q", "run", str(path), "--dry-run", "-o", str(output), "--overwrite")
    baseline = [sys.executable, "-c", BASELINE, str(path)]
    base, seconds, peak = math.inf, math.inf, 0.0
    for _ in range(repeat):
        base = min(base, measure(baseline, env)[0])
        run_seconds, run_peak, _ = measure(command, env)
        seconds, peak = min(seconds, run_seconds), max(peak, run_peak)
    return (label, f"{seconds:.2f} s", f"{base:.2f} s", f"{seconds / base:.1f}x", f"{peak:.0f} MiB")


def scale(args: argparse.Namespace, env: dict[str, str]) -> list[tuple[str, ...]]:
    """Dry runs of the usual file (ids, a twentieth of mobiles) at 100,000 and 1,000,000
    rows, and of a file whose customers are all named by mobile, each next to a bare
    csv.reader pass over the same file."""
    table = []
    for rows in (100_000, 1_000_000):
        path, _ = generated(rows, state=False)
        table.append(dry_run_line(f"dry run, {rows:,} rows", path, args.repeat, env))
        print(" | ".join(table[-1]), flush=True)
    path = generated_mobiles(1_000_000)
    table.append(dry_run_line("dry run, 1,000,000 rows named by mobile", path, args.repeat, env))
    print(" | ".join(table[-1]), flush=True)
    return table


def memory(env: dict[str, str]) -> list[tuple[str, ...]]:
    """The peak at 10,000,000 rows (one run each: minutes): past 2,000,000 identities,
    duplicate detection goes on on disk."""
    path, _ = generated(10_000_000, state=False)
    line = dry_run_line("dry run, 10,000,000 rows", path, 1, env)
    print(" | ".join(line), flush=True)
    return [line]


def first_request(rows: int, env: dict[str, str]) -> list[tuple[str, ...]]:
    """When the first request of a real run reaches the sandbox (the structure pass
    included); the run is then stopped (SIGTERM), as the whole run takes minutes."""
    path, state = generated(rows)
    sandbox, url = start_sandbox(state, "0", env)
    try:
        output = WORK / "first.csv"
        command = cli("-q", "run", str(path), "-o", str(output), "--overwrite")
        started = time.monotonic()  # the sandbox stamps arrivals with the same clock
        child = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=sandbox_env(env, url),
            cwd=env.get("PYTHONPATH"),
        )
        served: list[dict[str, object]] = []
        while not served and child.poll() is None and time.monotonic() - started < 120:
            time.sleep(0.05)
            served = served_by(url)
        child.terminate()
        child.wait(timeout=60)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    if not served:
        sys.exit("no request reached the sandbox")
    arrival = min(float(str(entry["at"])) for entry in served) - started
    return [(f"first request reaches the sandbox, {rows:,} rows", f"{arrival:.2f} s", "", "", "")]


def real_runs(args: argparse.Namespace, env: dict[str, str]) -> list[tuple[str, ...]]:
    """Runs against the sandbox with no added latency, a tenth of the rows and then all."""
    return real_run(args.real_rows // 10, env, first=False) + real_run(args.real_rows, env)


def real_run(rows: int, env: dict[str, str], first: bool = True) -> list[tuple[str, ...]]:
    """A run of `rows` against the sandbox: when the first request arrives (the structure
    pass included), and the run's peak RSS."""
    path, state = generated(rows)
    sandbox, url = start_sandbox(state, "0", env)
    try:
        run_env = sandbox_env(env, url)
        output = WORK / "real.csv"
        command = cli(
            "-q", "run", str(path), "-o", str(output), "--overwrite", "--concurrency", "8"
        )
        started = time.monotonic()  # the sandbox stamps arrivals with the same clock
        seconds, peak, _ = measure(command, run_env)
        with urllib.request.urlopen(f"{url}/_sandbox/requests") as answer:
            served = json.loads(answer.read())
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    arrival = min(entry["at"] for entry in served) - started
    counts = statuses(output)
    if counts.get("revoked") != rows:
        sys.exit(f"expected every row revoked, got {counts}")
    return [
        (f"first request reaches the sandbox, {rows:,} rows", f"{arrival:.2f} s", "", "", ""),
    ] * first + [
        (
            f"run against the sandbox, {rows:,} rows ({len(served):,} calls, no latency, "
            "concurrency 8)",
            f"{seconds:.0f} s",
            "",
            "",
            f"{peak:.0f} MiB",
        ),
    ]


def commit_of(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def record_table(table: list[tuple[str, ...]], note: str, commit: str) -> str:
    """Prepend this run's table to bench/results.md; earlier tables stay below it."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"## {stamp}, {os.cpu_count()} cores: {commit or 'uncommitted'}",
        "",
        note,
        "",
        "| scenario | batch-revoke | csv.reader baseline | ratio | peak RSS |",
        "|---|---:|---:|---:|---:|",
        *(f"| {' | '.join(cells)} |" for cells in table),
        "",
    ]
    section = "\n".join(lines)
    head = "# Benchmarks (`make bench`)\n\nNewest first; each table is one `make bench`.\n\n"
    earlier = RESULTS.read_text(encoding="utf-8").removeprefix(head) if RESULTS.exists() else ""
    RESULTS.write_text(head + section + "\n" + earlier, encoding="utf-8")
    return section


def record_report(text: str, commit: str) -> None:
    """Prepend the sandbox and rate-limit figures to bench/results.md, as printed."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"## {stamp}, {os.cpu_count()} cores: {commit or 'uncommitted'}\n\n```\n{text}\n```\n"
    head = "# Benchmarks (`make bench`)\n\nNewest first; each table is one `make bench`.\n\n"
    earlier = RESULTS.read_text(encoding="utf-8").removeprefix(head) if RESULTS.exists() else ""
    RESULTS.write_text(head + section + "\n" + earlier, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=40_000, help="rows for the run against the sandbox"
    )
    parser.add_argument("--latency-ms", default="20", help="sandbox latency per request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--connections", type=int, default=256, help="for the sandbox load")
    parser.add_argument("--load-requests", type=int, default=10_000, help="for the sandbox load")
    parser.add_argument("--limit-per-min", type=int, default=30, help="the server's rate limit")
    parser.add_argument(
        "--limit-rows", type=int, default=300, help="revokeEarn rows for the rate-limit runs"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per scale scenario")
    parser.add_argument("--real-rows", type=int, default=1_000_000, help="rows of the real run")
    parser.add_argument("--quick", action="store_true", help="no 10,000,000-row dry run")
    parser.add_argument(
        "--only",
        choices=["scale", "memory", "first-request", "real", "sandbox", "rate-limits"],
        action="append",
        help="scale: dry runs of 100,000 and 1,000,000 rows next to csv.reader; memory: the "
        "10,000,000-row dry run (minutes); first-request: when a real run's first request "
        "leaves on 1,000,000 rows; real: whole runs against the sandbox",
    )
    parser.add_argument("--note", default="", help="a line to keep with the table")
    parser.add_argument(
        "--checkout", type=Path, default=HERE.parent, help="measure the batch-revoke of this tree"
    )
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--generate-input", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate or args.generate_input:
        generate(args.generate or args.generate_input, WORK, state=bool(args.generate))
        return
    WORK.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAP_")}
    env["PYTHONPATH"] = str(args.checkout.resolve())
    every = ["scale", "memory", "first-request", "real", "sandbox", "rate-limits"]
    only = set(args.only or [name for name in every if not (args.quick and name == "memory")])
    commit = commit_of(args.checkout)  # what is measured: the tree as the bench starts
    table: list[tuple[str, ...]] = []
    if "scale" in only:
        table += scale(args, env)
    if "memory" in only:
        table += memory(env)
    if "first-request" in only:
        table += first_request(args.real_rows, env)
    if "real" in only:
        table += real_runs(args, env)
    if table:
        print(
            record_table(
                table,
                args.note
                or "Dry runs: the fastest of the runs, each next to a bare csv.reader pass over "
                "the same file in the same bench run.",
                commit,
            )
        )
    report = []
    if "sandbox" in only:
        report += sandbox_runs(args, env)
    if "rate-limits" in only:
        report.extend(rate_limited(args, env))
    if report:
        text = "\n".join(report)
        print(text)
        (WORK / "latest.txt").write_text(text + "\n", encoding="utf-8")
        record_report(text, commit)


def sandbox_runs(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """A run of `--rows` rows with latency and concurrency, then the sandbox alone."""
    report = []
    run_input, state = generated(args.rows)
    sandbox, url = start_sandbox(state, args.latency_ms, env)
    try:
        run_env = sandbox_env(env, url)
        output = WORK / "run.csv"
        command = cli(
            "-q",
            "run",
            str(run_input),
            "-o",
            str(output),
            "--overwrite",
            "--concurrency",
            str(args.concurrency),
        )
        seconds, peak, stderr = measure(command, run_env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    counts = statuses(output)
    requests = next(
        (line for line in stderr.splitlines() if line.startswith("requests:")), "requests: ?"
    )
    setting = f"latency {args.latency_ms} ms, concurrency {args.concurrency}"
    report.append(
        figures("sandbox", args.rows, seconds, peak) + f"  ({requests}; {setting}; {counts})"
    )
    if counts.get("revoked") != args.rows:
        sys.exit(f"expected every row revoked, got {counts}")
    data = json.loads(state.read_text(encoding="utf-8"))
    pairs = [(e["badgeMetaId"], e["customerId"]) for e in data["enrolments"]]
    sandbox, url = start_sandbox(state, args.latency_ms, env)
    try:
        seconds, codes = asyncio.run(load(url, pairs, args.connections, args.load_requests))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    report.append(
        f"sandbox alone: {args.load_requests:,} revokeIssue calls of 20 customers over "
        f"{args.connections} connections in {seconds:.2f} s = {args.load_requests / seconds:,.0f} "
        f"requests/s (latency {args.latency_ms} ms; answers {codes})"
    )
    return report


if __name__ == "__main__":
    main()
