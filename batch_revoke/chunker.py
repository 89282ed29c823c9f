"""Records -> verdicts and Batches: validation, duplicates, and grouping into requests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from batch_revoke.model import (
    MAX_BATCH_SIZE,
    Batch,
    Endpoint,
    ErrorCode,
    IdentifierType,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
)

_CHOICES = ", ".join(member.value for member in IdentifierType)


def validate(
    record: Record, field_index: dict[str, int], default_identifier: IdentifierType
) -> Row | RowOutcome:
    """A Row ready to send, or the `invalid` outcome that says why it cannot be sent."""

    def invalid(code: ErrorCode, message: str, endpoint: Endpoint | None = None) -> RowOutcome:
        return RowOutcome(record.row, Status.INVALID, endpoint, code, message)

    if record.defect:
        return invalid(ErrorCode.MALFORMED_RECORD, record.defect)

    def value(name: str) -> str:
        position = field_index.get(name)
        return record.values[position].strip() if position is not None else ""

    badge, customer = value("badgemetaid"), value("customerid")
    issue, earned = value("issueid"), value("earnedbadgeid")
    endpoint = Endpoint.REVOKE_EARN if earned else Endpoint.REVOKE_ISSUE
    blank = [
        label for label, text in (("badgeMetaId", badge), ("customerId", customer)) if not text
    ]
    if blank:
        return invalid(ErrorCode.MISSING_VALUE, f"{' and '.join(blank)} is blank", endpoint)
    if issue and earned:
        return invalid(
            ErrorCode.CONFLICTING_IDS,
            "both issueId and earnedBadgeId are set; a row revokes either an enrolment (issueId) "
            "or an earned badge (earnedBadgeId): split it into two rows",
        )
    type_text = value("identifiertype")
    identifier = IdentifierType.parse(type_text) if type_text else None
    if type_text and identifier is None:
        return invalid(
            ErrorCode.BAD_IDENTIFIER_TYPE,
            f"identifierType {type_text!r} is not one of {_CHOICES}",
            endpoint,
        )
    if earned:
        identifier = identifier or default_identifier
    elif identifier not in (None, IdentifierType.ID):
        return invalid(
            ErrorCode.BAD_IDENTIFIER_TYPE,
            f"identifierType {type_text!r} applies to revokeEarn rows only; "
            "revokeIssue takes the numeric customer id",
            endpoint,
        )
    else:
        identifier = IdentifierType.ID
    # A numeric id mangled by a spreadsheet (1.23E+11, 1001.0) must not reach the API.
    if identifier is IdentifierType.ID and not (customer.isascii() and customer.isdigit()):
        return invalid(
            ErrorCode.BAD_CUSTOMER_ID,
            f"customerId {customer!r} is not a numeric customer id"
            + (
                "; for a mobile, email, externalId or cardNumber set identifierType"
                if earned
                else "; revokeIssue takes the numeric customer id"
            ),
            endpoint,
        )
    return Row(record.row, badge, customer, issue, earned, identifier)


@dataclass
class _OpenBatch:
    rows: list[Row] = field(default_factory=list)
    customers: set[str] = field(default_factory=set)


@dataclass
class Planner:
    """Feeds on records in file order; yields verdicts at once and batches as they fill.

    Rows of one badge need not be adjacent: each (mode, badge) keeps its open batches until
    they hold `batch_size` rows or the input ends (`finish`).
    """

    field_index: dict[str, int]
    default_identifier: IdentifierType = IdentifierType.ID
    batch_size: int = MAX_BATCH_SIZE
    _seen: dict[bytes, int] = field(default_factory=dict)  # row digest -> its first row
    _open: dict[tuple[Mode, str], list[_OpenBatch]] = field(default_factory=dict)
    _batches: int = 0

    def add(self, record: Record) -> Iterator[Batch | RowOutcome]:
        verdict = self.classify(record)
        if isinstance(verdict, RowOutcome):
            yield verdict
        else:
            yield from self.place(verdict)

    def classify(self, record: Record) -> Row | RowOutcome:
        """The row to send, or its `invalid` / `duplicate` outcome."""
        verdict = validate(record, self.field_index, self.default_identifier)
        if isinstance(verdict, RowOutcome):
            return verdict
        row = verdict
        # The identifier type is part of who the customer is: 9800000001 as a mobile is not
        # customer id 9800000001.
        # A fixed-size digest, not the strings: this is the one structure that grows with the
        # file. 16 bytes of blake2b: a collision among even a billion rows is not a concern.
        fields = (
            row.badge_meta_id,
            row.customer_key,
            row.issue_id,
            row.earned_badge_id,
            row.identifier_type.value,
        )
        text = "".join(f"{len(part)}:{part}" for part in fields)  # unambiguous, any content
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        original = self._seen.setdefault(key, row.row)
        if original == row.row:
            return row
        return RowOutcome(
            row.row,
            Status.DUPLICATE,
            row.mode.endpoint,
            ErrorCode.DUPLICATE_ROW,
            f"same badge, customer and ids as row {original}; not sent again",
            duplicate_of=original,
        )

    def place(self, row: Row) -> Iterator[Batch]:
        """Into an open batch; yields the batches that fill up (revokeEarn: at once)."""
        if row.mode is Mode.EARN:
            yield self._batch(Mode.EARN, row.badge_meta_id, [row])
            return
        batches = self._open.setdefault((row.mode, row.badge_meta_id), [])
        # A customer appears at most once per request, so an error entry that names only the
        # customer (the API's 404 has no issuedId) still points at exactly one row.
        key = row.customer_key
        target = next((b for b in batches if key not in b.customers), None)
        if target is None:
            target = _OpenBatch()
            batches.append(target)
        target.rows.append(row)
        target.customers.add(key)
        if len(target.rows) >= self.batch_size:
            batches.remove(target)
            yield self._batch(row.mode, row.badge_meta_id, target.rows)

    def finish(self) -> Iterator[Batch]:
        for (mode, badge), batches in self._open.items():
            for open_batch in batches:
                yield self._batch(mode, badge, open_batch.rows)
        self._open.clear()

    def _batch(self, mode: Mode, badge: str, rows: list[Row]) -> Batch:
        self._batches += 1
        return Batch(self._batches, mode, badge, tuple(rows))


def covering_rows(rows: Iterable[Row]) -> dict[tuple[str, str], int]:
    """(badge, customer) -> the first row that revokes every enrolment of that customer.

    A revokeIssuals row for the same badge and customer would race it (and get a 404 for what
    this very run revoked), so such rows wait for that row's answer instead."""
    covering: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.mode is Mode.CUSTOMERS:
            covering.setdefault((row.badge_meta_id, row.customer_key), row.row)
    return covering
