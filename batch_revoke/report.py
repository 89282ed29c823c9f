"""What a run reports, drawn from its Counts: where it stands (Progress), how it ended
(RunReport: the text and JSON summaries), and its exit status."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batch_revoke.model import Counts, Endpoint, ExitStatus, Status


@dataclass
class RunReport:
    output_path: Path
    tally: Counts  # the whole run's (a run finished before: this invocation's calls alone)
    elapsed: float
    dry_run: bool = False
    aborted: str = ""
    journal_path: Path | None = None
    incomplete: bool = False  # the result file still says INCOMPLETE; the journal has it all
    pace: str = ""  # the pace the run settled on, for people
    estimate: str = ""  # a dry run's planned calls and, with --rate-limit, how long they take
    earlier: tuple[RunReport, ...] = ()  # --auto-resume: runs stopped earlier, finished first
    note: str = ""  # what a person should know of how this run came about
    finished_at: str = ""  # local time with its offset, ISO 8601
    html: Path | None = None  # the HTML report, when one was written
    # The run had finished before this invocation, which sent nothing: what the run sent.
    finished_before: Counts | None = None

    @property
    def exit_status(self) -> ExitStatus:
        """This run's status, or an earlier run's (--auto-resume) when worse."""
        status = run_status(self.tally, dry_run=self.dry_run, stopped=self.stopped)
        return max([status, *(report.exit_status for report in self.earlier)])

    @property
    def stopped(self) -> bool:
        return bool(self.aborted or self.incomplete)

    @property
    def resumable(self) -> bool:
        return self.journal_path is not None and self.exit_status is ExitStatus.ABORTED

    def summary(self) -> str:
        """The summary for people (stderr)."""
        tally = self.tally
        lines = [
            f"finished first, a run that had stopped: {report.output_path} "
            f"({report.tally.total} rows, exit status {int(report.exit_status)})"
            for report in self.earlier
        ]
        if self.note:
            lines.append(self.note)
        lines.append(f"{self._headline()} in {self.elapsed:.1f}s")
        by_status = tally.by_status
        lines += [f"  {s.value:<14}{by_status[s]:>9}" for s in Status if by_status.get(s)]
        if tally.by_error:
            lines.append("by error code:")
            for (status, code), count in _ranked(tally.by_error):
                lines.append(f"  {code + ' (' + status.value + ')':<36}{count:>9}")
        if self.finished_before is not None:
            lines.append(
                f"requests: none now ({tally.http_calls} HTTP calls); the finished run sent "
                + _sent_text(self.finished_before)
            )
        elif self.dry_run and tally.requests:
            lines.append(f"would send: {_endpoints(tally.requests)}")
        elif tally.requests or (tally.http_calls and not self.dry_run):
            lines.append(f"requests: {_sent_text(tally)}")
        if self.estimate:
            lines.append(f"plan: {self.estimate}")
        if tally.throttled or self.pace:
            pace = f"; {self.pace}" if self.pace else ""
            lines.append(f"rate: {tally.throttled} calls throttled (429){pace}")
        if self.aborted:
            lines.append(f"STOPPED: {self.aborted}")
        marked = " is marked INCOMPLETE; the journal holds every outcome" if self.incomplete else ""
        lines.append(f"results: {self.output_path}{marked}")
        if self.journal_path is not None:
            lines.append(f"journal: {self.journal_path}")
        if self.html is not None:
            lines.append(f"report: {self.html}")
        return "\n".join(lines)

    def _headline(self) -> str:
        total = self.tally.total
        if self.dry_run:
            return f"planned {total} rows"
        waiting = self.tally.by_status.get(Status.NOT_ATTEMPTED, 0)
        if waiting == total and not self.tally.requests:
            # Stopped before its first revoke: customer lookups are all it did, if anything.
            lookups = self.tally.lookups
            looked_up = f"looked up {lookups} customers; " if lookups else ""
            return f"{looked_up}no row was sent ({total} rows not attempted)"
        if waiting:
            return f"processed {total - waiting} of {total} rows"
        return f"processed {total} rows"

    def to_dict(self, resume_command: str | None = None) -> dict[str, object]:
        """The summary for machines (`--summary-json`); the schema is in docs/scheduling.md."""
        tally = self.tally
        return {
            "schema": "batch-revoke/summary/1",
            "exit_status": int(self.exit_status),
            "exit_meaning": self.exit_status.name.lower(),
            "dry_run": self.dry_run,
            "rows": _rows(tally),
            "errors": [
                {"status": status.value, "error_code": code, "rows": count}
                for (status, code), count in _ranked(tally.by_error)
            ],
            **_sent(tally),
            "pace": self.pace or None,
            "plan": self.estimate or None,
            "stopped": self.aborted or None,
            "incomplete": self.incomplete,
            "elapsed_seconds": round(self.elapsed, 3),
            "finished_at": self.finished_at or None,
            "output": str(self.output_path),
            "journal": str(self.journal_path) if self.journal_path else None,
            "report": str(self.html) if self.html else None,
            "resume_command": resume_command,
            "finished_before": _sent(self.finished_before) if self.finished_before else None,
            "earlier_runs": [
                {
                    "output": str(report.output_path),
                    "exit_status": int(report.exit_status),
                    "rows": _rows(report.tally),
                }
                for report in self.earlier
            ],
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, for a live display or a log line."""

    counts: Counts  # every session's so far
    rows: int  # in the input
    calls_per_second: float  # over the session so far
    pace: str  # the pace the run settled on, for people
    seconds_left: float | None  # None while unknown

    def line(self) -> str:
        counted, rows = self.counts, self.rows
        left = "?" if self.seconds_left is None else f"{self.seconds_left:.0f}s"
        share = 100 * counted.total / rows if rows else 100
        by_status = ", ".join(f"{count} {status}" for status, count in counted.by_status.items())
        # Before the first revoke, the lookups are the only progress.
        looked_up = f"{counted.lookups} customers looked up, " if counted.lookups else ""
        return (
            f"progress: {counted.total} of {rows} rows have an outcome ({share:.0f}%)"
            f"{': ' + by_status if by_status else ''}; {looked_up}"
            f"{sum(counted.requests.values())} requests, {self.calls_per_second:.1f} calls/s, "
            f"{counted.retries} retries, {counted.throttled} throttled, {self.pace}; "
            f"about {left} left"
        )


def _endpoints(requests: Mapping[Endpoint, int]) -> str:
    return ", ".join(
        f"{endpoint.value} {requests[endpoint]}" for endpoint in Endpoint if endpoint in requests
    )


def _sent_text(sent: Counts) -> str:
    """ "revokeIssue 16; 25 HTTP calls, 2 of them retries, 10 customer lookups" """
    text = f"{_endpoints(sent.requests) or 'none'}; {sent.http_calls} HTTP calls, "
    text += f"{sent.retries} of them retries"
    if sent.read_backs:
        text += f", {sent.read_backs} read-backs"
    if sent.lookups:
        text += f", {sent.lookups} customer lookups"
    return text


def _rows(counts: Counts) -> dict[str, int]:
    return {"total": counts.total} | {s.value: counts.by_status.get(s, 0) for s in Status}


def _sent(sent: Counts) -> dict[str, object]:
    return {
        "requests": {endpoint.value: count for endpoint, count in sent.requests.items()},
        "http_calls": sent.http_calls,
        "retries": sent.retries,
        "read_backs": sent.read_backs,
        "lookups": sent.lookups,
        "throttled_calls": sent.throttled,
    }


def _ranked(by_error: Mapping[tuple[Status, str], int]) -> list[tuple[tuple[Status, str], int]]:
    """The most frequent error codes first, equal counts in code order."""
    return sorted(by_error.items(), key=lambda item: (-item[1], item[0][1]))


def resume_command(argv: Sequence[str], output: Path) -> str:
    """The command as given, with the output named and --resume added (--overwrite dropped);
    with --auto-resume, the command as given finishes the run."""
    if "--auto-resume" in argv:
        return shlex.join(["batch-revoke", *argv])
    args = [arg for arg in argv if arg != "--overwrite"]
    if not any(arg in ("-o", "--output") or arg.startswith("--output=") for arg in args):
        args += ["-o", str(output)]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["batch-revoke", *args])


def run_status(tally: Counts, *, dry_run: bool, stopped: bool) -> ExitStatus:
    """One run's status: stopped, all done (revoked, or planned in a dry run), or not."""
    if stopped:
        return ExitStatus.ABORTED
    done = Status.PLANNED if dry_run else Status.REVOKED
    return ExitStatus.OK if tally.all_done(done) else ExitStatus.NOT_ALL_REVOKED
