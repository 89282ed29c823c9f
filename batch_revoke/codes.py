"""What each status and error code of the result file means, and what to do about it: the one
source of the reference's table (docs/generate.py) and of the HTML report's explanations."""

from __future__ import annotations

import re
from dataclasses import dataclass

from batch_revoke.model import ErrorCode, Status, is_final


@dataclass(frozen=True, slots=True)
class Explanation:
    code: str  # as in the result file's error_code (`http_<status>` stands for a family)
    statuses: tuple[Status, ...]  # the statuses a row with this code can have
    meaning: str
    todo: str


STATUS_MEANINGS: dict[Status, str] = {
    Status.REVOKED: "the API said so for this row",
    Status.FAILED: "the API answered, and did not revoke it; or the request could not be sent",
    Status.INVALID: "never sent: the row itself is wrong",
    Status.DUPLICATE: "never sent: same as an earlier row",
    Status.UNCONFIRMED: "the outcome is unknown and the read-back could not settle it",
    Status.NOT_ATTEMPTED: "never sent: the run stopped first, or its customer lookup got no answer",
    Status.PLANNED: "a dry run: would be sent",
}

_F, _I, _U, _N = Status.FAILED, Status.INVALID, Status.UNCONFIRMED, Status.NOT_ATTEMPTED
_READ_BACK = "`batch-revoke verify RESULT.csv` reads it back and writes a settled result file"
_NOT_FOUND = (
    "the API's customer lookup: no customer has this mobile, email, externalId or card number; "
    "nothing was sent for the row"
)
_CHECK_IDENTIFIER = "check customerId and identifierType (a national mobile needs --default-region)"

CODES: tuple[Explanation, ...] = (
    Explanation(
        "404",
        (_F,),
        "the API's: the customer has no active enrolment of this badge (or not this issueId)",
        "nothing, if it was revoked before; otherwise check the row's customerId and ids",
    ),
    Explanation(
        ErrorCode.BADGE_NOT_FOUND,
        (_F,),
        'the API\'s 404 for the whole request ("Passed badge is not found", or code 1054): '
        "the org has no badge with this badgeMetaId, so nothing was revoked",
        "check the row's badgeMetaId (a typo, or a badge of another org or cluster), then run "
        "the rows again",
    ),
    Explanation(
        "814",
        (_F, _U),
        "the API's: the earned badge is not active (revoked before, or never earned)",
        "nothing, if it was revoked before; otherwise check earnedBadgeId and the customer",
    ),
    Explanation(
        "1051",
        (_F,),
        "the API's: the request named no enrolment and no customer",
        "check the row's customerId and issueId",
    ),
    Explanation(
        "715",
        (_F,),
        "the API's: it did not take the badgeMetaId",
        "check the row's badgeMetaId",
    ),
    Explanation(
        "813",
        (_F,),
        "the API's: it did not take the earnedBadgeId",
        "check the row's earnedBadgeId",
    ),
    Explanation(
        "api_error",
        (_F,),
        "the API reported an error without a code",
        "read error_message; fix the row, or ask Capillary what it means",
    ),
    Explanation(
        ErrorCode.ISSUE_NOT_OF_CUSTOMER,
        (_F,),
        "the API's \"issue doesn't belong to customer\": the issueId is another customer's",
        "check the row's customerId and issueId pair",
    ),
    Explanation(
        "http_<status>",
        (_F, _U),
        "an HTTP status without an API code: 429, 503, 521 say nothing was done; another 5xx "
        "ran out of --max-attempts; another 4xx was refused",
        "429, 503, 521, another 5xx: `batch-revoke retry RESULT.csv` sends them again later "
        "(`--resume` of a stopped run sends them); a 4xx: read error_message",
    ),
    Explanation(
        ErrorCode.TIMEOUT,
        (_U, _F),
        "no answer within --timeout: the request may or may not have been applied",
        _READ_BACK,
    ),
    Explanation(
        ErrorCode.CONNECTION_ERROR,
        (_F, _U),
        "the connection was refused (failed: nothing was done) or dropped (unconfirmed)",
        "failed: `batch-revoke retry RESULT.csv` sends them again; unconfirmed: " + _READ_BACK,
    ),
    Explanation(
        ErrorCode.BAD_RESPONSE,
        (_U, _F),
        "an answer that is not JSON, or of a shape this version does not know",
        _READ_BACK,
    ),
    Explanation(
        ErrorCode.NOT_IN_RESPONSE,
        (_U,),
        "the answer did not mention this row",
        _READ_BACK,
    ),
    Explanation(
        ErrorCode.CLIENT_ERROR,
        (_F, _U),
        "the request failed on our side (failed: it never reached the API; unconfirmed: it "
        "may have left)",
        "failed: `batch-revoke retry RESULT.csv` sends them again; unconfirmed: "
        + _READ_BACK
        + "; run with -v if it recurs",
    ),
    Explanation(
        ErrorCode.COVERING_ROW_UNKNOWN,
        (_U,),
        "not sent: a row that revokes every enrolment of this customer for this badge has an "
        "unknown outcome",
        _READ_BACK,
    ),
    Explanation("816", (_F,), _NOT_FOUND, _CHECK_IDENTIFIER),
    # "Customer not found for the given identifiers", the Get Customer Details page's own.
    Explanation("8015", (_F,), _NOT_FOUND, _CHECK_IDENTIFIER),
    Explanation(
        "618",
        (_F,),
        "the API's customer lookup: the customer is marked as fraud; nothing was sent",
        "ask whoever handles fraud cases in Capillary; revoke by the customer's id if it must go",
    ),
    Explanation(
        ErrorCode.LOOKUP_FAILED,
        (_N,),
        "the row's customer lookup got no answer (retries ran out, or the run stopped); "
        "nothing was sent for it",
        "`batch-revoke retry RESULT.csv` looks it up again and sends it (or `--resume`, while "
        "the run is unfinished)",
    ),
    Explanation(
        ErrorCode.RUN_ABORTED,
        (_N, _U),
        "the run stopped before the row was sent (not_attempted) or while it was in flight "
        "(unconfirmed)",
        "`--resume` finishes the run: it reads back rows in flight and sends the rest",
    ),
    Explanation(
        ErrorCode.MALFORMED_RECORD,
        (_I,),
        "the record has more or fewer fields than the header (e.g. an unquoted comma)",
        "quote the field that holds the comma, or fix the record, and run the row again",
    ),
    Explanation(
        ErrorCode.MISSING_VALUE,
        (_I,),
        "badgeMetaId or customerId is blank, or a workbook formula with no saved value",
        "fill it in (a formula: open the workbook in Excel and save it), and run the row again",
    ),
    Explanation(
        ErrorCode.CONFLICTING_IDS,
        (_I,),
        "both issueId and earnedBadgeId are set",
        "keep one: issueId revokes an enrolment, earnedBadgeId an earned badge",
    ),
    Explanation(
        ErrorCode.BAD_IDENTIFIER_TYPE,
        (_I,),
        "identifierType is not one of id, mobile, email, externalId, cardNumber",
        "use one of them (revokeIssue rows other than id are looked up first)",
    ),
    Explanation(
        ErrorCode.BAD_CUSTOMER_ID,
        (_I,),
        "customerId is not a numeric id where one is needed (e.g. 6.209E+07 from a "
        "spreadsheet), or is above 2^63-1",
        "write the customer's id as text (or pass the .xlsx itself), and run the row again",
    ),
    Explanation(
        ErrorCode.VALUE_TOO_LONG,
        (_I,),
        "an id is longer than 256 characters: a paste gone wrong",
        "fix the cell, and run the row again",
    ),
    Explanation(
        ErrorCode.BAD_ID,
        (_I,),
        "an id holds a line break, a tab or another control character, or a badgeMetaId, "
        "issueId or earnedBadgeId holds a quote (a stray quote in the file)",
        "fix the cell (often a quoted cell spanning lines), and run the row again",
    ),
    Explanation(
        ErrorCode.DUPLICATE_ROW,
        (Status.DUPLICATE,),
        "same badge, customer and ids as an earlier row (named in error_message); for an "
        "earned badge, the same badge and earnedBadgeId, however the customer is named",
        "nothing: the earlier row's outcome is this row's",
    ),
)

_BY_CODE = {entry.code: entry for entry in CODES}


def explain(code: str) -> Explanation:
    """A code's entry: an `http_NNN` gets its family's, an unknown code a generic one."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if re.fullmatch(r"http_\d{3}", code):
        return _BY_CODE["http_<status>"]
    return Explanation(
        code,
        (_F,),
        "the API's code, not one this version knows",
        "read error_message",
    )


def retryable(status: Status, code: str) -> bool:
    """Whether sending the row again can still revoke it: never sent, its outcome unknown, or
    failed without a final answer (nothing done, a server error, no answer, never made)."""
    if not is_final(status, code):
        return True
    no_answer = code in (ErrorCode.TIMEOUT, ErrorCode.CONNECTION_ERROR, ErrorCode.CLIENT_ERROR)
    server_error = re.fullmatch(r"http_5\d\d", code) is not None
    return status is Status.FAILED and (no_answer or server_error)
