"""Rows whose answer was lost, settled by asking the API what the customer holds; what each
answer means for each row is `answers.readbacks`'s."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from batch_revoke.answers.readbacks import InDoubt, read_back_verdict, unconfirmed
from batch_revoke.client import read_back_request
from batch_revoke.identifiers import identifier_key
from batch_revoke.model import ApiReply, IdentifierType, Row, RowOutcome
from batch_revoke.sender import Sender, describe, traced

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReadBack:
    """What reading back a set of rows found."""

    outcomes: list[RowOutcome] = field(default_factory=list)  # settled, or still unknown
    resend: list[Row] = field(default_factory=list)  # shown not applied: send again
    read: int = 0  # rows really read back


async def read_back(items: Iterable[InDoubt], sender: Sender) -> ReadBack:
    """Read back every row, one call per customer and badge, as it was sent: settled outcomes,
    and the rows shown not applied, to send again (rows left by a stop are in neither). A
    revokeEarn row is read back by its identifier as revokeEarn takes it: a lookup first would
    be two calls, and its INSTORE customers may miss one revokeEarn found."""
    found = ReadBack()
    groups: dict[tuple[str, IdentifierType, str], list[InDoubt]] = {}
    for item in items:
        row = item.row
        kind = row.identifier_type
        group = (row.badge_meta_id, kind, identifier_key(kind, row.customer_id))
        groups.setdefault(group, []).append(item)
    if groups:
        rows = sum(len(group) for group in groups.values())
        log.info("reading back %d rows whose answer was lost (%d calls)", rows, len(groups))

    async def one(group: list[InDoubt]) -> None:
        first = group[0].row  # the customer as the call spells it: its first row's
        badge, customer_id = first.badge_meta_id, first.customer_id
        request = read_back_request(customer_id, badge, first.identifier_type)
        reply = await sender.fetch(request, "read-back")
        if isinstance(reply, ApiReply):
            log.debug(
                "read-back of customer %s, badge %s: HTTP %s%s",
                customer_id,
                badge,
                reply.http_status,
                traced(reply.request_id),
                extra={"event": "read-back", "request_id": reply.request_id or None},
            )
        for item in group:
            found.read += 1
            try:
                settled = read_back_verdict(item, reply)
            except Exception as exc:  # one odd answer must not end the read-backs
                settled = unconfirmed(item, f"read-back could not be read: {describe(exc)}")
            if isinstance(settled, Row):
                found.resend.append(settled)
            else:
                found.outcomes.append(settled)

    await sender.each(groups.values(), one)
    return found
