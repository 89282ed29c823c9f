"""Rows that name their customer by mobile, email, externalId or card number, once the lookup
has answered: the row as its customer's id, and duplicates and covering rows by the customer
rather than its spelling (a row by id and a row by mobile of one customer are one customer)."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import replace

from batch_revoke.answers.replies import lookup_refused, lookup_unanswered
from batch_revoke.answers.rows import same_customer
from batch_revoke.chunker import Planner, identities
from batch_revoke.duplicates import SeenRows
from batch_revoke.identifiers import needs_lookup
from batch_revoke.lookup import Lookups
from batch_revoke.model import (
    Endpoint,
    LookupAnswer,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
)

NOT_ASKED = "the run stopped before it was asked"


class ByCustomer:
    """Feeds on the planner's rows in file order, a chunk at a time. The identities of rows
    resolved by a lookup are kept here, on disk like the planner's, so memory stays flat."""

    def __init__(self, planner: Planner, lookups: Lookups) -> None:
        self.planner = planner
        self.lookups = lookups
        self._resolved: SeenRows | None = None  # made when the first row is resolved

    def close(self) -> None:
        if self._resolved is not None:
            self._resolved.close()

    def resolve(self, rows: list[Row], keep: Container[int] = ()) -> list[Row | RowOutcome]:
        """Each row in order: as it is, as its customer's id (its lookup answered), or its
        outcome (no such customer, no answer, a duplicate). Rows in `keep` (sent already)
        never become duplicates: what was sent stands."""
        wanted = [row for row in rows if needs_lookup(row)]
        if not wanted and self._resolved is None:
            return list(rows)  # no row named by an identifier so far: nothing to compare
        answers = self.lookups.answers(wanted)
        items: list[Row | RowOutcome] = []
        for row in rows:
            if not needs_lookup(row):
                items.append(row)
                continue
            answer = answers.get(self.lookups.key(row.identifier_type, row.customer_id), NOT_ASKED)
            if isinstance(answer, str):
                items.append(lookup_unanswered(row, answer))
            elif not answer.customer_id:
                items.append(lookup_refused(row, answer))
            else:
                items.append(
                    Row(
                        row.row,
                        row.badge_meta_id,
                        answer.customer_id,
                        row.issue_id,
                        row.earned_badge_id,
                        resolved=True,
                    )
                )
        firsts = self._firsts([item for item in items if isinstance(item, Row)])
        return [
            same_customer(item, first)
            if isinstance(item, Row)
            and (first := firsts.get(item.row)) is not None
            and item.row not in keep
            else item
            for item in items
        ]

    def with_customer_ids(
        self, verdicts: list[RowOutcome], records: Sequence[Record]
    ) -> list[RowOutcome]:
        """The planner's verdicts, its duplicates of rows named by an identifier given the id
        its lookup found: a duplicate spelt like its first row shows as much as any other."""
        validate = self.planner.validate
        rows: dict[int, Row] = {}
        numbered: dict[int, Record] = {}
        for verdict in verdicts:
            if verdict.status is Status.DUPLICATE and verdict.endpoint is Endpoint.REVOKE_ISSUE:
                numbered = numbered or {record.row: record for record in records}
                named = validate(numbered[verdict.row])
                if isinstance(named, Row) and needs_lookup(named):
                    rows[verdict.row] = named
        if not rows:
            return verdicts
        answers = self.lookups.answers(rows.values())
        found = []
        for verdict in verdicts:
            if (row := rows.get(verdict.row)) is not None:
                answer = answers.get(self.lookups.key(row.identifier_type, row.customer_id))
                if isinstance(answer, LookupAnswer) and answer.customer_id:
                    verdict = replace(verdict, resolved_customer_id=answer.customer_id)
            found.append(verdict)
        return found

    def _firsts(self, rows: list[Row]) -> dict[int, int]:
        """Row -> an earlier row of the same badge, customer and ids, where one is named
        differently (one by id, one by lookup; or two identifiers of one customer)."""
        resolved = [row for row in rows if row.resolved]
        named = [row for row in rows if not row.resolved and row.mode is not Mode.EARN]
        if resolved and self._resolved is None:
            self._resolved = SeenRows()
        if self._resolved is None:
            return {}
        found: dict[int, int] = {}

        def earlier(row: Row, first: int | None) -> None:
            if first is not None and first < row.row:
                found[row.row] = min(first, found.get(row.row, first))

        keys = list(zip(*identities(resolved), strict=True))
        # An identity's first row among the rows by id (the planner's), and among the rows
        # resolved (this chunk's added; equal identities keep file order).
        for row, first in zip(resolved, self.planner.first_rows(keys), strict=True):
            earlier(row, first)
        again = self._resolved.duplicates(
            [(h, h2, row.row) for row, (h, h2) in zip(resolved, keys, strict=True)]
        )
        for row in resolved:
            earlier(row, again.get(row.row))
        by_id = self._resolved.find(list(zip(*identities(named), strict=True)))
        for row, first in zip(named, by_id, strict=True):
            earlier(row, first)
        return found

    def customers_rows(self, rows: Sequence[Row], *, earlier: bool) -> dict[int, int]:
        """`Planner.covering` (earlier) or `Planner.later_customers_rows`, also among the
        customers rows resolved by a lookup."""
        planner = self.planner
        found = planner.covering(rows) if earlier else planner.later_customers_rows(rows)
        issuals = [row for row in rows if row.mode is Mode.ISSUALS]
        if self._resolved is None or not issuals:
            return found
        # A customers row's identity: its badge and customer, no issue or earned id.
        keys = identities([Row(0, row.badge_meta_id, row.customer_key) for row in issuals])
        firsts = self._resolved.find(list(zip(*keys, strict=True)))
        for row, first in zip(issuals, firsts, strict=True):
            if first is not None and (first < row.row if earlier else first > row.row):
                found[row.row] = min(first, found.get(row.row, first))
        return found
