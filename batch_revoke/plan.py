"""The input streamed into requests for this run: each chunk's verdicts to the journal, its
rows into batches as the sender asks for them, and aside what must wait; a resume skips settled
rows."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Sequence

from batch_revoke.answers.readbacks import InDoubt
from batch_revoke.answers.rows import covering_unknown, revoked_through
from batch_revoke.chunker import Planner, valid_rows
from batch_revoke.customers import ByCustomer
from batch_revoke.errors import InputError, StorageError
from batch_revoke.lookup import to_look_up
from batch_revoke.model import Batch, IdentifierType, Mode, Record, Row, RowOutcome, Status
from batch_revoke.recorder import RunRecorder
from batch_revoke.sender import Sender
from batch_revoke.source import Source

log = logging.getLogger(__name__)


class Plan:
    """The batches are made as the sender asks for them, so the file is read only as fast as
    requests go out; rows to read back are those an earlier run sent with no definite answer."""

    def __init__(self, source: Source, run: RunRecorder, planner: Planner) -> None:
        self.source = source
        self.run = run
        self.journal = run.journal
        self.planner = planner
        self.customers = ByCustomer(planner, run.lookups)  # rows named by an identifier
        self.deferred: dict[int, list[Row]] = {}  # covering row -> the rows waiting for it
        self._unknown: list[tuple[Row, RowOutcome | None]] = []
        # The revokeIssuals batches given to the sender, held weakly: gone once it lets go.
        self._out: weakref.WeakSet[Batch] = weakref.WeakSet()

    def close(self) -> None:
        self.customers.close()
        self.planner.close()

    async def look_up(self, sender: Sender) -> None:
        """Before any revoke: look up the customers that rows still to send name otherwise
        than by id, so that the batches carry ids."""
        if self.journal.meta().get("state") == "finished":
            return
        validate = self.planner.validate
        # The structure pass tells a file no row of which names a customer otherwise: no
        # pass over it for lookups, so the first revoke leaves at once.
        if validate.default_identifier is IdentifierType.ID and not self.source.by_identifier:
            return
        lookups = self.run.lookups
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
        batches = [batch for row in rows if (batch := self.planner.place(row)) is not None]
        return list(map(self._leaving, batches + list(self.planner.finish())))

    def _leaving(self, batch: Batch) -> Batch:
        """A batch as it goes to the sender, with the customers rows later in the file that
        may revoke its rows' enrolments first (`Batch.later`, kept up to date by `_chunk`)."""
        if batch.mode is Mode.ISSUALS:
            batch.later.update(self.customers.customers_rows(batch.rows, earlier=False))
            self._out.add(batch)
        return batch

    def unsettled(self) -> list[InDoubt]:
        """The rows to read back, with when their latest request left and how often."""
        items, self._unknown = self._unknown, []
        sent = self.journal.last_requests(row.row for row, _ in items)
        return [InDoubt(row, previous, *sent.get(row.row, (None, 0))) for row, previous in items]

    def release_deferred(self) -> list[Row]:
        """Rows whose covering row is settled: revoked through it, or sent on their own."""
        send: list[Row] = []
        for first in list(self.deferred):
            covering = self.journal.outcome(first)
            if covering is None or not covering.final:
                continue
            settled = []
            for row in self.deferred.pop(first):
                through = revoked_through(row, first, covering)
                if through is None:
                    send.append(row)
                else:
                    settled.append(through)
            self.run.record(settled)
        return send

    def give_up_deferred(self) -> None:
        """The rounds are over and rows still wait for a covering row whose outcome is unknown."""
        for first, rows in self.deferred.items():
            covering = self.journal.outcome(first)
            self.run.record(covering_unknown(row, first, covering) for row in rows)
        self.deferred.clear()

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
        rows = valid_rows(verdicts)
        # Sent already (an answer or none): it stays what it was sent as, no duplicate.
        sent = {
            row.row
            for row in rows
            if row.row in in_flight
            or (row.row in known and known[row.row].status is not Status.NOT_ATTEMPTED)
        }
        items = self.customers.resolve(rows, sent)
        rows = valid_rows(items)
        covered = self.customers.customers_rows(rows, earlier=True)
        decided = [v for v in verdicts if isinstance(v, RowOutcome)]
        decided = self.customers.with_customer_ids(decided, records)
        new = []
        for verdict in decided + [item for item in items if not isinstance(item, Row)]:
            if (before := known.get(verdict.row)) is not None and before.final:
                self.run.kept(before)  # an earlier session's verdict stands
            elif verdict.row not in sent:
                new.append(verdict)
            # else sent, with its answer unknown: it stays unknown, and the writer says so
        self.run.record(new)
        for out in list(self._out):  # this chunk's customers rows may race those out already
            out.later.update(self.customers.customers_rows(out.rows, earlier=False))
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
