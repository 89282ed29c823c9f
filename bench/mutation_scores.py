"""The mutation pass's score per module, from mutmut's results (`make mutants` runs both).

    .venv/bin/python bench/mutation_scores.py            # the table, markdown
    .venv/bin/python bench/mutation_scores.py --survivors   # and every survivor's name

A mutant listed in bench/equivalent-mutants.txt (its name, then why) is one no test can tell
from the code: it counts neither way. One listed in bench/unreachable-mutants.txt is in code
no row reaches (dead code a refactor removes): shown apart, and in the second score counted as
a survivor. The score is killed / (killed + survived), timeouts counted as killed (the mutant
hung a test) and mutants no in-process test reaches left out (they are named: end-to-end tests
start the CLI in a subprocess, which mutmut cannot see).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "bench" / "equivalent-mutants.txt"
UNREACHABLE = ROOT / "bench" / "unreachable-mutants.txt"
KILLED = {"killed", "timeout"}


def results() -> list[tuple[str, str]]:
    """(mutant, status) for every mutant of the last `mutmut run`."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = []
    for line in done.stdout.splitlines():
        name, _, status = line.strip().partition(": ")
        if name and status:
            found.append((name, status))
    return found


def module_of(mutant: str) -> str:
    """batch_revoke.answers.replies.x_interpret__mutmut_3 -> answers/replies.py"""
    parts = mutant.split(".")
    return "/".join(parts[1:-1]) + ".py"


def listed(path: Path) -> set[str]:
    """The mutants a list names: the first word of each line that is not a comment."""
    if not path.exists():
        return set()
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every survivor")
    args = parser.parse_args()
    same, dead = listed(EQUIVALENT), listed(UNREACHABLE)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for mutant, status in results():
        module = module_of(mutant)
        if mutant in same or mutant in dead:
            counts[module]["equivalent" if mutant in same else "dead code"] += 1
            continue
        counts[module][status] += 1
        if status == "survived":
            survivors[module].append(mutant)
    print(
        "| module | mutants | killed | survived | equivalent | dead code | no in-process test "
        "| score | dead code as survived |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    total: Counter[str] = Counter()
    for module in sorted(counts):
        c = counts[module]
        total.update(c)
        print(row(module, c))
    print(row("**all**", total))
    if args.survivors:
        for module in sorted(survivors):
            print(f"\n{module}:")
            for mutant in survivors[module]:
                print(f"  {mutant}")
    return 0


def row(name: str, c: Counter[str]) -> str:
    killed = sum(c[s] for s in KILLED)
    judged = killed + c["survived"]
    return (
        f"| {name} | {sum(c.values())} | {killed} | {c['survived']} | {c['equivalent']} "
        f"| {c['dead code']} | {c['no tests']} | {percent(killed, judged)} "
        f"| {percent(killed, judged + c['dead code'])} |"
    )


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


if __name__ == "__main__":
    sys.exit(main())
