"""The values that flow through the pipeline: small, free of I/O, never changed once made.

Record and RowOutcome, made once per input row, are not frozen: a frozen dataclass costs about
1 µs more to create, seconds on millions of rows. `dataclasses.replace` makes a changed copy."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple, TypeVar, overload

MAX_BATCH_SIZE = 20  # the API's limit for customers / revokeIssuals per revokeIssue request

# Answers that say the request was not carried out (throttled, unavailable): sending it again
# cannot double anything, so a failed row with one (or a refused connection) is not final.
NOT_APPLIED_STATUSES = frozenset({429, 503, 521})
NOTHING_DONE_CODES = frozenset(
    {f"http_{status}" for status in NOT_APPLIED_STATUSES} | {"connection_error"}
)


class ExitStatus(IntEnum):
    """The process exit statuses, documented in the README."""

    OK = 0  # every record revoked (duplicates of revoked records allowed)
    NOT_ALL_REVOKED = 1  # the run finished, but some records are not revoked
    USAGE = 2  # bad options or unreadable input: nothing was sent
    ABORTED = 3  # the run stopped early (authentication refused, interrupted)


class Status(StrEnum):
    REVOKED = "revoked"
    FAILED = "failed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    UNCONFIRMED = "unconfirmed"
    NOT_ATTEMPTED = "not_attempted"
    PLANNED = "planned"


# The rows a request was answered for, revoked or not: what --max-errors and the timeline count.
NOT_REVOKED = frozenset({Status.FAILED, Status.UNCONFIRMED})
ANSWERED = NOT_REVOKED | {Status.REVOKED}


def is_final(status: Status, code: str) -> bool:
    """Done for good: a resume keeps it. Unknown outcomes are not, nor failures on an answer
    that did nothing (429, 503, 521, a refused connection)."""
    unsettled = status in (Status.UNCONFIRMED, Status.NOT_ATTEMPTED)
    return not (unsettled or (status is Status.FAILED and code in NOTHING_DONE_CODES))


class Endpoint(StrEnum):
    REVOKE_ISSUE = "revokeIssue"
    REVOKE_EARN = "revokeEarn"


class Mode(StrEnum):
    """What one row asks for, and so which request body carries it."""

    CUSTOMERS = "customers"  # revokeIssue, every enrolment of the customer
    ISSUALS = "revokeIssuals"  # revokeIssue, one enrolment (issueId)
    EARN = "earn"  # revokeEarn, one earned badge

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.REVOKE_EARN if self is Mode.EARN else Endpoint.REVOKE_ISSUE


class IdentifierType(StrEnum):
    ID = "id"
    MOBILE = "mobile"
    EMAIL = "email"
    EXTERNAL_ID = "externalId"
    CARD_NUMBER = "cardNumber"

    @classmethod
    def parse(cls, text: str) -> IdentifierType | None:
        """Case-insensitive lookup; None when the text names no identifier type."""
        return _IDENTIFIER_TYPES.get(text.strip().lower())


_IDENTIFIER_TYPES = {member.value.lower(): member for member in IdentifierType}


class ErrorCode(StrEnum):
    """Codes of our own, for outcomes the API gives no code for. API codes are kept as text."""

    MALFORMED_RECORD = "malformed_record"
    MISSING_VALUE = "missing_value"
    CONFLICTING_IDS = "conflicting_ids"
    BAD_IDENTIFIER_TYPE = "bad_identifier_type"
    BAD_CUSTOMER_ID = "bad_customer_id"
    VALUE_TOO_LONG = "value_too_long"
    BAD_ID = "bad_id"  # a control character (a line break, a tab) inside an id
    DUPLICATE_ROW = "duplicate_row"
    ISSUE_NOT_OF_CUSTOMER = "issue_not_of_customer"  # the API's error without a code
    BADGE_NOT_FOUND = "badge_not_found"  # the API's whole-request 404 (or 1054): no such badge
    NOT_IN_RESPONSE = "not_in_response"
    BAD_RESPONSE = "bad_response"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    CLIENT_ERROR = "client_error"  # the request failed on our side, not in the API
    RUN_ABORTED = "run_aborted"
    COVERING_ROW_UNKNOWN = "covering_row_unconfirmed"  # waits for a row whose outcome is unknown
    LOOKUP_FAILED = "lookup_failed"  # the customer lookup got no answer: nothing was sent


@dataclass(slots=True)
class Record:
    """One CSV record exactly as read: its position and its raw field values."""

    row: int  # 1-based position among the file's records (the header is not counted)
    values: tuple[str, ...]
    defect: str = ""  # why the record's shape is broken (wrong number of fields), if it is


# with the reader's blocks kept as read, saves 11% of the 1M dry run (5.18 s -> 4.63 s CPU, 2026-12)
class Chunk(Sequence[Record]):
    """Records as the reader's columns (`defects` None: none has one), made Records on demand."""

    __slots__ = ("_records", "defects", "numbers", "values")

    def __init__(
        self, values: list[Sequence[str]], numbers: list[int], defects: list[str] | None = None
    ) -> None:
        self.values = values
        self.numbers = numbers
        self.defects = defects
        self._records: list[Record] | None = None

    def __len__(self) -> int:
        return len(self.numbers)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return self.records[index]
        defect = self.defects[index] if self.defects is not None else ""
        return Record(self.numbers[index], tuple(self.values[index]), defect)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            defects = itertools.repeat("") if self.defects is None else self.defects
            self._records = list(map(Record, self.numbers, map(tuple, self.values), defects))
        return self._records


def columns(
    records: Sequence[Record],
) -> tuple[Sequence[Sequence[str]], Sequence[int], Sequence[str] | None]:
    """Each record's values, number and defect (None: no record has one), as columns."""
    if isinstance(records, Chunk):
        return records.values, records.numbers, records.defects
    return (
        list(map(operator.attrgetter("values"), records)),
        list(map(operator.attrgetter("row"), records)),
        list(map(operator.attrgetter("defect"), records)),
    )


class _RowFields(NamedTuple):
    row: int
    badge_meta_id: str
    customer_id: str
    issue_id: str
    earned_badge_id: str
    identifier_type: IdentifierType
    resolved: bool  # customer_id is the id a lookup found for the identifier the row named
    mode: Mode  # what the row asks for, from the ids it has
    customer_key: str  # the customer id as matched: id_key


class Row(_RowFields):
    """A valid record, trimmed and classified: one entry of one request. A named tuple, so
    `from_columns` makes a chunk's usual rows in one C-level pass (a constructor call per row
    costs a second or more on millions of rows)."""

    __slots__ = ()

    def __new__(
        cls,
        row: int,
        badge_meta_id: str,
        customer_id: str,
        issue_id: str = "",
        earned_badge_id: str = "",
        identifier_type: IdentifierType = IdentifierType.ID,
        resolved: bool = False,
    ) -> Row:
        mode = Mode.EARN if earned_badge_id else Mode.ISSUALS if issue_id else Mode.CUSTOMERS
        # A mobile's zeros are part of it, unlike an id's.
        key = id_key(customer_id) if identifier_type is IdentifierType.ID else customer_id
        return tuple.__new__(
            cls,
            (
                row,
                badge_meta_id,
                customer_id,
                issue_id,
                earned_badge_id,
                identifier_type,
                resolved,
                mode,
                key,
            ),
        )

    @classmethod
    def from_columns(
        cls,
        rows: Iterable[int],
        badges: Iterable[str],
        customers: list[str],
        issues: list[str],
        earned: list[str],
    ) -> list[Row]:
        """The Rows `Row(row, badge, customer, issue, earned)` gives, for customers named by
        numeric id (ASCII digits) and no row with both ids."""
        modes = [
            Mode.EARN if earned_id else Mode.ISSUALS if issue_id else Mode.CUSTOMERS
            for issue_id, earned_id in zip(issues, earned, strict=True)
        ]
        keys = list(map(str.lstrip, customers, itertools.repeat("0")))
        if not all(keys):  # a customer id of zeros only: id_key makes it "0"
            keys = [key or "0" for key in keys]
        columns = zip(
            rows,
            badges,
            customers,
            issues,
            earned,
            itertools.repeat(IdentifierType.ID),
            itertools.repeat(False),
            modes,
            keys,
        )
        return list(map(tuple.__new__, itertools.repeat(cls), columns))


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Batch:
    """One request: up to 20 rows of one badge and one mode (revokeEarn: exactly one row)."""

    number: int  # 1-based, in the order the planner produced batches
    mode: Mode
    badge_meta_id: str
    rows: tuple[Row, ...]
    # Row -> the customers row of its badge and customer later in the file, for revokeIssuals
    # rows that have one planned: it may revoke their enrolment first (`answers.raced`).
    later: dict[int, int] = field(default_factory=dict, compare=False)


@dataclass(slots=True)
class RowOutcome:
    """What happened to one input record; the writer's unit, keyed by `row`."""

    row: int
    status: Status
    endpoint: Endpoint | None = None
    error_code: str = ""
    error_message: str = ""
    issued_ids: tuple[str, ...] = ()
    http_status: int | None = None
    attempts: int = 0
    duplicate_of: int | None = None  # for duplicates: the row that carries the real outcome
    resolved_customer_id: str = ""  # the id a lookup found, when the row named an identifier
    request_id: str = ""  # the X-Cap-Requestid of the answer that decided the row, for support

    @property
    def final(self) -> bool:
        return is_final(self.status, self.error_code)


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    """A customer lookup's definite answer: the customer's id, or why there is none (816, 618)."""

    customer_id: str = ""
    code: str = ""
    message: str = ""
    http_status: int | None = None
    request_id: str = ""  # the answer's X-Cap-Requestid


@dataclass(frozen=True, slots=True)
class NotAMobile:
    """Why a value is no mobile number the API can be sent, said for the row's message."""

    reason: str


_K = TypeVar("_K")

# The calls of a run in Counts, in the order of its fields: what adds up from session to session.
CALLS = ("http_calls", "retries", "throttled", "read_backs", "lookups", "pauses", "paused_seconds")


@dataclass(frozen=True, slots=True)
class Counts:
    """A run's counters: its progress line, summaries, journal timeline and report draw on it."""

    by_status: Mapping[Status, int] = field(default_factory=dict)
    by_error: Mapping[tuple[Status, str], int] = field(default_factory=dict)
    requests: Mapping[Endpoint, int] = field(default_factory=dict)
    http_calls: int = 0  # retries, token renewals, read-backs and lookups included
    retries: int = 0
    throttled: int = 0  # calls answered 429
    read_backs: int = 0  # calls
    lookups: int = 0  # customers looked up (one call each, retries aside)
    pauses: int = 0  # times every call was held back (a spent window, a Retry-After)
    paused_seconds: float = 0.0  # how long those pauses were set to last, together
    duplicates_pending: int = 0  # duplicates whose original row is not revoked

    @classmethod
    def of(cls, outcomes: Iterable[RowOutcome]) -> Counts:
        by_status: dict[Status, int] = {}
        by_error: dict[tuple[Status, str], int] = {}
        for outcome in outcomes:
            by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
            if outcome.error_code:
                key = (outcome.status, outcome.error_code)
                by_error[key] = by_error.get(key, 0) + 1
        return cls(by_status, by_error)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            _added(self.by_status, other.by_status),
            _added(self.by_error, other.by_error),
            _added(self.requests, other.requests),
            duplicates_pending=self.duplicates_pending + other.duplicates_pending,
            **{name: getattr(self, name) + getattr(other, name) for name in CALLS},
        )

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def revoked(self) -> int:
        return self.by_status.get(Status.REVOKED, 0)

    @property
    def not_revoked(self) -> int:
        """Rows answered and not revoked: what --max-errors counts."""
        return sum(self.by_status.get(status, 0) for status in NOT_REVOKED)

    def all_done(self, done: Status = Status.REVOKED) -> bool:
        """True when every record reached `done`, a duplicate counting as its original."""
        others = {
            status for status, count in self.by_status.items() if count and status is not done
        }
        return others <= {Status.DUPLICATE} and (
            done is not Status.REVOKED or not self.duplicates_pending
        )


def _added(one: Mapping[_K, int], other: Mapping[_K, int]) -> dict[_K, int]:
    """Two counts per key added up, in the order their keys first came."""
    return {key: one.get(key, 0) + other.get(key, 0) for key in {**one, **other}}


def id_key(value: object) -> str:
    """The form an id is matched in: the API may echo "000777" back as the number 777."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return text


@dataclass(frozen=True, slots=True)
class ApiReply:
    """One answer of the API, as the wire gave it: what the answers package judges."""

    http_status: int
    body: Any  # the parsed JSON, or None when the body is not JSON
    text: str  # the start of the raw body, for messages
    retry_after: float | None
    sends: int  # HTTP requests it took (2 when a 401 made us renew the token and resend)
    request_id: str = ""  # its X-Cap-Requestid ("" when the answer had none)
