"""The input streamed into requests for this run: each chunk's verdicts to the journal,
its rows into batches as the sender asks for them, and aside what must wait (rows to read
back, rows waiting for the customers row that covers them); a resume skips settled rows."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Sequence

from batch_revoke.answers.readbacks import InDoubt
from batch_revoke.answers.rows import covering_unknown, revoked_through
from batch_revoke.chunker import Planner
from batch_revoke.customers import ByCustomer
from batch_revoke.errors import InputError, StorageError
from batch_revoke.lookup import to_look_up
from batch_revoke.model import (
    Batch,
    IdentifierType,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.recorder import RunRecorder
from batch_revoke.sender import Sender
from batch_revoke.source import Source

log = logging.getLogger(__name__)


class Plan:
    """The batches are made as the sender asks for them, so the file is read only as fast as
    requests go out; rows to read back are those an earlier run sent with no definite answer."""

    def __init__(
        self,
        source: Source,
        run: RunRecorder,
        planner: Planner,
        customers: ByCustomer | None = None,
    ) -> None:
        self.source = source
        self.run = run
        self.journal = run.journal
        self.planner = planner
        self.customers = customers  # rows named by an identifier: resolved by their lookup
        self.deferred: dict[int, list[Row]] = {}  # covering row -> the rows waiting for it
        self._unknown: list[tuple[Row, RowOutcome | None]] = []
        self._later = (customers or planner).later_customers_rows
        # The revokeIssuals batches given to the sender, held weakly: gone once it lets go.
        self._out: weakref.WeakSet[Batch] = weakref.WeakSet()

    async def look_up(self, sender: Sender) -> None:
        """Before any revoke: look up the customers that rows still to send name by mobile,
        email, externalId or card number (one lookup each), so that the batches can carry
        their ids. Nothing to do for a file whose rows all name the customer's id."""
        if self.customers is None or self.journal.meta().get("state") == "finished":
            return
        validate = self.planner.validate
        # The structure pass tells a file no row of which names a customer otherwise: no
        # pass over it for lookups, so the first revoke leaves at once.
        if validate.default_identifier is IdentifierType.ID and (
            "identifiertype" not in self.source.field_index or not self.source.by_identifier
        ):
            return
        lookups = self.customers.lookups
        made, calls = lookups.made, sender.http_calls
        wanted = to_look_up(
            self.source.chunks(), validate, self.journal, lambda: self.run.stop.requested
        )
        await lookups.look_up(sender, wanted, self.run)
        if lookups.made > made:
            log.info(
                "looked up %d customers (%d calls)%s",
                lookups.made - made,
                sender.http_calls - calls,
                f"; {len(lookups.unanswered)} got no answer" if lookups.unanswered else "",
            )

    def batches(self) -> Iterator[Batch]:
        if self.journal.meta().get("state") == "finished":
            return  # resuming a finished run: the result file is rewritten, nothing sent
        in_flight = self.journal.in_flight()
        try:
            for records, earlier in self.source.chunks():
                if self.run.stop.requested:
                    return  # what is not planned is not sent, and --resume sends it
                yield from self._chunk(records, earlier, in_flight)
        except (InputError, StorageError) as exc:  # the journal is intact: --resume goes on
            self.run.stop.request(str(exc))
            return
        yield from map(self._leaving, self.planner.finish())

    def batches_of(self, rows: list[Row]) -> list[Batch]:
        """Rows to send again, in batches."""
        batches = [batch for row in rows if (batch := self.planner.place(row)) is not None]
        return list(map(self._leaving, batches + list(self.planner.finish())))

    def _leaving(self, batch: Batch) -> Batch:
        """A batch as it goes to the sender, with the customers rows later in the file that
        may revoke its revokeIssuals rows' enrolments first (`Batch.later`), kept up to date
        as more of the file is planned while it is out (`_chunk`)."""
        if batch.mode is Mode.ISSUALS:
            batch.later.update(self._later(batch.rows))
            self._out.add(batch)
        return batch

    def unsettled(self) -> list[InDoubt]:
        """The rows to read back, with when their latest request left and how many times
        it was sent."""
        items, self._unknown = self._unknown, []
        sent = self.journal.last_requests(row.row for row, _ in items)
        return [InDoubt(row, previous, *sent.get(row.row, (None, 0))) for row, previous in items]

    def _chunk(
        self,
        records: Sequence[Record],
        earlier: list[RowOutcome] | None,
        in_flight: set[int],
    ) -> Iterator[Batch]:
        verdicts = self.planner.classify(records)
        known = self.journal.outcomes_between(records[0].row, records[-1].row)
        carried = self.source.carried_unconfirmed(records)  # `retry`: read back, then sent
        if earlier is not None:  # `verify`: the result file's outcomes are the starting point
            new = [outcome for outcome in earlier if outcome.row not in known]
            self.run.record(new)
            known.update((outcome.row, outcome) for outcome in new)
        decided = [v for v in verdicts if isinstance(v, RowOutcome)]
        if self.customers is not None and decided:
            decided = self.customers.with_customer_ids(decided, records)
        kept = {v.row for v in decided if v.row in known and known[v.row].final}
        for number in kept:
            self.run.kept(known[number])  # an earlier session's verdicts stand
        self.run.record(v for v in decided if v.row not in kept)
        rows = [v for v in verdicts if isinstance(v, Row)]
        if self.customers is not None:
            # Sent already (an answer or none): it stays what it was sent as, no duplicate.
            sent = {
                row.row
                for row in rows
                if row.row in in_flight
                or (row.row in known and known[row.row].status is not Status.NOT_ATTEMPTED)
            }
            items = self.customers.resolve(rows, sent)
            rows = [item for item in items if isinstance(item, Row)]
            covered = self.customers.covering(rows)
            new = []
            for item in items:
                if isinstance(item, Row):
                    continue
                outcome = known.get(item.row)
                if outcome is not None and outcome.final:
                    self.run.kept(outcome)
                elif item.row not in sent:
                    new.append(item)
                # else sent, with its answer unknown: it stays unknown, and the writer says so
            self.run.record(new)
        else:
            covered = self.planner.covering(rows)
        for out in list(self._out):  # this chunk's customers rows may race those out already
            out.later.update(self._later(out.rows))
        for row in rows:
            outcome = known.get(row.row)
            if outcome is not None and outcome.final:
                self.run.kept(outcome)
            elif (
                row.row in in_flight
                or (outcome and outcome.status is Status.UNCONFIRMED)
                or row.row in carried
            ):
                self._unknown.append((row, outcome or carried.get(row.row)))
            elif earlier is not None:
                continue  # `verify` of a result file touches its unconfirmed rows only
            elif (first := covered.get(row.row)) is not None:
                self.deferred.setdefault(first, []).append(row)
            elif (batch := self.planner.place(row)) is not None:
                yield self._leaving(batch)


def release_deferred(plan: Plan, run: RunRecorder) -> list[Row]:
    """Rows whose covering row is settled: revoked through it, or sent on their own."""
    send: list[Row] = []
    for first in list(plan.deferred):
        covering = run.journal.outcome(first)
        if covering is None or not covering.final:
            continue
        settled = []
        for row in plan.deferred.pop(first):
            through = revoked_through(row, first, covering)
            if through is None:
                send.append(row)
            else:
                settled.append(through)
        run.record(settled)
    return send


def give_up_deferred(plan: Plan, run: RunRecorder) -> None:
    """The rounds are over and rows still wait for a covering row whose outcome is unknown."""
    for first, rows in plan.deferred.items():
        covering = run.journal.outcome(first)
        run.record(covering_unknown(row, first, covering) for row in rows)
    plan.deferred.clear()
