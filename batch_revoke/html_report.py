"""The HTML report of a run: one self-contained file gathered from its result CSV and its
journal when there is one (`gather`), drawn by the template `templates/report.html.j2`."""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from batch_revoke.codes import STATUS_MEANINGS, explain, retryable
from batch_revoke.config import finish_command, resume_options
from batch_revoke.history import (
    NEED_A_PERSON,
    Group,
    JournalFacts,
    Results,
    Session,
    read_journal,
    read_results,
)
from batch_revoke.journal import STORED_CALLS
from batch_revoke.model import ExitStatus, Status, is_final
from batch_revoke.outputs import check_target, input_copy_path, journal_path
from batch_revoke.report import RunReport, run_status
from batch_revoke.writer import write_text_atomically


@dataclass(frozen=True, slots=True)
class ReportData:
    """What the template draws: the files' facts, and what is made of them."""

    generated: str
    results: Results
    journal: JournalFacts | None
    journal_note: str  # why the journal's parts are missing, when they are
    exit_status: ExitStatus
    stopped_reason: str
    finish_command: str  # "" when the run did not stop
    settings: list[tuple[str, str]]
    started: float | None  # the journal's, or its first session's when that is earlier
    pace: str
    calls: dict[str, int]

    def retry_command(self, group: Group) -> str:
        """The command that settles or sends the group's rows again, when one can help; ""
        when the rows need fixing first (or nothing: the API's answer stands)."""
        status, code = group.status, group.code
        finish = self.finish_command
        if finish and not is_final(status, code):
            return finish  # the resume reads back, and sends again, exactly these
        if status is Status.UNCONFIRMED:
            options = resume_options(self.journal.options if self.journal else {}, "verify")
            return shlex.join(["batch-revoke", "verify", str(self.results.path), *options])
        return self.select_command(group, dry_run=False) if retryable(status, code) else ""

    def select_command(self, group: Group, dry_run: bool = True) -> str:
        """`batch-revoke retry` of the group's rows, with the options the earlier run needs. As a
        dry run (no host) it takes them out, to fix them or look into them."""
        args = ["retry", str(self.results.path), "--status", group.status.value]
        options = self.journal.options if self.journal else {}
        kept = {k: v for k, v in options.items() if k != "host" or not dry_run}
        more = ["--dry-run"] if dry_run else []
        return shlex.join(
            ["batch-revoke", *args, "--code", group.code, *resume_options(kept), *more]
        )


# --- the whole report ------------------------------------------------------------------


def gather(
    result_csv: Path, *, report: RunReport | None = None, settings: Mapping[str, str] | None = None
) -> ReportData:
    """What the report shows: the result file, the journal beside it if any, and what the
    run that just ended knows and the files do not (`report`, `settings`)."""
    results = read_results(result_csv)
    try:
        result_mtime: float | None = result_csv.stat().st_mtime
    except OSError:
        result_mtime = None
    path = journal_path(result_csv)
    facts, note = None, ""
    if path.exists():
        try:
            facts = read_journal(path, result_mtime)
        except (ValueError, OSError) as exc:
            note = (
                f"{path} could not be read as a journal ({exc}): the timing parts are unavailable."
            )
    elif results.dry_run:
        note = "A dry run sends nothing and keeps no journal: there is no run over time."
    else:
        note = (
            f"No journal beside the result file (looked for {path.name}): the run over time, "
            "the start, the duration and the resumes are unavailable."
        )

    if report is not None:
        stopped, status = report.stopped, report.exit_status
    else:  # a journal says "finished" only of a run that did not stop
        stopped = bool(results.stopped_reason or results.stopped_in_flight)
        stopped = stopped or (facts is not None and not facts.finished)
        status = run_status(results.counts, dry_run=results.dry_run, stopped=stopped)
    reason = (report.aborted if report else "") or results.stopped_reason
    if stopped and not reason:
        reason = (
            f"{results.stopped_in_flight} rows were in flight when it stopped"
            if results.stopped_in_flight
            else "its journal says it did not finish (the reason is in the run's log)"
        )
    finish = ""
    if stopped:  # the run's own copy of its input when it kept one, else what it recorded
        copy = input_copy_path(result_csv)
        # INPUT.csv: not recorded, and the reader knows what the run was given.
        source = str(copy) if copy.exists() else (facts.input if facts else "") or "INPUT.csv"
        finish = finish_command(source, result_csv, facts.options if facts else {})

    # A finished run run again sent nothing: the report is of the run, as its journal has it.
    ran = report.tally if report is not None and report.finished_before is None else None
    # The calls of the run that just ended, as it counted them; else as its journal stored them.
    names = ("http_calls", "retries", "read_backs", "throttled") if ran else STORED_CALLS
    shown = ran or (facts.counts if facts else None)
    calls = {name: getattr(shown, name) for name in names} if shown else {}
    requests = (report and report.tally.requests) or (facts.counts.requests if facts else {})
    calls.update({f"requests {endpoint}": requests[endpoint] for endpoint in sorted(requests)})

    sessions = facts.timeline.sessions if facts else ()
    started = facts.created if facts and facts.created else None
    if sessions:
        started = min(started or sessions[0].started, sessions[0].started)
    return ReportData(
        generated=datetime.now().astimezone().isoformat(timespec="seconds"),
        results=results,
        journal=facts,
        journal_note=note,
        exit_status=status,
        stopped_reason=reason,
        finish_command=finish,
        settings=_settings(result_csv, facts, settings),
        started=started,
        pace=(report.pace if report else "") or _last_pace(sessions),
        calls=calls,
    )


def exit_words(status: ExitStatus, results: Results) -> str:
    if status is ExitStatus.OK and results.dry_run:
        return "exit status 0: a dry run; every row would be sent"
    if status is ExitStatus.OK:
        return "exit status 0: every row revoked"
    if status is ExitStatus.NOT_ALL_REVOKED and results.dry_run:
        return "exit status 1: a dry run; some rows would not be sent"
    if status is ExitStatus.NOT_ALL_REVOKED:
        return "exit status 1: the run finished, but some rows are not revoked"
    if status is ExitStatus.ABORTED:
        return "exit status 3: the run stopped early; the command below finishes it"
    return f"exit status {int(status)}"


def _settings(
    result_csv: Path, facts: JournalFacts | None, given: Mapping[str, str] | None
) -> list[tuple[str, str]]:
    shown = {"input": facts.input} if facts and facts.input else {}
    shown["result file"] = str(result_csv)
    if facts:
        shown["journal"] = str(facts.path)
        # Option names for people (default_region -> default region); unset shows as "none".
        shown |= {k.replace("_", " "): v or "none" for k, v in sorted(facts.options.items())}
    shown |= {key: value for key, value in (given or {}).items() if value and key not in shown}
    return list(shown.items())


def _last_pace(sessions: Iterable[Session]) -> str:
    paces = [pace for session in sessions for _, _, pace in session.steps if pace]
    return f"about {paces[-1] * 60:.0f} calls a minute (as the run last kept to)" if paces else ""


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} min" if hours else f"{minute} min {second:02d} s"


# --- drawing ---------------------------------------------------------------------------


def render(data: ReportData) -> str:
    """The report as one HTML document, drawn by the package's template."""
    import jinja2  # only the report needs it

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("batch_revoke", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["code_spans"] = _code_spans
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.filters["duration"] = _duration
    environment.filters["nice_max"] = nice_max
    environment.filters["when"] = _when
    template = environment.get_template("report.html.j2")
    return template.render(
        data=data,
        Status=Status,
        STATUS_MEANINGS=STATUS_MEANINGS,
        NEED_A_PERSON=NEED_A_PERSON,
        explain=explain,
        exit_words=exit_words,
    )


def _code_spans(text: str) -> Any:
    """`a command` as <code>, the rest escaped."""
    from markupsafe import Markup, escape

    return Markup("").join(
        Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
        for i, part in enumerate(str(text).split("`"))
    )


def nice_max(value: float) -> float:
    """The top of a chart's axis: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if value <= step * power))


def write_report(
    result_csv: Path,
    out: Path | None = None,
    *,
    report: RunReport | None = None,
    settings: Mapping[str, str] | None = None,
) -> Path:
    """Write the HTML report of a result file (`out`: `<result>.html` when None), after
    refusing a file that is not a complete result file; return its path."""
    data = gather(result_csv, report=report, settings=settings)
    target = out if out is not None else result_csv.with_suffix(".html")
    check_target(target, result_csv)
    write_text_atomically(target, render(data))
    return target
