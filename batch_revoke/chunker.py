"""Records -> verdicts and Batches: validation, duplicates, and grouping into requests."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator, Sequence

from batch_revoke.errors import StorageError
from batch_revoke.identifiers import NotAMobile, mobile_number, region_code
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
from batch_revoke.reader import KNOWN_FIELDS

_CHOICES = ", ".join(member.value for member in IdentifierType)

# The API takes a numeric customer id as a 64-bit number: a longer one can only fail there,
# and the read-back puts the id in a URL, where 70,000 digits do not fit.
MAX_CUSTOMER_ID = 2**63 - 1
_MAX_CUSTOMER_DIGITS = str(MAX_CUSTOMER_ID)
# Every other id (badgeMetaId, issueId, earnedBadgeId, an email, externalId or cardNumber) is
# text of a few dozen characters (an email has at most 254): longer is a paste gone wrong,
# and would otherwise reach a request body or the read-back's URL.
MAX_ID_CHARS = 256
_SHOWN_CHARS = 40  # of a rejected value, in its message


class Validator:
    """The rules a record must pass to be sent, with the columns looked up once: it runs for
    every record of the file, so it is written as one straight path. Calling it gives a Row
    ready to send, or the `invalid` outcome that says why it cannot be sent."""

    def __init__(
        self,
        field_index: dict[str, int],
        default_identifier: IdentifierType,
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
        self.default_region = region_code(default_region) if default_region else None

    def __call__(self, record: Record) -> Row | RowOutcome:
        if record.defect:
            return _invalid(record, ErrorCode.MALFORMED_RECORD, record.defect)
        values = record.values
        for label, at in self.formula_fields:
            if values[at].startswith("="):
                return _invalid(record, ErrorCode.MISSING_VALUE, unsaved_formula(label, values[at]))
        badge = values[self.badge_at].strip()
        customer = values[self.customer_at].strip()
        issue = "" if self.issue_at is None else values[self.issue_at].strip()
        earned = "" if self.earned_at is None else values[self.earned_at].strip()
        type_text = "" if self.type_at is None else values[self.type_at].strip()
        # The usual row, at the least cost: every check below passes for it (18 digits are
        # always below 2^63, and no part is longer than MAX_ID_CHARS when all are not).
        if (
            badge
            and customer
            and not type_text
            and not (issue and earned)
            and len(badge) + len(customer) + len(issue) + len(earned) <= MAX_ID_CHARS
            and (badge + issue + earned).isprintable()
        ):
            usual = self.default_identifier
            if usual is IdentifierType.ID:
                if len(customer) <= 18 and customer.isdigit() and customer.isascii():
                    return Row(record.row, badge, customer, issue, earned, usual)
            elif usual is not IdentifierType.MOBILE:
                return Row(record.row, badge, customer, issue, earned, usual)
        endpoint = Endpoint.REVOKE_EARN if earned else Endpoint.REVOKE_ISSUE
        if not (badge and customer):
            blank = [
                label
                for label, text in (("badgeMetaId", badge), ("customerId", customer))
                if not text
            ]
            verb = "are" if len(blank) > 1 else "is"
            message = f"{' and '.join(blank)} {verb} blank"
            return _invalid(record, ErrorCode.MISSING_VALUE, message, endpoint)
        for label, text in (("badgeMetaId", badge), ("issueId", issue), ("earnedBadgeId", earned)):
            if len(text) > MAX_ID_CHARS:
                return _too_long(record, label, text, endpoint)
        for label, text in (
            ("badgeMetaId", badge),
            ("customerId", customer),
            ("issueId", issue),
            ("earnedBadgeId", earned),
        ):
            if not text.isprintable():
                return _invalid(
                    record,
                    ErrorCode.BAD_ID,
                    f"{label} {_shown(text)} holds a line break, tab or other control "
                    "character, which no id has: fix the cell (a quoted value spanning lines?)",
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
                f"identifierType {_shown(type_text)} is not one of {_CHOICES}",
                endpoint,
            )
        # revokeIssue takes the numeric id: rows named otherwise are looked up (lookup.py).
        identifier = identifier or self.default_identifier
        if customer.startswith("'"):
            customer = customer[1:].strip()  # Excel's "keep as text" mark, typed into a cell
        # A numeric id mangled by a spreadsheet (1.23E+11, 1001.0) must not reach the API.
        if identifier is IdentifierType.ID and not (customer.isascii() and customer.isdigit()):
            return _invalid(
                record,
                ErrorCode.BAD_CUSTOMER_ID,
                f"customerId {_shown(customer)} is not a numeric customer id"
                + "; for a mobile, email, externalId or cardNumber set identifierType",
                endpoint,
            )
        if identifier is IdentifierType.ID:
            digits = customer.lstrip("0")
            if len(digits) > len(_MAX_CUSTOMER_DIGITS) or (
                len(digits) == len(_MAX_CUSTOMER_DIGITS) and digits > _MAX_CUSTOMER_DIGITS
            ):
                return _invalid(
                    record,
                    ErrorCode.BAD_CUSTOMER_ID,
                    f"customerId {_shown(customer)} is beyond the largest customer id "
                    f"({MAX_CUSTOMER_ID}: the API takes a 64-bit number)",
                    endpoint,
                )
            if len(customer) > MAX_ID_CHARS:  # in range, but padded with zeros
                return _too_long(record, "customerId", customer, endpoint)
        elif identifier is not IdentifierType.MOBILE and len(customer) > MAX_ID_CHARS:
            return _too_long(record, "customerId", customer, endpoint)
        if identifier is IdentifierType.MOBILE:
            number = mobile_number(customer, self.default_region)
            if isinstance(number, NotAMobile):
                return _invalid(
                    record,
                    ErrorCode.BAD_CUSTOMER_ID,
                    f"customerId {_shown(customer)} is not a mobile number: {number.reason}",
                    endpoint,
                )
            customer = number
        return Row(record.row, badge, customer, issue, earned, identifier)


def unsaved_formula(label: str, formula: str) -> str:
    return (
        f"{label} is a formula ({formula}) with no saved value: the workbook was written by a "
        "script and never recalculated; open it in Excel and save it, or write the values"
    )


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


class Planner:
    """Feeds on records in file order, a chunk at a time: verdicts for each record, and
    batches as they fill. Rows of one badge need not be adjacent: each (mode, badge) keeps one
    open batch until it holds `batch_size` rows or the input ends (`finish`), so a badge's
    rows take ceil(rows / batch_size) requests whatever their order in the file."""

    def __init__(
        self,
        field_index: dict[str, int],
        default_identifier: IdentifierType = IdentifierType.ID,
        batch_size: int = MAX_BATCH_SIZE,
        *,
        from_workbook: bool = False,
        default_region: str | None = None,
    ) -> None:
        self.validate = Validator(
            field_index,
            default_identifier,
            from_workbook=from_workbook,
            default_region=default_region,
        )
        self.batch_size = batch_size
        self._seen = SeenRows()
        # One bit per customers row's identity (hash), so most revokeIssuals rows learn they
        # have no covering row without a lookup. Fixed size: memory stays flat.
        self._customers = bytearray(_CUSTOMER_BITS // 8)
        self._open: dict[tuple[Mode, str], list[Row]] = {}
        self._batches = 0

    def close(self) -> None:
        self._seen.close()

    def classify(self, records: Sequence[Record]) -> list[Row | RowOutcome]:
        """Each record's verdict, in order: the row to send, or its `invalid` / `duplicate`
        outcome. Records must come in file order, each once."""
        validate, bits = self.validate, self._customers
        verdicts = [validate(record) for record in records]
        keys: list[tuple[int, int, int]] = []
        for verdict in verdicts:
            if verdict.__class__ is Row:
                assert isinstance(verdict, Row)
                h, h2 = identity(verdict)
                keys.append((h, h2, verdict.row))
                if verdict.mode is Mode.CUSTOMERS:
                    bits[(h & _BIT_MASK) >> 3] |= 1 << (h & 7)
        duplicates = self._seen.duplicates(keys)
        if not duplicates:
            return verdicts
        for index, verdict in enumerate(verdicts):
            if isinstance(verdict, Row) and (original := duplicates.get(verdict.row)):
                verdicts[index] = RowOutcome(
                    verdict.row,
                    Status.DUPLICATE,
                    verdict.mode.endpoint,
                    ErrorCode.DUPLICATE_ROW,
                    f"same badge, customer and ids as row {original}; not sent again",
                    duplicate_of=original,
                )
        return verdicts

    def covering(self, rows: Sequence[Row]) -> dict[int, int]:
        """Row -> the customers row of its badge and customer (which revokes every enrolment
        of that customer), for the revokeIssuals rows that have one earlier in the file. A
        revokeIssuals row sent alongside it would race it, so it waits for that row."""
        found = self._customers_rows([row for row in rows if row.mode is Mode.ISSUALS])
        return {row: first for row, first in found.items() if first < row}

    def later_customers_row(self, row: Row) -> int | None:
        """A customers row of this revokeIssuals row's badge and customer, later in the file
        and planned already: it may have revoked this row's enrolment before this row's turn."""
        first = self._customers_rows([row]).get(row.row) if row.mode is Mode.ISSUALS else None
        return first if first is not None and first > row.row else None

    def _customers_rows(self, rows: list[Row]) -> dict[int, int]:
        """Row -> the first customers row of its badge and customer, where there is one."""
        bits = self._customers
        wanted: list[tuple[int, tuple[int, int]]] = []
        for row in rows:
            parts = (row.badge_meta_id, row.customer_key, "", "", IdentifierType.ID)
            h = hash(parts)
            if bits[(h & _BIT_MASK) >> 3] & (1 << (h & 7)):
                wanted.append((row.row, (h, _second_hash(parts))))
        found = self._seen.find([key for _, key in wanted])
        return {row: first for (row, _), first in zip(wanted, found, strict=True) if first}

    def first_rows(self, keys: list[tuple[int, int]]) -> list[int | None]:
        """The first row of each identity (`identity`) among the rows classified so far."""
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


def identity(row: Row) -> tuple[int, int]:
    """Two independent 64-bit hashes of what makes a row the same request as another: its
    badge, customer (the identifier type is part of who the customer is: 9800000001 as a
    mobile is not customer id 9800000001) and ids. Rows match only when both agree, so two
    different rows are taken for one about once in 2^128 pairs.

    The tuple's hash combines its parts' hashes; the joined text's hash does not, so a
    collision of one says nothing about the other. Python's hashes are salted per process,
    which is all a run's duplicate detection needs."""
    parts = (
        row.badge_meta_id,
        row.customer_key,
        row.issue_id,
        row.earned_badge_id,
        row.identifier_type,
    )
    return hash(parts), _second_hash(parts)


def _second_hash(parts: tuple[str, ...]) -> int:
    """The other half of an identity (see `identity`), computed only where needed."""
    return hash("\x1f".join(parts))


_CUSTOMER_BITS = 1 << 25  # 4 MiB: few false hits even with millions of customers rows
_BIT_MASK = _CUSTOMER_BITS - 1


class SeenRows:
    """Every valid row's identity and its first row, in a private temporary SQLite database
    (deleted when closed). It is the one structure that grows with the file, so it lives on
    disk behind a small page cache, and memory stays flat at any file size."""

    _PART = 10_000  # ids per lookup statement

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        # Large pages: fewer, shallower B-tree steps per insert (measured: ~30% faster).
        pragmas = ("page_size=65536", "cache_size=-8192", "journal_mode=OFF", "synchronous=OFF")
        for pragma in pragmas:
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE seen (h INTEGER PRIMARY KEY, h2 INTEGER NOT NULL, row INTEGER NOT NULL)"
        )
        # Rows whose first hash collides with another row's: never seen in practice.
        self._overflow: dict[tuple[int, int], int] = {}

    def close(self) -> None:
        self._db.close()

    def duplicates(self, keys: list[tuple[int, int, int]]) -> dict[int, int]:
        """Adds each (hash, hash2, row); returns row -> first row for the rows whose identity
        an earlier row (in this call or before) already had."""
        ordered = sorted(keys)  # B-tree order is faster; equal identities keep file order
        before = self._db.total_changes
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", ordered)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:  # the temporary folder is full or gone
            raise StorageError(
                tempfile.gettempdir(),
                f"duplicate detection keeps a temporary file there ({exc}); give TMPDIR a "
                "folder with room",
            ) from exc
        if self._db.total_changes - before == len(ordered):
            return {}  # all new: the usual case, at no further cost
        stored = self._stored([h for h, _, _ in ordered])
        found: dict[int, int] = {}
        for h, h2, row in ordered:
            known_h2, first = stored[h]
            if first != row and known_h2 != h2:  # another identity under the same hash
                first = self._overflow.setdefault((h, h2), row)
            if first != row:
                found[row] = first
        return found

    def find(self, keys: list[tuple[int, int]]) -> list[int | None]:
        """The first row of each identity, None for one never added."""
        stored = self._stored([h for h, _ in keys])
        found: list[int | None] = []
        for h, h2 in keys:
            known = stored.get(h)
            if known is not None and known[0] == h2:
                found.append(known[1])
            else:
                found.append(self._overflow.get((h, h2)))
        return found

    def _stored(self, hashes: list[int]) -> dict[int, tuple[int, int]]:
        stored: dict[int, tuple[int, int]] = {}
        for start in range(0, len(hashes), self._PART):
            part = hashes[start : start + self._PART]
            marks = ",".join("?" * len(part))
            query = f"SELECT h, h2, row FROM seen WHERE h IN ({marks})"
            stored.update((h, (h2, row)) for h, h2, row in self._db.execute(query, part))
        return stored
