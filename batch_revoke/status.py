"""The process's exit statuses, and the one mapping from how a command ended (a finished
run's report, or an exception) to its status."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from batch_revoke.errors import ConfigError, InputError

if TYPE_CHECKING:
    from batch_revoke.model import Tally
    from batch_revoke.report import RunReport


class ExitStatus(IntEnum):
    """The process exit statuses, documented in the README."""

    OK = 0  # every record revoked (duplicates of revoked records allowed)
    NOT_ALL_REVOKED = 1  # the run finished, but some records are not revoked
    USAGE = 2  # bad options or unreadable input: nothing was sent
    ABORTED = 3  # the run stopped early (authentication refused, interrupted)


def exit_status(ended: RunReport | BaseException) -> ExitStatus:
    """A finished run's status (an earlier run's, with --auto-resume, when that is worse), or
    a failure's: refused input or options are usage errors; anything else stopped the run."""
    if isinstance(ended, BaseException):
        refused = isinstance(ended, InputError | ConfigError)
        return ExitStatus.USAGE if refused else ExitStatus.ABORTED
    stopped = bool(ended.aborted or ended.incomplete)
    status = run_status(ended.tally, dry_run=ended.dry_run, stopped=stopped)
    return max([status, *(exit_status(report) for report in ended.earlier)])


def run_status(tally: Tally, *, dry_run: bool, stopped: bool) -> ExitStatus:
    """One run's status from its counts: stopped, all done (every row revoked, or planned in
    a dry run, a duplicate counting as its original), or not."""
    if stopped:
        return ExitStatus.ABORTED
    from batch_revoke.model import Status  # model re-exports ExitStatus from here

    done = Status.PLANNED if dry_run else Status.REVOKED
    return ExitStatus.OK if tally.all_done(done) else ExitStatus.NOT_ALL_REVOKED
