"""--auto-resume, a job run on a schedule: finish the runs of --output-dir that stopped before
they were done, then run this input once (resume it, report it, or begin it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from batch_revoke.config import RunConfig
from batch_revoke.errors import RunInProgress
from batch_revoke.journal import in_use
from batch_revoke.outputs import runs_in, this_input_run, when
from batch_revoke.paths import journal_path
from batch_revoke.report import RunReport
from batch_revoke.status import ExitStatus

log = logging.getLogger(__name__)


def run_scheduled(config: RunConfig, run: Callable[[RunConfig], RunReport]) -> RunReport:
    """--auto-resume, for a scheduler that runs the same command every night: first every
    run in --output-dir that was stopped (killed, interrupted, throttled too long) is
    finished from its own copy of its input, whatever the input is now; then this input
    once: resumed if a run of it is unfinished, reported (nothing sent) if one finished,
    otherwise a new run with a dated result file, keeping a copy of its input."""

    earlier: list[RunReport] = []
    if config.output_path is None:
        for stopped in runs_in(config.output_dir):
            if stopped.finished or not stopped.copy.is_file():
                continue
            if in_use(journal_path(stopped.output)):
                log.warning(
                    "the run begun %s (results %s) is still going in another process: left to it",
                    when(stopped.created),
                    stopped.output,
                )
                continue
            log.warning(
                "finishing the run begun %s that stopped before it was done (input %s, results %s)",
                when(stopped.created),
                stopped.input_name or "?",
                stopped.output,
            )
            report = run(
                replace(
                    config,
                    input_path=stopped.copy,
                    input_name=Path(stopped.input_name) if stopped.input_name else None,
                    output_path=stopped.output,
                    resume=True,
                    auto_resume=False,
                    sheet="",
                )
            )
            if report.exit_status is ExitStatus.ABORTED:
                # It stopped again: this input would meet the same wall. The next run
                # finishes both.
                return replace(report, earlier=tuple(earlier), note="this input was not begun")
            earlier.append(report)
    done = this_input_run(config)
    if done is not None and in_use(journal_path(done.output)):
        raise RunInProgress(done.output)
    if done is None:
        report = run(config)
    else:
        report = run(replace(config, output_path=done.output, resume=True, auto_resume=False))
        if done.finished:
            report.note = (
                f"this input was revoked by the run begun {when(done.created)}: nothing was "
                "sent, and its result file was written again"
            )
    report.earlier = tuple(earlier)
    return report
