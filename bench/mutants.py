"""A hand-made mutation pass: realistic one-line bugs, applied one at a time, each run
against the tests that should catch it. It keeps only what mutmut's pass (`make mutants`,
[tool.mutmut] in pyproject.toml) does not reach: the modules outside its list, and mutants only
an end-to-end test or a signal can catch.

    .venv/bin/python bench/mutants.py              # every mutant
    .venv/bin/python bench/mutants.py --list       # ids and mutations, nothing run
    .venv/bin/python bench/mutants.py answers-2 journal-1   # only these

Each mutant is an exact (file, old text, new text) replacement: the old text must occur
exactly once in the file. The file is restored after each run, byte for byte and with its
modification time, whatever ends the run (a test hang, Ctrl-C, SIGTERM). A mutant is
killed when its test selection fails (or times out), survived when it passes. A failure
counts only if that test passes with no mutant applied: one that fails without it too (a test
file that does not import, a test the code has outgrown) is left out, the selection run again,
and the summary lists what was left out.

Unit selections run the mutated module's own test file first, then the other unit tests,
stopping at the first failure. Mutants only an end-to-end test can catch name their test
file and -k selection.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "batch_revoke"
TESTS = ROOT / "tests"
SLOW = {
    "test_e2e.py",
    "test_e2e_lookup.py",
    "test_durability.py",
    "test_wheel.py",
    "test_recipes.py",
    "test_signals.py",
}
SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
UNIT_TIMEOUT = 600  # seconds for a whole unit selection
E2E_TIMEOUT = 600


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # in batch_revoke/
    old: str
    new: str
    what: str  # the slip, in a few words
    e2e: tuple[str, ...] = ()  # pytest arguments instead of the unit tests

    @property
    def path(self) -> Path:
        return PACKAGE / self.file


def m(id: str, file: str, old: str, new: str, what: str, e2e: tuple[str, ...] = ()) -> Mutant:
    return Mutant(id, file, old, new, what, e2e)


SIGNALS_E2E = (
    "tests/test_signals.py",
    "tests/test_durability.py",
    "-k",
    "sigterm or double or three",
)

MUTANTS = [
    m(
        "answers-2",
        "model.py",
        "NOT_APPLIED_STATUSES = frozenset({429, 503, 521})",
        "NOT_APPLIED_STATUSES = frozenset({429, 503})",
        "521 no longer says nothing was done",
    ),
    # --- journal.py: the durable record ---------------------------------------------------
    m(
        "journal-1",
        "journal.py",
        '"INSERT OR REPLACE INTO pending VALUES (?, ?, 1)", [(row, request) for row in rows]',
        '"INSERT OR REPLACE INTO pending VALUES (?, ?, 0)", [(row, request) for row in rows]',
        "a request's rows recorded as not applied",
    ),
    m(
        "journal-2",
        "journal.py",
        '"UPDATE pending SET maybe_applied = ? WHERE request = ?",\n'
        "                    (int(may_be_applied), request),",
        '"UPDATE pending SET maybe_applied = ? WHERE request = ?",\n'
        "                    (int(not may_be_applied), request),",
        "nothing-done flag inverted",
    ),
    m(
        "journal-3",
        "journal.py",
        '            self._db.execute("DELETE FROM pending WHERE request = ?", (request,))\n',
        "",
        "answered request's rows stay pending (skipped write)",
    ),
    m(
        "journal-4",
        "journal.py",
        '            self._db.executemany("DELETE FROM pending WHERE row = ?", '
        "[(o.row,) for o in listed])\n",
        "",
        "read-back outcome leaves its row pending (skipped write)",
    ),
    m(
        "journal-5",
        "journal.py",
        "        int(o.final),",
        "        1,",
        "every outcome recorded as settled",
    ),
    m(
        "journal-6",
        "journal.py",
        'query = "SELECT row FROM pending WHERE maybe_applied = 1"',
        'query = "SELECT row FROM pending WHERE maybe_applied = 0"',
        "in-flight query picks the not-applied rows",
    ),
    m(
        "journal-7",
        "journal.py",
        '"DELETE FROM outcomes WHERE row = ? AND settled = 0"',
        '"DELETE FROM outcomes WHERE row = ? AND settled = 1"',
        "a resend deletes the settled outcome, not the unsettled one",
    ),
    m(
        "journal-8",
        "journal.py",
        'query = "SELECT rows, sent_at, sends FROM requests ORDER BY id"',
        'query = "SELECT rows, sent_at, sends FROM requests ORDER BY id DESC"',
        "a row's first request taken as its latest",
    ),
    # --- realrun.py: the run --------------------------------------------------------------
    m(
        "job-3",
        "recorder.py",
        "self._errors += counts.not_revoked",
        "self._errors += counts.by_status.get(Status.FAILED, 0)",
        "--max-errors ignores lost answers",
    ),
    m(
        "job-4",
        "realrun.py",
        "for _ in range(3):",
        "for _ in range(1):",
        "one read-back round only",
    ),
    m(
        "job-9",
        "recorder.py",
        "            if outcome.status is Status.UNCONFIRMED:\n                self._unconfirmed",
        "            if outcome.status is Status.FAILED:\n                self._unconfirmed",
        "failed rows read back instead of unconfirmed ones",
    ),
    # --- chunks held as columns -----------------------------------------------------------
    m(
        "reader-1",
        "source.py",
        '                    defects += itertools.repeat("", len(block))',
        "                    pass",
        "a usual block gets no defects column: a broken record's defect lands on another row",
    ),
    m(
        "reader-2",
        "source.py",
        'text.strip().lower() not in ("", "id") and (earned is None or not fields[earned].strip())',
        'text.strip().lower() not in ("", "id") and (earned is None or len(fields) <= earned)',
        "a revokeIssue row by mobile in a file with an earnedBadgeId column needs no lookup",
    ),
    m(
        "model-1",
        "model.py",
        'keys = [key or "0" for key in keys]',
        'keys = [key or "" for key in keys]',
        "customer id 000 made by columns matches no other spelling of 0",
    ),
    # --- duplicates.py: duplicate detection in memory ---------------------------------------
    m(
        "duplicates-1",
        "duplicates.py",
        "                    if seconds[at] == second[index]:",
        "                    if True:",
        "identities told apart by their first hash alone",
    ),
    m(
        "duplicates-2",
        "duplicates.py",
        "            suspect[order[twice]] = True\n",
        "",
        "the first of two rows in one chunk not looked at",
    ),
    # --- writer.py: the result file -------------------------------------------------------
    m(
        "writer-3",
        "writer.py",
        '"" if outcome.http_status is None else str(outcome.http_status),',
        "str(outcome.http_status),",
        "http_status None written as 'None'",
    ),
    m(
        "writer-4",
        "writer.py",
        'value.startswith(("=", "+", "-", "@", "\\t", "\\r"))',
        'value.startswith(("=", "+", "-", "\\t", "\\r"))',
        "--excel leaves @ cells live",
    ),
    m(
        "writer-5",
        "writer.py",
        "        while name in taken:",
        "        if name in taken:",
        "a name three times gets two equal columns",
    ),
    m(
        "writer-6",
        "writer.py",
        "        if requested.exists() and not replace_existing:",
        "        if requested.exists() and replace_existing:",
        "existing --output overwritten",
    ),
    m(
        "writer-7",
        "writer.py",
        '        elif "\\r" in joined:',
        "        elif False:",
        "a bare \\r left unquoted",
    ),
    m(
        "writer-8",
        "writer.py",
        '        and text.count("\\n") == len(texts) - 1',
        "        and True",
        "a field holding a line break joined unquoted",
    ),
    # --- interrupts.py: signals -----------------------------------------------------------
    m(
        "interrupts-1",
        "interrupts.py",
        "if signal.getsignal(signum) is not signal.SIG_IGN]",
        "if signal.getsignal(signum) is not signal.SIG_DFL]",
        "default handlers skipped, ignored ones replaced",
    ),
    m(
        "interrupts-2",
        "interrupts.py",
        "            self.cancelled = True\n",
        "",
        "a cancel not noted (second interrupt ends in a traceback)",
        SIGNALS_E2E,
    ),
    m(
        "interrupts-3",
        "interrupts.py",
        "elif self.seen > 1 and self._writing:",
        "elif self.seen > 2 and self._writing:",
        "writing stops on the third interrupt, not the second",
        SIGNALS_E2E,
    ),
    m(
        "interrupts-4",
        "interrupts.py",
        "self.work.get_loop().call_later(self.grace, self.cancel)",
        "self.work.get_loop().call_later(self.grace * 60, self.cancel)",
        "the grace in minutes, not seconds",
        ("tests/test_e2e.py", "-k", "ctrl_c"),
    ),
    # --- sender.py: retries ---------------------------------------------------------------
    m(
        "sender-1",
        "sender.py",
        "        if not failure.did_nothing:\n            self.counted += 1",
        "        if True:\n            self.counted += 1",
        "429/503/521 use up --max-attempts",
    ),
    m(
        "sender-2",
        "sender.py",
        "        if failure.maybe_applied:\n            self.lost.append",
        "        if not failure.maybe_applied:\n            self.lost.append",
        "lost answers recorded inverted",
    ),
    m(
        "sender-3",
        "sender.py",
        "        return self.on_wire or bool(self.lost)",
        "        return bool(self.lost)",
        "a request on the wire not maybe applied",
    ),
    m(
        "sender-4",
        "sender.py",
        "stop=lambda _: state.counted >= self.policy.max_attempts,",
        "stop=lambda _: state.counted > self.policy.max_attempts,",
        "one attempt more than --max-attempts",
    ),
    m(
        "sender-5",
        "sender.py",
        "        return min(retry_after, self.policy.max_retry_after)",
        "        return retry_after",
        "Retry-After wait not capped",
    ),
    m(
        "sender-6",
        "sender.py",
        "        if not nothing_done:\n"
        "            self.nothing_done_since = None\n"
        "            return",
        "        if not nothing_done:\n            return",
        "--max-throttle-wait counts 429s not in a row",
    ),
    m(
        "sender-7",
        "sender.py",
        "        self.unanswered = 0\n",
        "",
        "--max-unanswered counts calls not in a row",
    ),
    m(
        "sender-8",
        "sender.py",
        "        quiet = not self.maybe_applied and not self.nothing_done",
        "        quiet = not self.nothing_done",
        "nothing-done recorded after a lost answer",
    ),
    m(
        "sender-9",
        "sender.py",
        "            if not state.maybe_applied:\n                recorder.abandoned(batch)\n"
        "            return",
        "            if state.maybe_applied:\n                recorder.abandoned(batch)\n"
        "            return",
        "stopped request abandoned when it may have been applied",
    ),
    m(
        "sender-10",
        "recorder.py",
        "self._to_journal(self.journal.attempt, batch, True)",
        "self._to_journal(self.journal.attempt, batch, False)",
        "a retry after 429 still recorded nothing-done (sending_again)",
    ),
    m(
        "sender-11",
        "sender.py",
        "            if state.leaving():\n                self.retries += 1",
        "            if state.leaving() or True:\n                self.retries += 1",
        "first attempts counted as retries",
    ),
]


def unit_selection(module: str) -> list[str]:
    """The module's own tests first, then every other unit test file."""
    own = TESTS / f"test_{module.removesuffix('.py')}.py"
    files = sorted(p for p in TESTS.glob("test_*.py") if p.name not in SLOW)
    ordered = ([own] if own in files else []) + [p for p in files if p != own]
    return [str(p.relative_to(ROOT)) for p in ordered]


def unimportable() -> list[str]:
    """The unit test files pytest cannot collect before any mutation (an import of a name
    the code no longer has): a unit selection would fail on them, whatever the mutant."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *unit_selection("")],
        cwd=ROOT,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
    )
    return sorted(
        {line.split()[1] for line in result.stdout.splitlines() if line.startswith("ERROR ")}
    )


class _Interrupted(Exception):
    pass


def _raise(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def check(mutant: Mutant) -> str:
    text = mutant.path.read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"{mutant.id}: the old text occurs {count} times in {mutant.file}")
    return text


# Tests (node ids) and test files that fail with no mutant applied: a failure of theirs is no
# kill, so a selection leaves them out (found as they fail, or files that do not import).
FAILS_UNMUTATED: set[str] = set()


def left_out(args: list[str]) -> list[str]:
    """`args` without the test files that fail unmutated, and deselecting such tests."""
    kept = [arg for arg in args if arg not in FAILS_UNMUTATED]
    return kept + [f"--deselect={test}" for test in sorted(FAILS_UNMUTATED) if "::" in test]


def run_one(mutant: Mutant, verbose: bool) -> tuple[bool, str, float]:
    """(killed, by what, seconds), by a test that passes with no mutant applied: one that
    fails without it too is left out, and the selection run again."""
    seconds = 0.0
    while True:
        killed, by, elapsed = run_once(mutant, verbose)
        seconds += elapsed
        if not killed or "::" not in by or passes_unmutated(by):
            return killed, by, seconds
        print(f"  {by} fails with no mutant applied: left out, {mutant.id} run again", flush=True)
        FAILS_UNMUTATED.add(by)


def passes_unmutated(test: str) -> bool:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True).returncode == 0


def run_once(mutant: Mutant, verbose: bool) -> tuple[bool, str, float]:
    """(killed, by what, seconds). The file is restored whatever happens."""
    original = check(mutant)
    stat = mutant.path.stat()
    args = left_out(list(mutant.e2e) if mutant.e2e else unit_selection(mutant.file))
    timeout = E2E_TIMEOUT if mutant.e2e else UNIT_TIMEOUT
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    try:
        mutant.path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group: the sandboxes it starts go with it
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                return True, f"timeout after {timeout}s", time.monotonic() - started
            raise
    finally:
        # Signals wait while the file is put back, so it is never left half-written.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            mutant.path.write_text(original, encoding="utf-8")
            os.utime(mutant.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    elapsed = time.monotonic() - started
    if verbose:
        print(stdout[-3000:], stderr[-2000:], sep="\n")
    if process.returncode == 0:
        return False, "", elapsed
    return True, _first_failure(stdout) or f"pytest exit {process.returncode}", elapsed


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED tests/", "ERROR tests/")):
            return line.split(" ", 1)[1].split(" - ")[0]
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="mutant ids (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    options = parser.parse_args()
    chosen = [mu for mu in MUTANTS if not options.ids or mu.id in options.ids]
    unknown = set(options.ids) - {mu.id for mu in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
    stale = []  # every entry whose old text no longer occurs once, not just the first
    for mutant in chosen:
        try:
            check(mutant)
        except SystemExit as exc:
            stale.append(str(exc))
    if stale:
        raise SystemExit("\n".join(stale))
    if not options.list and any(not mu.e2e for mu in chosen):
        broken = unimportable()
        if broken:
            print(f"left out, they do not import with no mutant applied: {', '.join(broken)}")
            FAILS_UNMUTATED.update(broken)
    if options.list:
        for mutant in chosen:
            print(f"{mutant.id:<14} {mutant.file:<14} {mutant.what}")
        return 0
    for signum in SIGNALS - {signal.SIGINT}:
        signal.signal(signum, _raise)
    killed = 0
    rows = []
    try:
        for mutant in chosen:
            dead, by, seconds = run_one(mutant, options.verbose)
            killed += dead
            verdict = f"killed by {by}" if dead else "SURVIVED"
            rows.append(f"| {mutant.id} | {mutant.file} | {mutant.what} | {verdict} |")
            print(f"{mutant.id:<14} {seconds:6.1f}s  {verdict}", flush=True)
    except (KeyboardInterrupt, _Interrupted):
        print("interrupted: the file under mutation was restored", file=sys.stderr)
        return 130
    print()
    print("| id | file | mutation | result |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nscore: {killed}/{len(rows)} killed ({100 * killed / len(rows):.0f}%)")
    if FAILS_UNMUTATED:
        print("left out, failing with no mutant applied:", *sorted(FAILS_UNMUTATED), sep="\n  ")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
