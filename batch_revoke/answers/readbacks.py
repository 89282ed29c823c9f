"""What a read-back (GET .../badges/management/{customerId}/badge/{badgeMetaId}) says about a
row whose answer was lost: `revoked`, still `unconfirmed`, `failed` (no such badge), or the row
itself: "not applied, send it again". A read-back that failed, or has a shape this code does
not know, leaves the row `unconfirmed`: it never guesses."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from batch_revoke.answers.replies import badge_missing, badge_not_found, outcome
from batch_revoke.answers.rows import IN_FLIGHT
from batch_revoke.model import ApiReply, ErrorCode, Mode, Row, RowOutcome, Status, id_key

# Our clock and the API's may disagree: a revocation stamped up to this long before our
# request left still counts as ours. One stamped earlier was someone else's.
CLOCK_SLACK = 300.0


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A row whose outcome is unknown: sent (maybe applied) with no definite answer."""

    row: Row
    previous: RowOutcome | None  # None: in flight when the run stopped, no answer at all
    sent_at: float | None  # when its latest request left; None when not known
    sends: int = 0  # how many times its latest request was sent, as the journal counted


def read_back_verdict(item: InDoubt, reply: ApiReply | str) -> RowOutcome | Row:
    """What the read-back `reply` (or why there is none) says of the row."""
    if isinstance(reply, str):
        return unconfirmed(item, reply)
    said = badge_not_found(reply)
    if said is not None:
        # Not "nothing there": the lost request cannot have revoked anything of it either.
        return badge_missing(item.row, said, reply, _attempts(item))
    data = reply.body.get("data") if isinstance(reply.body, dict) else None
    if reply.http_status != 200 or not isinstance(data, dict):
        return unconfirmed(item, f"read-back answered HTTP {reply.http_status}: {reply.text!r}")
    try:
        if item.row.mode is Mode.EARN:
            return _earn_verdict(item, data, reply)
        return _issue_verdict(item, data, reply)
    except _UnknownShape as shape:
        return unconfirmed(item, f"read-back has a shape this version does not know ({shape})")


def unconfirmed(item: InDoubt, why: str) -> RowOutcome:
    """Still unknown, and `why`."""
    earlier = item.previous
    if earlier is None:
        why = IN_FLIGHT + why  # no answer at all
        return outcome(
            item.row, Status.UNCONFIRMED, ErrorCode.RUN_ABORTED, why, attempts=item.sends
        )
    return replace(
        earlier, status=Status.UNCONFIRMED, error_message=f"{earlier.error_message}; {why}"
    )


NOT_READ_BACK = "not read back (--no-verify; `batch-revoke verify RESULT.csv` reads it back)"


def not_read_back(item: InDoubt) -> RowOutcome | None:
    """Left unknown by --no-verify (None when an earlier session said so already)."""
    if item.previous is not None and "--no-verify" in item.previous.error_message:
        return None
    return unconfirmed(item, NOT_READ_BACK)


class _UnknownShape(Exception):
    pass


# The issual states the vendor names: ACTIVE, REVOKED and, among the others, EXPIRED (an
# earn's isActive is read as ACTIVE or REVOKED). Any other issuedStatus might be active, so a
# row it could be is not settled.
ACTIVE, REVOKED, EXPIRED = "ACTIVE", "REVOKED", "EXPIRED"


@dataclass(frozen=True, slots=True)
class _Entry:
    ident: str
    state: object  # an issual's issuedStatus as given, or an earn's ACTIVE / REVOKED
    revoked_on: object  # as given; read only for an entry that matters


def _issue_verdict(item: InDoubt, data: dict[str, Any], reply: ApiReply) -> RowOutcome | Row:
    """A revokeIssuals row by its own issual; a customers row by every issual that could be
    active. An EXPIRED one is neither what the lost request left undone nor what it did."""
    # issuedStatus kept as given, known or not: it matters only for the entries a row could be.
    issuals = _entries(data, "issualDetails", "issuals", "issueId", lambda e: e.get("issuedStatus"))
    row = item.row
    by_id = row.mode is Mode.ISSUALS
    mine = [e for e in issuals if id_key(e.ident) == id_key(row.issue_id)] if by_id else issuals
    if any(e.state == ACTIVE for e in mine):
        return row  # still active: the lost request was never applied
    unknown = [e for e in mine if e.state not in (ACTIVE, REVOKED, EXPIRED)]
    if unknown:
        raise _UnknownShape(f"issual {unknown[0].ident} with issuedStatus {unknown[0].state!r}")
    ours = [e for e in mine if _ours(e, item.sent_at)]
    if not ours:
        # Never this customer's, expired, or revoked before we asked: the API's own answer
        # (a 404) says which.
        return row
    if by_id:
        return _revoked(item, reply, (row.issue_id,), "the enrolment is REVOKED")
    ids = tuple(sorted(e.ident for e in ours))
    return _revoked(item, reply, ids, "no ACTIVE enrolment is left")


def _earn_verdict(item: InDoubt, data: dict[str, Any], reply: ApiReply) -> RowOutcome | Row:
    # Undocumented: the vendor's page names earnDetails.earns[] but not its fields. Anything
    # other than {earnedBadgeId, isActive: bool} is refused rather than guessed at.
    def state(entry: dict[str, Any]) -> object:
        flag = entry.get("isActive")
        if not isinstance(flag, bool):
            raise _UnknownShape(f"earns entry {entry!r}")
        return ACTIVE if flag else REVOKED

    earns = _entries(data, "earnDetails", "earns", "earnedBadgeId", state)
    row = item.row
    mine = [e for e in earns if id_key(e.ident) == id_key(row.earned_badge_id)]
    if any(e.state == ACTIVE for e in mine) or not any(_ours(e, item.sent_at) for e in mine):
        return row
    return _revoked(item, reply, (row.earned_badge_id,), "the earned badge is inactive")


def _ours(entry: _Entry, sent_at: float | None) -> bool:
    """Revoked, and (when we know when our request left) not long before it."""
    if entry.state != REVOKED:
        return False
    if sent_at is None:
        return True
    revoked_at = _when(entry.revoked_on)
    if revoked_at is None:
        raise _UnknownShape("a revoked entry without revokedOn")
    return revoked_at >= sent_at - CLOCK_SLACK


def _attempts(item: InDoubt) -> int:
    """The sends of the request whose answer was lost: its answer's count, else the journal's."""
    return item.previous.attempts if item.previous else item.sends


def _revoked(item: InDoubt, reply: ApiReply, ids: tuple[str, ...], what: str) -> RowOutcome:
    return outcome(
        item.row,
        Status.REVOKED,
        "",
        f"confirmed by read-back: {what}",
        ids,
        reply.http_status,
        _attempts(item),
        reply.request_id,
    )


def _entries(
    data: dict[str, Any],
    details_key: str,
    list_key: str,
    id_field: str,
    state_of: Callable[[dict[str, Any]], object],
) -> list[_Entry]:
    """One list of the read-back, every entry checked."""
    details = data.get(details_key)
    listed = details.get(list_key) if isinstance(details, dict) else None
    if not isinstance(listed, list):
        raise _UnknownShape(f"no {details_key}.{list_key} list")
    entries = []
    for item in listed:
        if not isinstance(item, dict):
            raise _UnknownShape(f"{list_key} entry {item!r}")
        ident = item.get(id_field)
        if not isinstance(ident, str | int) or ident == "":
            raise _UnknownShape(f"{list_key} entry without {id_field}: {item!r}")
        entries.append(_Entry(str(ident), state_of(item), item.get("revokedOn")))
    return entries


def _when(value: object) -> float | None:
    """revokedOn as seconds since the epoch: the page's epoch seconds with a fraction
    (1728282201.451), epoch milliseconds, or an ISO 8601 date."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value / 1000 if value > 1e11 else float(value)  # epoch seconds or milliseconds
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise _UnknownShape(f"revokedOn {value!r} is not a date") from None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    raise _UnknownShape(f"revokedOn {value!r} is not a date")
