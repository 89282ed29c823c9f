"""Outcomes as they come: to the journal, into the run's counts, and against --max-errors."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from batch_revoke.answers.readbacks import InDoubt
from batch_revoke.answers.rows import raced
from batch_revoke.config import ErrorLimit
from batch_revoke.errors import StorageError
from batch_revoke.journal import Journal, Pace
from batch_revoke.lookup import Lookups
from batch_revoke.model import (
    ANSWERED,
    Batch,
    Counts,
    Endpoint,
    LookupAnswer,
    RowOutcome,
    Status,
)
from batch_revoke.readback import ReadBack
from batch_revoke.sender import Sender
from batch_revoke.stop import Stop, Stopped


class RunRecorder:
    """What the sender reports to; it owns the counts the progress line shows (`tally`)."""

    def __init__(
        self,
        journal: Journal,
        max_errors: ErrorLimit | None,
        rows: int,
        lookups: Lookups,
    ) -> None:
        self.journal = journal
        self.max_errors = max_errors
        self.lookups = lookups
        self.rows = rows  # in the input
        self.stop = Stop(self._stopping)
        # Rows with an outcome per status; this session's requests answered and read-backs.
        self._rows: Counter[Status] = Counter()
        self._requests: dict[Endpoint, int] = {}
        self._read_backs = 0
        # This session's rows answered, and those not revoked: what --max-errors counts.
        self._answered = 0
        self._errors = 0
        self.storage_error: StorageError | None = None
        self.sender: Sender | None = None
        self._unconfirmed: list[InDoubt] = []  # to read back after the sends
        self._sent_at: dict[int, float] = {}
        self._checked = 0.0  # when the journal was last seen in its folder
        # Customers the lookups before the sends did not find: their rows fail, and are counted
        # when recorded, after the lookups; until then these count against --max-errors.
        self._refused = 0

    # Recorder, for the sender

    def sending(self, batch: Batch) -> None:
        if not self._to_journal(self.journal.sending, batch):
            raise Stopped  # no durable intent, no request
        self._sent_at[batch.number] = time.time()

    def nothing_done(self, batch: Batch) -> None:
        self._to_journal(self.journal.attempt, batch, False)

    def sending_again(self, batch: Batch) -> None:
        if not self._to_journal(self.journal.attempt, batch, True):
            raise Stopped  # no durable "may be applied", no attempt

    def answered(self, batch: Batch, outcomes: list[RowOutcome]) -> None:
        sent_at = self._sent_at.pop(batch.number, None)
        self._requests[batch.mode.endpoint] = self._requests.get(batch.mode.endpoint, 0) + 1
        rows = {row.row: row for row in batch.rows}
        if batch.later:  # a customers row later in the file may have revoked some first
            outcomes = [
                o
                if (later := batch.later.get(o.row)) is None
                else raced(rows[o.row], o, later, self.journal.outcome(later))
                for o in outcomes
            ]
        if not self._to_journal(self.journal.answered, batch, outcomes, *self.now()):
            return
        for outcome in outcomes:
            if outcome.status is Status.UNCONFIRMED:
                self._unconfirmed.append(InDoubt(rows[outcome.row], outcome, sent_at))
        self._count(outcomes)

    def abandoned(self, batch: Batch) -> None:
        self._sent_at.pop(batch.number, None)
        self._to_journal(self.journal.answered, batch)

    # the rest of the run

    def attach(self, sender: Sender) -> None:
        self.sender = sender

    def take_unconfirmed(self) -> list[InDoubt]:
        """The rows whose outcome is unknown so far, to read back in this round."""
        items, self._unconfirmed = self._unconfirmed, []
        return items

    def record_read_back(self, found: ReadBack, calls: int) -> None:
        self._read_backs += calls
        self.record(found.outcomes)

    def calls(self) -> Counts:
        """This session's calls, and its requests answered."""
        sender = self.sender
        pacer = sender.pacer if sender else None
        return Counts(
            requests=dict(self._requests),
            http_calls=sender.http_calls if sender else 0,
            retries=sender.retries if sender else 0,
            throttled=pacer.throttled_calls if pacer else 0,
            read_backs=self._read_backs,
            lookups=self.lookups.made,
            pauses=pacer.pauses if pacer else 0,
            paused_seconds=pacer.paused_seconds if pacer else 0.0,
        )

    def tally(self) -> Counts:
        """The run so far: its rows with an outcome, and every session's requests and calls."""
        return replace(self.journal.earlier + self.calls(), by_status=dict(self._rows))

    def now(self) -> tuple[Counts, Pace]:
        """This session's calls and the pace it keeps, for the run over time."""
        pacer = self.sender.pacer if self.sender else None
        return self.calls(), (pacer.pace, pacer.period) if pacer and pacer.pace else None

    def kept(self, outcome: RowOutcome) -> None:
        """An earlier session's outcome that stands."""
        self._rows[outcome.status] += 1

    def record(self, outcomes: Iterable[RowOutcome]) -> None:
        listed = list(outcomes)
        if self._to_journal(self.journal.record, listed, *self.now()):
            self._count(listed)

    def lookup_refused(self, answer: LookupAnswer) -> None:
        """A customer the lookup did not find: its rows fail. It counts against --max-errors
        now, so a file of customers unknown to the API stops after the limit."""
        self._refused += 1
        errors, answered = self._errors + self._refused, self._answered + self._refused
        if self.max_errors is not None and self.max_errors.exceeded(errors, answered):
            self.stop.request(
                f"--max-errors {self.max_errors} reached: {errors} of {answered} rows were not "
                f"revoked ({self._refused} customers the lookup did not find; last: "
                f"{answer.code} {answer.message})"
            )

    def _count(self, outcomes: list[RowOutcome]) -> None:
        counts = Counts.of(outcomes)
        self._rows.update(counts.by_status)
        self._answered += sum(counts.by_status.get(status, 0) for status in ANSWERED)
        self._errors += counts.not_revoked
        if self.max_errors is not None and self.max_errors.exceeded(self._errors, self._answered):
            self.stop.request(
                f"--max-errors {self.max_errors} reached: {self._errors} of "
                f"{self._answered} rows sent were not revoked"
            )

    def _to_journal(self, write: Callable[..., None], *args: object) -> bool:
        """A journal write; when it fails the run stops, and what was written stays valid."""
        if self.storage_error is not None:
            return False
        try:
            # A journal whose folder was deleted or moved is still written through its open
            # file, but nothing would be left to resume from: stop, and restore it at the end.
            if time.monotonic() - self._checked >= 1.0:
                self._checked = time.monotonic()
                if not self.journal.path.exists():
                    assert self.journal.path is not None
                    raise StorageError(
                        self.journal.path,
                        "the journal disappeared (was its folder deleted or moved?)",
                    )
            write(*args)
        except StorageError as exc:
            self.storage_error = exc
            self.stop.request(str(exc))
            return False
        return True

    def _stopping(self) -> None:
        """Said in the journal, for a scheduler's retry that finds this run still held: it
        waits for the run to let go (it drains for a grace period) instead of refusing."""
        if self.storage_error is None:
            with contextlib.suppress(StorageError):
                self.journal.mark_stopping()
