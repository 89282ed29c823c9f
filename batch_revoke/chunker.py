"""Records -> verdicts and Batches: validation, duplicates, and grouping into requests."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt

from batch_revoke.duplicates import BitFilter, FirstRows
from batch_revoke.identifiers import card_number, mobile_number
from batch_revoke.model import (
    MAX_BATCH_SIZE,
    Batch,
    Endpoint,
    ErrorCode,
    IdentifierType,
    Mode,
    NotAMobile,
    Record,
    Row,
    RowOutcome,
    Status,
    columns,
)
from batch_revoke.source import KNOWN_FIELDS, Source

if TYPE_CHECKING:
    from batch_revoke.config import RunConfig

# The API takes a numeric customer id as a 64-bit number: a longer one can only fail there,
# and the read-back puts the id in a URL, where 70,000 digits do not fit.
MAX_CUSTOMER_ID = 2**63 - 1
_MAX_CUSTOMER_DIGITS = str(MAX_CUSTOMER_ID)
# Every other id (badgeMetaId, issueId, earnedBadgeId, an email, externalId or cardNumber) is
# text of a few dozen characters (an email has at most 254): longer is a paste gone wrong,
# and would otherwise reach a request body or the read-back's URL.
MAX_ID_CHARS = 256
_SHOWN_CHARS = 40  # of a rejected value, in its message
_ID_DIGITS = 18  # a numeric customer id this long is always below 2^63


class Validator:
    """The rules a record must pass to be sent, with the columns looked up once. Calling it
    gives a Row ready to send, or the `invalid` outcome that says why it cannot be sent."""

    def __init__(
        self,
        field_index: dict[str, int],
        default_identifier: IdentifierType = IdentifierType.ID,
        *,
        from_workbook: bool = False,
        default_region: str | None = None,
    ) -> None:
        # In a sheet's CSV, a value that starts with = is a formula with no saved value
        # (text that starts with = arrives with Excel's apostrophe).
        self.formula_fields = (
            [(KNOWN_FIELDS[key], at) for key, at in field_index.items() if key in KNOWN_FIELDS]
            if from_workbook
            else []
        )
        self.badge_at = field_index["badgemetaid"]
        self.customer_at = field_index["customerid"]
        self.issue_at = field_index.get("issueid")
        self.earned_at = field_index.get("earnedbadgeid")
        self.type_at = field_index.get("identifiertype")
        self.default_identifier = default_identifier
        if default_region:
            from batch_revoke.mobiles import region_code  # phonenumbers: only with a region

            default_region = region_code(default_region)
        self.default_region = default_region or None

    def many(self, records: Sequence[Record]) -> list[Row | RowOutcome]:
        """Each record's verdict, as calling the validator on each gives it: the chunk's
        plain records a column at a time (`check_columns`), the rest one by one."""
        # --identifier-type other than id makes every row's customer an identifier to check.
        simple = not self.formula_fields and self.default_identifier is IdentifierType.ID
        found = check_columns(records, self) if simple else None
        if found is None:
            return list(map(self, records))
        plain, rows = found
        if len(rows) == len(records):
            return rows
        fast = iter(rows)
        # By index: a Chunk makes only these Records.
        odd = itertools.compress(range(len(records)), map(operator.not_, plain))
        slow = map(self, map(records.__getitem__, odd))
        return [next(fast) if checked else next(slow) for checked in plain]

    def __call__(self, record: Record) -> Row | RowOutcome:
        if record.defect:
            return _invalid(record, ErrorCode.MALFORMED_RECORD, record.defect)
        values = record.values
        for label, at in self.formula_fields:
            if values[at].startswith("="):
                return _invalid(
                    record,
                    ErrorCode.MISSING_VALUE,
                    f"{label} is a formula ({values[at]}) with no saved value: the workbook was "
                    "written by a script and never recalculated; open it in Excel and save it, "
                    "or write the values",
                )
        badge = values[self.badge_at].strip()
        customer = values[self.customer_at].strip()
        issue = "" if self.issue_at is None else values[self.issue_at].strip()
        earned = "" if self.earned_at is None else values[self.earned_at].strip()
        type_text = "" if self.type_at is None else values[self.type_at].strip()
        endpoint = Endpoint.REVOKE_EARN if earned else Endpoint.REVOKE_ISSUE
        if not (badge and customer):
            blank = "customerId is" if badge else "badgeMetaId and customerId are"
            if customer:
                blank = "badgeMetaId is"
            return _invalid(record, ErrorCode.MISSING_VALUE, f"{blank} blank", endpoint)
        ids = (("badgeMetaId", badge), ("issueId", issue), ("earnedBadgeId", earned))
        for label, text in ids:
            if len(text) > MAX_ID_CHARS:
                return _too_long(record, label, text, endpoint)
        for label, text in (ids[0], ("customerId", customer), *ids[1:]):
            if not text.isprintable():
                return _invalid(
                    record,
                    ErrorCode.BAD_ID,
                    f"{label} {_shown(text)} holds a line break, tab or other control "
                    "character, which no id has: fix the cell (a quoted value spanning lines?)",
                    endpoint,
                )
        for label, text in ids:
            # The csv module keeps a quote inside an unquoted field as part of the value.
            if '"' in text:
                return _invalid(
                    record,
                    ErrorCode.BAD_ID,
                    f"{label} {_shown(text)} holds a quote, which no id has: a stray quote in "
                    "the file? fix the cell",
                    endpoint,
                )
        if issue and earned:
            return _invalid(
                record,
                ErrorCode.CONFLICTING_IDS,
                "both issueId and earnedBadgeId are set; a row revokes either an enrolment "
                "(issueId) or an earned badge (earnedBadgeId): split it into two rows",
            )
        identifier = IdentifierType.parse(type_text) if type_text else None
        if type_text and identifier is None:
            return _invalid(
                record,
                ErrorCode.BAD_IDENTIFIER_TYPE,
                f"identifierType {_shown(type_text)} is not one of {', '.join(IdentifierType)}",
                endpoint,
            )
        # revokeIssue takes the numeric id: rows named otherwise are looked up (lookup.py).
        identifier = identifier or self.default_identifier
        if customer.startswith("'"):
            customer = customer[1:].strip()  # Excel's "keep as text" mark, typed into a cell
        if identifier is IdentifierType.ID:
            # A numeric id mangled by a spreadsheet (1.23E+11, 1001.0) must not reach the API.
            if not (customer.isascii() and customer.isdigit()):
                return _invalid(
                    record,
                    ErrorCode.BAD_CUSTOMER_ID,
                    f"customerId {_shown(customer)} is not a numeric customer id"
                    + "; for a mobile, email, externalId or cardNumber set identifierType",
                    endpoint,
                )
            digits = customer.lstrip("0")
            if (len(digits), digits) > (len(_MAX_CUSTOMER_DIGITS), _MAX_CUSTOMER_DIGITS):
                return _invalid(
                    record,
                    ErrorCode.BAD_CUSTOMER_ID,
                    f"customerId {_shown(customer)} is beyond the largest customer id "
                    f"({MAX_CUSTOMER_ID}: the API takes a 64-bit number)",
                    endpoint,
                )
        elif identifier is IdentifierType.MOBILE:
            mobile = mobile_number(customer, self.default_region)
            if isinstance(mobile, NotAMobile):
                return _invalid(
                    record,
                    ErrorCode.BAD_CUSTOMER_ID,
                    f"customerId {_shown(customer)} is not a mobile number: {mobile.reason}",
                    endpoint,
                )
            customer = mobile
        elif identifier is IdentifierType.CARD_NUMBER:
            customer = card_number(customer)
        if len(customer) > MAX_ID_CHARS:  # an id in range but padded with zeros, or any other
            return _too_long(record, "customerId", customer, endpoint)
        return Row(record.row, badge, customer, issue, earned, identifier)


def _invalid(
    record: Record, code: ErrorCode, message: str, endpoint: Endpoint | None = None
) -> RowOutcome:
    return RowOutcome(record.row, Status.INVALID, endpoint, code, message)


def _too_long(record: Record, label: str, text: str, endpoint: Endpoint) -> RowOutcome:
    return _invalid(
        record,
        ErrorCode.VALUE_TOO_LONG,
        f"{label} {_shown(text)} is longer than any id ({MAX_ID_CHARS} characters at most); "
        "look for a value pasted in by mistake",
        endpoint,
    )


def _shown(text: str) -> str:
    """A value for a message: quoted, and cut short with its length when it is long, so a
    70,000-character paste does not become a 70,000-character message."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}… ({len(text):,} characters)"


# saves 17% of the 1M dry run (4.70 s -> 3.90 s CPU; bench, 2026-12)
def check_columns(
    records: Sequence[Record], validate: Validator
) -> tuple[list[bool], list[Row | RowOutcome]] | None:
    """Which records are plain (no defect, no identifierType), and their Rows, in order, for
    a run whose customers are named by id; None when a plain record fails a check here, so
    the chunk is left to the Validator record by record.

    Each check is a C-level pass over a column. A column whose values joined are printable
    and hold no space has values that trimming leaves alone; customer ids whose concatenation
    is ASCII digits are each ASCII digits (or empty, looked for apart). A row's ids together
    are at most the longest of each column added up."""
    values, numbers, defects = columns(records)
    types = _column(values, validate.type_at)
    # `not (type + defect)`: neither is set, tested in C for each record.
    marks = types if defects is None else map(operator.add, types, defects)
    plain = list(map(operator.not_, marks))
    if not all(plain):
        values = list(itertools.compress(values, plain))
    if not values:
        return plain, []
    badges = _column(values, validate.badge_at)
    customers = _column(values, validate.customer_at)
    issues = _column(values, validate.issue_at)
    earned = _column(values, validate.earned_at)
    issue_lengths = list(map(len, issues))
    earned_lengths = list(map(len, earned))
    if not (
        all(badges)
        and _clean(badges)
        and _clean(issues)
        and _clean(earned)
        and all(customers)
        and "".join(customers).isdigit()
        and "".join(customers).isascii()
        and max(map(len, customers)) <= _ID_DIGITS
        # both ids on one row: the lengths' product is not 0
        and not any(map(operator.mul, issue_lengths, earned_lengths))
        and max(map(len, badges))
        + max(map(len, customers))
        + max(issue_lengths)
        + max(earned_lengths)
        <= MAX_ID_CHARS
    ):
        return None
    rows: list[Row | RowOutcome] = []
    rows += Row.from_columns(itertools.compress(numbers, plain), badges, customers, issues, earned)
    return plain, rows


def _column(values: Sequence[Sequence[str]], at: int | None) -> list[str]:
    """The values at `at` (None: no such column, so every value is empty)."""
    return [""] * len(values) if at is None else list(map(operator.itemgetter(at), values))


def _clean(column: list[str]) -> bool:
    """No value holds a space or a character that is not printable (tabs, line breaks,
    no-break spaces: every other character str.strip removes is one of those), nor a quote,
    which no id has."""
    joined = ",".join(column)
    return joined.isprintable() and " " not in joined and '"' not in joined


class Planner:
    """Feeds on records in file order, a chunk at a time: verdicts for each record, and
    batches as they fill. Each (mode, badge) keeps one open batch until it is full or the
    input ends, so a badge's rows take the fewest requests whatever their order."""

    def __init__(self, validate: Validator, batch_size: int = MAX_BATCH_SIZE) -> None:
        self.validate = validate
        self.batch_size = batch_size
        self._seen = FirstRows()
        # One bit per customers row's customer, so most revokeIssuals rows learn they have no
        # covering row without a lookup; 4 MiB: few false hits with millions of customers rows.
        # Saves 10-12% of the 1M dry run (covering: 0.60 s -> 0.16 s CPU of ~4 s; 2026-12).
        self._customers = BitFilter(1 << 25)
        self._open: dict[tuple[Mode, str], list[Row]] = {}
        self._batches = 0

    def close(self) -> None:
        self._seen.close()

    def classify(self, records: Sequence[Record]) -> list[Row | RowOutcome]:
        """Each record's verdict, in order: the row to send, or its `invalid` / `duplicate`
        outcome. Records must come in file order, each once."""
        verdicts = self.validate.many(records)
        rows = valid_rows(verdicts)
        hashes, seconds = identities(rows)
        if customers := _of_mode(rows, Mode.CUSTOMERS):
            self._customers.add(_customer_hashes(customers))
        numbers = list(map(operator.attrgetter("row"), rows))
        duplicates = self._seen.duplicates(hashes, seconds, numbers)
        if not duplicates:
            return verdicts
        for index, verdict in enumerate(verdicts):
            if isinstance(verdict, Row) and (original := duplicates.get(verdict.row)):
                same = (
                    "same badge and earnedBadgeId"
                    if verdict.mode is Mode.EARN
                    else "same badge, customer and ids"
                )
                verdicts[index] = RowOutcome(
                    verdict.row,
                    Status.DUPLICATE,
                    verdict.mode.endpoint,
                    ErrorCode.DUPLICATE_ROW,
                    f"{same} as row {original}; not sent again",
                    duplicate_of=original,
                )
        return verdicts

    def covering(self, rows: Sequence[Row]) -> dict[int, int]:
        """Row -> the earlier customers row of its badge and customer, for the revokeIssuals
        rows that have one: sent alongside it, such a row would race it, so it waits."""
        return self._customers_rows(rows, earlier=True)

    def later_customers_rows(self, rows: Sequence[Row]) -> dict[int, int]:
        """Row -> the later customers row of its badge and customer, planned already: it may
        revoke the revokeIssuals row's enrolment before its turn."""
        return self._customers_rows(rows, earlier=False)

    def _customers_rows(self, rows: Sequence[Row], *, earlier: bool) -> dict[int, int]:
        issuals = _of_mode(rows, Mode.ISSUALS)
        if not issuals:
            return {}
        hits = self._customers.hits(_customer_hashes(issuals))
        wanted = list(itertools.compress(issuals, hits.tolist()))
        parts = [(row.badge_meta_id, row.customer_key, "", "", IdentifierType.ID) for row in wanted]
        found = self._seen.find(list(zip(*_hashes(parts), strict=True)))
        return {
            row.row: first
            for row, first in zip(wanted, found, strict=True)
            if first and (first < row.row if earlier else first > row.row)
        }

    def first_rows(self, keys: list[tuple[int, int]]) -> list[int | None]:
        """The first row of each identity (`identities`) among the rows classified so far."""
        return self._seen.find(keys)

    def place(self, row: Row) -> Batch | None:
        """Into its open batch; the batch when it fills up (revokeEarn: at once)."""
        if row.mode is Mode.EARN:
            return self._batch(Mode.EARN, row.badge_meta_id, [row])
        key = (row.mode, row.badge_meta_id)
        rows = self._open.get(key)
        if rows is None:
            rows = self._open[key] = []
        rows.append(row)
        if len(rows) < self.batch_size:
            return None
        del self._open[key]
        return self._batch(row.mode, row.badge_meta_id, rows)

    def finish(self) -> Iterator[Batch]:
        open_batches, self._open = self._open, {}
        for (mode, badge), rows in open_batches.items():
            yield self._batch(mode, badge, rows)

    def _batch(self, mode: Mode, badge: str, rows: list[Row]) -> Batch:
        self._batches += 1
        return Batch(self._batches, mode, badge, tuple(rows))


def planner_for(config: RunConfig, source: Source) -> Planner:
    """The planner as this run's options and input have it."""
    validate = Validator(
        source.field_index,
        config.identifier_type,
        from_workbook=source.from_workbook,
        default_region=config.default_region,
    )
    return Planner(validate, config.batch_size)


def valid_rows(verdicts: Sequence[Row | RowOutcome]) -> list[Row]:
    """The Rows among verdicts, in order (a C-level pass)."""
    kept = map(isinstance, verdicts, itertools.repeat(Row))
    return cast(list[Row], list(itertools.compress(verdicts, kept)))


def _of_mode(rows: Sequence[Row], mode: Mode) -> list[Row]:
    modes = map(operator.attrgetter("mode"), rows)
    return list(itertools.compress(rows, map(operator.is_, modes, itertools.repeat(mode))))


def _customer_hashes(rows: Sequence[Row]) -> npt.NDArray[np.int64]:
    """Each row's customer, for the customers rows' filter: a row of another badge makes a
    false hit, which the lookup that follows rules out. Cheap: `identities` hashed (and so
    cached the hash of) each customer already."""
    keys = map(hash, map(operator.attrgetter("customer_key"), rows))
    return np.array(list(keys), dtype=np.int64)


# A Row is a tuple: its parts taken by position, which is cheaper than by name.
_PARTS = operator.itemgetter(
    *map(
        Row._fields.index,
        ("badge_meta_id", "customer_key", "issue_id", "earned_badge_id", "identifier_type"),
    )
)


def identities(rows: Sequence[Row]) -> tuple[list[int], list[int]]:
    """What makes each row the same request as another, as two independent 64-bit hashes (two
    lists, made by C-level passes): its badge, customer (the identifier type is part of who
    the customer is: 9800000001 as a mobile is not customer id 9800000001) and ids. Rows match
    only when both agree, so two different rows are taken for one once in 2^128 pairs."""
    parts = list(map(_PARTS, rows))
    # A revokeEarn row's identity is its badge and earnedBadgeId, not its customer: the id
    # names one earn of the badge, so the same earn named by mobile on one row and by
    # customer id on another is one row (sent twice, the second would fail 814). Other rows'
    # earnedBadgeId is empty, so no other identity can equal one of these. Such rows are rare
    # in most files: one more pass only when there are some.
    if any(map(operator.itemgetter(3), parts)):
        parts = [(part[0], "", "", part[3], "") if part[3] else part for part in parts]
    return _hashes(parts)


def _hashes(parts: Sequence[tuple[str, ...]]) -> tuple[list[int], list[int]]:
    """The tuple's hash combines its parts' hashes; the joined text's hash does not, so a
    collision of one says nothing about the other. Python's hashes are salted per process,
    which is all a run's duplicate detection needs."""
    return list(map(hash, parts)), list(map(hash, map("\x1f".join, parts)))
