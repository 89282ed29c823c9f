"""--auto-resume, a job run on a schedule: finish the runs of --output-dir that stopped before
they were done, then run this input once (resume it, report it, or begin it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from batch_revoke.config import RunConfig
from batch_revoke.errors import RunInProgress
from batch_revoke.journal import in_use
from batch_revoke.model import ExitStatus
from batch_revoke.outputs import RunOnDisk, journal_path, run_at, runs_in, this_input_run, when
from batch_revoke.report import RunReport

log = logging.getLogger(__name__)

# How long a run stopping in another process is waited for: its requests in flight get 10
# seconds (the grace), then it writes its result file. A scheduler that stops a task with
# SIGTERM (Airflow) retries it at once, while the run still drains.
STOPPING_WAIT = 60.0


def run_scheduled(
    config: RunConfig, run: Callable[[RunConfig], RunReport], wait: float = STOPPING_WAIT
) -> RunReport:
    """The runs of --output-dir that stopped finished from their own copies of their inputs,
    then this input. A run another process is stopping is waited for, up to `wait` seconds."""
    earlier: list[RunReport] = []
    if config.output_path is None:
        for listed in runs_in(config.output_dir):
            if listed.finished or not listed.copy.is_file():
                continue
            stopped = let_go(listed, wait)
            if stopped is None:
                log.warning(
                    "the run begun %s (results %s) is still going in another process: left to it",
                    when(listed.created),
                    listed.output,
                )
                continue
            if stopped.finished:
                continue  # its process finished it while we waited
            log.warning(
                "finishing the run begun %s that stopped before it was done (input %s, results %s)",
                when(stopped.created),
                stopped.input_name or "?",
                stopped.output,
            )
            name = Path(stopped.input_name) if stopped.input_name else None
            own_copy = replace(config, input_path=stopped.copy, input_name=name, sheet="")
            report = run(
                replace(own_copy, output_path=stopped.output, resume=True, auto_resume=False)
            )
            if report.exit_status is ExitStatus.ABORTED:
                # It stopped again: this input would meet the same wall; the next run does both.
                return replace(report, earlier=tuple(earlier), note="this input was not begun")
            earlier.append(report)
    found = this_input_run(config)
    done = found and let_go(found, wait)
    if found is not None and done is None:
        raise RunInProgress(found.output)
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


def let_go(found: RunOnDisk, wait: float) -> RunOnDisk | None:
    """The run as it is once no other process holds it: at once, or, when the one holding it
    is stopping, after waiting up to `wait` seconds for it to let go. None: it is held still."""
    journal = journal_path(found.output)
    if not in_use(journal):
        return found
    now = run_at(found.output)  # read again: it may have begun to stop since it was listed
    if now is None or not now.stopping:
        return None
    log.warning(
        "the run begun %s (results %s) is stopping in another process: waiting up to %.0fs "
        "for it to let go",
        when(found.created),
        found.output,
        wait,
    )
    deadline = time.monotonic() + wait
    while in_use(journal):
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)
    return run_at(found.output) or found
