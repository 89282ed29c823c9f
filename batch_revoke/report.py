"""What a run reports: where it stands (Progress), how it ended (RunReport: the text and
JSON summaries and the exit status), and a dry run's estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from batch_revoke.model import Endpoint, ExitStatus, Status, Tally
from batch_revoke.pacing import RateLimit


@dataclass
class RunReport:
    output_path: Path
    tally: Tally
    elapsed: float
    dry_run: bool = False
    aborted: str = ""
    journal_path: Path | None = None
    incomplete: bool = False  # the result file still says INCOMPLETE; the journal has it all
    read_backs: int = 0
    throttled: int = 0  # calls answered 429
    pace: str = ""  # the pace the run settled on, for people
    estimate: str = ""  # a dry run's planned calls and, with --rate-limit, how long they take
    earlier: tuple[RunReport, ...] = ()  # --auto-resume: runs stopped earlier, finished first
    note: str = ""  # what a person should know of how this run came about
    finished_at: str = ""  # local time with its offset, ISO 8601

    @property
    def exit_status(self) -> ExitStatus:
        """This run's status, or an earlier run's (--auto-resume) when that is worse."""
        if self.aborted or self.incomplete:
            return ExitStatus.ABORTED
        done = Status.PLANNED if self.dry_run else Status.REVOKED
        status = ExitStatus.OK if self.tally.all_done(done) else ExitStatus.NOT_ALL_REVOKED
        return max([status, *(report.exit_status for report in self.earlier)])

    @property
    def resumable(self) -> bool:
        return self.journal_path is not None and self.exit_status is ExitStatus.ABORTED

    def text(self) -> str:
        """The summary for people (stderr)."""
        return format_summary(
            self.tally,
            self.output_path,
            self.elapsed,
            dry_run=self.dry_run,
            aborted=self.aborted,
            journal=self.journal_path,
            read_backs=self.read_backs,
            incomplete=self.incomplete,
            throttled=self.throttled,
            pace=self.pace,
            estimate=self.estimate,
        )

    def to_dict(self, resume_command: str | None = None) -> dict[str, object]:
        """The summary for machines (`--summary-json`); the schema is in the README."""
        tally = self.tally
        return {
            "schema": "batch-revoke/summary/1",
            "exit_status": int(self.exit_status),
            "exit_meaning": self.exit_status.name.lower(),
            "dry_run": self.dry_run,
            "rows": {"total": tally.total}
            | {status.value: tally.by_status.get(status, 0) for status in Status},
            "errors": [
                {"status": status.value, "error_code": code, "rows": count}
                for (status, code), count in sorted(
                    tally.by_error.items(), key=lambda item: (-item[1], item[0][1])
                )
            ],
            "requests": {endpoint.value: count for endpoint, count in tally.requests.items()},
            "http_calls": tally.http_calls,
            "retries": tally.retries,
            "read_backs": self.read_backs,
            "throttled_calls": self.throttled,
            "pace": self.pace or None,
            "plan": self.estimate or None,
            "stopped": self.aborted or None,
            "incomplete": self.incomplete,
            "elapsed_seconds": round(self.elapsed, 3),
            "finished_at": self.finished_at or None,
            "output": str(self.output_path),
            "journal": str(self.journal_path) if self.journal_path else None,
            "resume_command": resume_command,
            "earlier_runs": [
                {
                    "output": str(report.output_path),
                    "exit_status": int(report.exit_status),
                    "rows": {"total": report.tally.total}
                    | {s.value: report.tally.by_status.get(s, 0) for s in Status},
                }
                for report in self.earlier
            ],
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, for a live display or a log line."""

    rows_done: int  # rows with an outcome
    rows: int  # in the input
    by_status: dict[Status, int]  # outcomes this session (revoked, failed, unconfirmed, …)
    requests: int  # answered
    calls_per_second: float  # over the session so far
    retries: int
    throttled: int
    pace: str  # the pace the run settled on, for people
    seconds_left: float | None  # None while unknown

    def line(self) -> str:
        left = "?" if self.seconds_left is None else f"{self.seconds_left:.0f}s"
        share = 100 * self.rows_done / self.rows if self.rows else 100
        counts = ", ".join(f"{count} {status}" for status, count in self.by_status.items())
        return (
            f"progress: {self.rows_done} of {self.rows} rows have an outcome ({share:.0f}%)"
            f"{': ' + counts if counts else ''}; {self.requests} requests, "
            f"{self.calls_per_second:.1f} calls/s, {self.retries} retries, {self.throttled} "
            f"throttled, {self.pace}; about {left} left"
        )


def estimate(calls: int, limit: RateLimit | None) -> str:
    """ "1,204 calls: about 12 min at 100/min": under a rate limit, time is calls."""
    text = f"{calls:,} calls"
    if limit is None:
        return f"{text} (pass --rate-limit for how long they take)"
    seconds = calls / limit.count * limit.period
    took = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{math.ceil(seconds / 60)} min"
    return f"{text}: about {took} at {limit}"


def format_summary(
    tally: Tally,
    output: Path,
    elapsed: float,
    *,
    dry_run: bool = False,
    aborted: str = "",
    journal: Path | None = None,
    read_backs: int = 0,
    incomplete: bool = False,
    throttled: int = 0,
    pace: str = "",
    estimate: str = "",
) -> str:
    lines = [f"{'planned' if dry_run else 'processed'} {tally.total} rows in {elapsed:.1f}s"]
    for status in Status:
        if tally.by_status.get(status):
            lines.append(f"  {status.value:<14}{tally.by_status[status]:>9}")
    if tally.by_error:
        lines.append("by error code:")
        ranked = sorted(tally.by_error.items(), key=lambda item: (-item[1], item[0][1]))
        for (status, code), count in ranked:
            lines.append(f"  {code + ' (' + status.value + ')':<36}{count:>9}")
    if tally.requests:
        verb = "would send" if dry_run else "requests"
        parts = ", ".join(
            f"{endpoint.value} {tally.requests[endpoint]}"
            for endpoint in Endpoint
            if endpoint in tally.requests
        )
        if not dry_run:
            parts += f"; {tally.http_calls} HTTP calls, {tally.retries} of them retries"
            if read_backs:
                parts += f", {read_backs} read-backs"
        lines.append(f"{verb}: {parts}")
    if estimate:
        lines.append(f"plan: {estimate}")
    if throttled or pace:
        lines.append(f"rate: {throttled} calls throttled (429){'; ' + pace if pace else ''}")
    if aborted:
        lines.append(f"STOPPED: {aborted}")
    if incomplete:
        lines.append(f"results: {output} is marked INCOMPLETE; the journal holds every outcome")
    else:
        lines.append(f"results: {output}")
    if journal is not None:
        lines.append(f"journal: {journal}")
    return "\n".join(lines)
