"""What an answer to one call means: (batch, HTTP answer or failure) -> one outcome per row,
and a customer lookup's answer. Pure, so every documented answer is a table-driven test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batch_revoke.errors import AuthError
from batch_revoke.model import (
    NOT_APPLIED_STATUSES,
    ApiReply,
    Batch,
    ErrorCode,
    LookupAnswer,
    Mode,
    Row,
    RowOutcome,
    Status,
    id_key,
)

# Per-entry errors meaning "nothing there to revoke". After an attempt whose answer was lost,
# they may mean our own earlier attempt revoked it, so they cannot be called failures.
NOT_PRESENT_CODES = {"404", "814"}
# GLOBAL.BADGE_NOT_FOUND, on badge pages other than the revoke ones: the same as the revoke
# pages' whole-request 404 "Passed badge is not found".
BADGE_NOT_FOUND_CODE = "1054"


@dataclass(eq=False, repr=False)
class RetryableFailure(Exception):
    """One attempt ended without a final answer."""

    code: str
    message: str
    maybe_applied: bool
    http_status: int | None = None
    retry_after: float | None = None
    request_id: str = ""  # of the answer, when there was one

    @property
    def did_nothing(self) -> bool:
        """The answer said nothing was done (429, 503, 521, a busy search engine): retried
        without using up --max-attempts, for --max-throttle-wait at most."""
        return self.http_status in NOT_APPLIED_STATUSES or self.code == LOOKUP_BUSY

    def __str__(self) -> str:
        return self.message


def outcome(
    row: Row,
    status: Status,
    code: str = "",
    message: str = "",
    ids: tuple[str, ...] = (),
    http_status: int | None = None,
    attempts: int = 0,
    request_id: str = "",
) -> RowOutcome:
    """The one RowOutcome builder for a row that was sent, looked up or read back."""
    return RowOutcome(
        row.row,
        status,
        row.mode.endpoint,
        code,
        message,
        ids,
        http_status,
        attempts,
        # The id a lookup found: a revokeEarn row is sent with the identifier itself, so a
        # clean run never knows its id.
        resolved_customer_id=row.customer_id if row.resolved else "",
        request_id=request_id,
    )


def badge_not_found(reply: ApiReply) -> str | None:
    """What the API said, when it refused the whole request because the org has no such
    badge: HTTP 404 with `data` null and the code 404 ("Passed badge is not found"), or the
    code 1054. Not the 404 entry inside a 200 ("Customer doesn't have issue instance"): that
    one is a customer without the enrolment, of a badge that exists."""
    body = reply.body
    if not isinstance(body, dict) or body.get("data"):
        return None
    for code, message in _envelope_errors(body):
        if code == BADGE_NOT_FOUND_CODE or (code == "404" and reply.http_status == 404):
            return f"{code} {message}".strip()
    return None


def badge_missing(row: Row, said: str, reply: ApiReply, attempts: int) -> RowOutcome:
    """A row of a badge the org does not have: failed for good, even after a lost answer."""
    message = _no_such_badge(row.badge_meta_id, said)
    return outcome(
        row,
        Status.FAILED,
        ErrorCode.BADGE_NOT_FOUND,
        message,
        (),
        reply.http_status,
        attempts,
        reply.request_id,
    )


def _no_such_badge(badge_meta_id: str, said: str) -> str:
    return (
        f"the API has no badge {badge_meta_id} in this org ({said}): check the badgeMetaId "
        "(a typo, or a badge of another org or cluster); nothing was revoked"
    )


def failure_of(reply: ApiReply) -> RetryableFailure | None:
    """A reply that is not a final answer (to retry), None for one that is. 401/403 raise."""
    status = reply.http_status
    if status in (401, 403):
        message = reply.text or ("authentication failed" if status == 401 else "not permitted")
        raise AuthError(status, message)
    if status == 429 or status >= 500:
        applied = status not in NOT_APPLIED_STATUSES
        said = _brief(reply)
        text = f"HTTP {status}" + (f": {said}" if said else "")
        return RetryableFailure(
            f"http_{status}", text, applied, status, reply.retry_after, request_id=reply.request_id
        )
    if status < 300 and not isinstance(reply.body, dict):
        text = f"HTTP {status} with a body that is not JSON: {reply.text!r}"
        return RetryableFailure(
            ErrorCode.BAD_RESPONSE, text, True, status, request_id=reply.request_id
        )
    return None


def _brief(reply: ApiReply) -> str:
    """What the answer said, in a few words for a log line."""
    errors = _envelope_errors(reply.body)
    if errors:
        code, message = errors[0]
        return f"{code} {message}"[:120]
    return reply.text if len(reply.text) <= 80 else reply.text[:79] + "…"


# The lookup's codes that are its final answer whatever the HTTP status (the docs' decision),
# with what they mean when the API says no more: 816 "Customer not found for organization";
# 8015 the Get Customer Details page's own "Customer not found for the given identifiers";
# 618 a customer marked as fraud, never one to revoke even when its id comes along.
LOOKUP_REFUSALS = {
    "816": "customer not found",
    "8015": "customer not found",
    "618": "customer is marked as fraud",
}
# "Search Engine is busy, try after some time", as the HTTP status or a code in the body:
# nothing was done, so it is retried like a 503.
LOOKUP_BUSY = "461"


def lookup_failure_of(reply: ApiReply) -> RetryableFailure | None:
    """`failure_of` for a customer lookup: a body carrying a refusal is a final answer
    whatever the HTTP status, and a busy search engine is retried like a 503."""
    said = _lookup_codes(reply.body)
    if any(code in LOOKUP_REFUSALS for code, _ in said):
        return None
    if reply.http_status == int(LOOKUP_BUSY) or any(code == LOOKUP_BUSY for code, _ in said):
        text = f"HTTP {reply.http_status}: {_brief(reply)}"
        return RetryableFailure(
            LOOKUP_BUSY, text, False, reply.http_status, reply.retry_after, reply.request_id
        )
    return failure_of(reply)


def lookup_answer(reply: ApiReply) -> LookupAnswer | str:
    """A final reply to a customer lookup: the customer's id, or the API's reason there is
    none; a str says why the reply is no answer, and the lookup counts as unanswered."""
    body = reply.body
    errors = _envelope_errors(body)
    status, said = reply.http_status, reply.request_id
    for code, message in _lookup_codes(body):
        if code in LOOKUP_REFUSALS:
            return LookupAnswer("", code, message or LOOKUP_REFUSALS[code], status, said)
    if status < 300 and isinstance(body, dict) and not errors:
        found = body.get("id")
        text = str(found) if isinstance(found, int | str) and not isinstance(found, bool) else ""
        if text.isascii() and text.isdigit():
            return LookupAnswer(id_key(text), http_status=status, request_id=said)
        return f"HTTP {status} without a customer id: {reply.text!r}"
    if errors:
        code, message = errors[0]
        return LookupAnswer("", code, message, status, said)
    if status >= 400:
        return LookupAnswer("", f"http_{status}", reply.text, status, said)
    return f"HTTP {status}: {reply.text!r}"


def lookup_refused(row: Row, answer: LookupAnswer) -> RowOutcome:
    """A row whose customer the lookup did not give (not found, fraud): failed, not sent."""
    return outcome(
        row,
        Status.FAILED,
        answer.code,
        f"customer lookup of {_named(row)}: {answer.message or 'no customer'}; nothing was sent",
        http_status=answer.http_status,
        request_id=answer.request_id,
    )


def lookup_unanswered(row: Row, why: str) -> RowOutcome:
    """A row whose customer lookup got no answer: not sent."""
    return outcome(
        row,
        Status.NOT_ATTEMPTED,
        ErrorCode.LOOKUP_FAILED,
        f"customer lookup of {_named(row)} got no answer ({why}); nothing was sent, and "
        "batch-revoke retry (or --resume while the run is unfinished) looks it up again",
    )


def _named(row: Row) -> str:
    return f"{row.identifier_type} {row.customer_id}"


def exhausted(
    batch: Batch, failure: RetryableFailure, sends: int, lost: list[str]
) -> list[RowOutcome]:
    """Retries ran out: unknown if any attempt may have applied, else failed."""
    if lost:
        status = Status.UNCONFIRMED
        message = (
            f"no definite answer after {sends} attempt(s); last: {failure.message}; "
            "the revocation may or may not have happened"
        )
    else:
        status = Status.FAILED
        message = f"gave up after {sends} attempt(s), none carried out; last: {failure.message}"
    return [
        outcome(
            row, status, failure.code, message, (), failure.http_status, sends, failure.request_id
        )
        for row in batch.rows
    ]


def client_failed(
    batch: Batch, problem: str, sends: int, lost: list[str], maybe_sent: bool
) -> list[RowOutcome]:
    """The request ended in an error on our side: failed when nothing can have reached the
    API, unknown (read back) when this or an earlier attempt may have."""
    if maybe_sent or lost:
        status = Status.UNCONFIRMED
        earlier = f"; an earlier attempt's answer was lost ({'; '.join(lost)})" if lost else ""
        message = f"{problem}{earlier}; the revocation may or may not have happened"
    else:
        status = Status.FAILED
        message = f"{problem}; nothing was sent"
    return [
        outcome(row, status, ErrorCode.CLIENT_ERROR, message, (), None, sends) for row in batch.rows
    ]


def interpret(
    batch: Batch, reply: ApiReply, attempts: int, earlier_unknown: str = ""
) -> list[RowOutcome]:
    """Each row's outcome from a final answer, its entries matched by customer and id, never
    by position. `earlier_unknown` names a previous attempt whose answer was lost."""

    def answered(
        row: Row, status: Status, code: str = "", message: str = "", ids: tuple[str, ...] = ()
    ) -> RowOutcome:
        return outcome(
            row, status, code, message, ids, reply.http_status, attempts, reply.request_id
        )

    body = reply.body
    errors = _envelope_errors(body)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(body, dict):
        status = Status.UNCONFIRMED if reply.http_status < 400 else Status.FAILED
        code = (
            ErrorCode.BAD_RESPONSE if status is Status.UNCONFIRMED else f"http_{reply.http_status}"
        )
        message = f"HTTP {reply.http_status} with a body that is not JSON: {reply.text!r}"
        return [answered(row, status, code, message) for row in batch.rows]
    said = badge_not_found(reply)
    if said is not None:
        return [badge_missing(row, said, reply, attempts) for row in batch.rows]
    if (errors and not data) or reply.http_status >= 400:
        code, message = errors[0] if errors else (f"http_{reply.http_status}", reply.text)
        if len(errors) > 1:
            message = "; ".join(f"{c}: {m}" for c, m in errors)
        status = Status.FAILED
        if earlier_unknown and code in NOT_PRESENT_CODES:
            status, message = Status.UNCONFIRMED, _maybe_earlier(message, earlier_unknown)
        return [answered(row, status, code, message) for row in batch.rows]
    if batch.mode is Mode.EARN:
        return [_earn_outcome(batch.rows[0], data, answered)]
    entries = data.get("revokedIssuedBadges") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        message = "the answer has no revokedIssuedBadges list"
        return [
            answered(r, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE, message) for r in batch.rows
        ]
    mine = _entries_per_row(batch, entries)
    return [
        _issue_outcome(row, found, earlier_unknown, answered)
        if isinstance(found, list)
        else answered(row, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE, found)
        for row, found in zip(batch.rows, mine, strict=True)
    ]


def _entries_per_row(batch: Batch, entries: list[Any]) -> list[list[dict[str, Any]] | str]:
    """Each row's entries, or why they cannot be told apart. An entry names its customer and,
    except the 404 "Customer doesn't have issue instance", the issue; one customer may have
    several revokeIssuals rows in one request (the plan uses the fewest requests), so a
    nameless entry belongs to the customer's row that no named entry answered."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if isinstance(entry, dict) and "customerId" in entry:
            by_customer.setdefault(id_key(entry["customerId"]), []).append(entry)
    if batch.mode is Mode.CUSTOMERS:  # a customer appears once per badge: duplicates go
        return [by_customer.get(row.customer_key, []) for row in batch.rows]
    found: list[list[dict[str, Any]] | str] = []
    unanswered: dict[str, list[int]] = {}  # customer -> positions of rows no entry named
    for position, row in enumerate(batch.rows):
        named = [
            e
            for e in by_customer.get(row.customer_key, [])
            if e.get("issuedId") not in (None, "") and id_key(e["issuedId"]) == id_key(row.issue_id)
        ]
        found.append(named)
        if not named:
            unanswered.setdefault(row.customer_key, []).append(position)
    for customer, positions in unanswered.items():
        nameless = [e for e in by_customer.get(customer, []) if e.get("issuedId") in (None, "")]
        # Errors all alike: it does not matter which row gets which.
        alike = len({repr(entry.get("error")) for entry in nameless}) == 1
        if len(positions) == 1 or (len(nameless) == len(positions) and alike):
            for position in positions:
                found[position] = nameless[:1] if len(positions) > 1 else nameless
        elif nameless:
            rows = ", ".join(str(batch.rows[p].row) for p in positions)
            for position in positions:
                found[position] = (
                    f"the answer has {len(nameless)} error(s) for this customer that name no "
                    f"issue, for {len(positions)} of its rows (rows {rows}): which row each "
                    "is about cannot be told"
                )
    return found


def _issue_outcome(
    row: Row,
    entries: list[dict[str, Any]],
    earlier_unknown: str,
    answered: Callable[..., RowOutcome],
) -> RowOutcome:
    if not entries:
        return answered(
            row,
            Status.UNCONFIRMED,
            ErrorCode.NOT_IN_RESPONSE,
            "the answer does not mention this customer" + (" and issue" if row.issue_id else ""),
        )
    # Sorted: the API lists entries in any order, and the result should not vary with it.
    revoked = tuple(
        sorted(str(e.get("issuedId") or row.issue_id) for e in entries if not e.get("error"))
    )
    failures = [_entry_error(e["error"]) for e in entries if e.get("error")]
    if not failures:
        return answered(row, Status.REVOKED, ids=revoked)
    code, message = failures[0]
    if len(failures) > 1:
        message = "; ".join(f"{c}: {m}" for c, m in failures)
    if code == BADGE_NOT_FOUND_CODE:
        code, message = (
            ErrorCode.BADGE_NOT_FOUND,
            _no_such_badge(row.badge_meta_id, f"{code} {message}"),
        )
    if revoked:
        # Some enrolments went, some did not: the row's request is only partly done.
        message = f"{len(revoked)} enrolment(s) revoked, but {message}"
    elif earlier_unknown and code in NOT_PRESENT_CODES:
        return answered(row, Status.UNCONFIRMED, code, _maybe_earlier(message, earlier_unknown))
    return answered(row, Status.FAILED, code, message, revoked)


def _earn_outcome(row: Row, data: Any, answered: Callable[..., RowOutcome]) -> RowOutcome:
    if not isinstance(data, dict) or "isActive" not in data:
        return answered(
            row, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE, "the answer has no isActive flag"
        )
    earned = str(data.get("earnedBadgeId") or row.earned_badge_id)
    if id_key(earned) != id_key(row.earned_badge_id):
        message = f"the answer is about earnedBadgeId {earned}, not this row's"
        return answered(row, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE, message)
    if data["isActive"] is False:
        return answered(row, Status.REVOKED, ids=(earned,))
    message = "the API answered without error but reports the earned badge still active"
    return answered(row, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, message)


def _envelope_errors(body: Any, key: str = "errors") -> list[tuple[str, str]]:
    raw = body.get(key) if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return []
    return [_entry_error(item) for item in raw if item]


def _lookup_codes(body: Any) -> list[tuple[str, str]]:
    """A lookup's errors, then its warnings (where a v2 answer that found the customer says
    more about it)."""
    return _envelope_errors(body) + _envelope_errors(body, "warnings")


def _entry_error(error: Any) -> tuple[str, str]:
    if not isinstance(error, dict):
        return "api_error", str(error)
    message = str(error.get("message") or "")
    code = error.get("code")
    if code is None or code == "":
        # The API's "issue doesn't belong to customer" carries no code; give it a stable one.
        code = ErrorCode.ISSUE_NOT_OF_CUSTOMER if "belong" in message.lower() else "api_error"
    return str(code), message


def _maybe_earlier(message: str, earlier_unknown: str) -> str:
    return (
        f"{message}, but an earlier attempt's answer was lost ({earlier_unknown}) and may have "
        "revoked it; check the customer's badge before sending it again"
    )
