"""The sandbox's data and the API's rules over it; no HTTP here.

Each operation takes the request as the API receives it and returns (HTTP status, body),
with the envelopes, per-entry errors and codes of the vendor's pages.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch_revoke.errors import InputError

Reply = tuple[int, dict[str, Any]]
IDENTIFIER_KINDS = ("mobile", "email", "externalId", "cardNumber")
# The lookup's identifierName values, and the customer field each one reads: the lookup
# spells card numbers `cardnumber`, unlike revokeEarn's header, and the sandbox keeps no
# WeChat ids (such a lookup finds nobody).
LOOKUP_IDENTIFIERS: dict[str, str | None] = {
    "mobile": "mobile",
    "email": "email",
    "externalId": "externalId",
    "cardnumber": "cardNumber",
    "wechat": None,
}
LOOKUP_SOURCES = ("INSTORE", "MARTJACK", "WECHAT", "ALL")
# The sandbox's customers are loyalty (INSTORE) customers: a lookup in another source's
# customers finds none of them.
LOOKUP_FINDS_IN = ("INSTORE", "ALL")
NOT_FOUND = (816, "Customer not found for organization")
# revokeIssue's OpenAPI responses: a badgeMetaId the org does not have refuses the whole
# request, HTTP 404 with data null. revokeEarn and the read-back answer it alike.
BADGE_NOT_FOUND = (404, "Passed badge is not found")
# revokeEarn's "nothing active to revoke", with the OpenAPI spec's HTTP 409.
NOT_ACTIVE = (814, "Active earn instance is not present")
# The Get Customer Details page's own answers, given on demand (--fault 8015, --fault 461).
NOT_FOUND_8015 = (8015, "Customer not found for the given identifiers")
SEARCH_BUSY = (461, "Search Engine is busy, try after some time")


@dataclass
class Customer:
    customerId: str
    mobile: str = ""
    email: str = ""
    externalId: str = ""
    cardNumber: str = ""


@dataclass
class Enrolment:
    issueId: str
    badgeMetaId: str
    customerId: str
    issuedStatus: str = "ACTIVE"  # becomes REVOKED, as in the read-back; EXPIRED, say, too
    issuedOn: str = ""
    revokedOn: float | None = None  # epoch seconds with a fraction, as the read-back gives it


@dataclass
class Earn:
    earnedBadgeId: str
    badgeMetaId: str
    customerId: str
    isActive: bool = True
    earnedOn: str = ""
    revokedOn: float | None = None


@dataclass
class Credentials:
    """Who may call the sandbox: Basic users and OAuth clients."""

    basic: dict[str, str] = field(default_factory=lambda: {"demo.till": "demo-password"})
    oauth: dict[str, str] = field(default_factory=lambda: {"demo-key": "demo-secret"})


def envelope(data: Any = None, errors: Iterable[tuple[int | None, str]] = ()) -> dict[str, Any]:
    listed = [
        {"message": message, "reference": None}
        if code is None
        else {"code": code, "message": message, "reference": None}
        for code, message in errors
    ]
    return {"data": data, "errors": listed, "warnings": [] if data is not None else None}


def v2_errors(*errors: tuple[int, str]) -> dict[str, Any]:
    """The v2 customer APIs' error body: no `data` envelope."""
    listed = [{"code": code, "message": message, "reference": None} for code, message in errors]
    return {"errors": listed, "warnings": []}


# The sandbox keeps its own copy of the API's rules rather than the client's, so it checks them.
MAX_BATCH_SIZE = 20  # "Limit for passing customers and revokeIssuals is 20"


def id_key(value: object) -> str:
    """How the API reads a numeric customer id: 000777 is customer 777."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return str(int(text))
    return text


def _api_id(customer_id: str) -> int | str:
    """The API answers numeric customer ids as JSON numbers."""
    return int(customer_id) if customer_id.isascii() and customer_id.isdigit() else customer_id


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stamp() -> float:
    """A revokedOn as the badge details page's example gives it: epoch seconds with a
    fraction (`1728282201.451`)."""
    return round(time.time(), 3)


def _epoch(value: float | str | None) -> float | None:
    """A state file's revokedOn, epoch seconds or an ISO 8601 date (as older dumps wrote),
    in the page's form."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    stamp = datetime.fromisoformat(value)
    return round((stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp(), 3)


def _identifier_kind(header: str | None) -> str | None:
    """The customer field X-CAP-CUSTOMER-IDENTIFIER names, "id" without the header; None for
    a value the API does not take."""
    if not header:
        return "id"
    return next((k for k in IDENTIFIER_KINDS if k.lower() == header.lower()), None)


def _bad_identifier() -> Reply:
    kinds = ", ".join(IDENTIFIER_KINDS)
    return 400, envelope(errors=[(400, f"X-CAP-CUSTOMER-IDENTIFIER must be {kinds}")])


class SandboxState:
    def __init__(self, seed: int = 0) -> None:
        self.credentials = Credentials()
        self.badges: set[str] = set()
        self.customers: dict[str, Customer] = {}  # by id_key(customerId)
        self.enrolments: dict[str, Enrolment] = {}  # by issueId
        self.earns: dict[str, Earn] = {}  # by earnedBadgeId
        # Indexes, so the sandbox stays faster than the client on large states.
        self._enrolled: dict[tuple[str, str], list[Enrolment]] = {}  # (badge, customer key)
        self._earned: dict[tuple[str, str], list[Earn]] = {}
        self._by_identifier: dict[tuple[str, str], Customer] = {}  # (kind, lowercased value)
        self._random = random.Random(seed)
        self._ids = itertools.count(1)

    # --- loading and dumping ------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, seed: int = 0) -> SandboxState:
        state = cls(seed)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise InputError(path, f"cannot read sandbox state ({exc.strerror})") from exc
        try:
            if path.suffix.lower() == ".csv":
                state._load_csv(text)
            else:
                state._load_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                path,
                f"is not a sandbox state file ({type(exc).__name__}: {exc})",
                "see samples/sandbox-state.json for the JSON form, samples/sandbox-state.csv "
                "for the CSV form",
            ) from exc
        return state

    @classmethod
    def from_dict(cls, data: dict[str, Any], seed: int = 0) -> SandboxState:
        """A state from the JSON form, already parsed."""
        state = cls(seed)
        state._load_json(data)
        return state

    def _load_json(self, data: dict[str, Any]) -> None:
        credentials = data.get("credentials")
        if credentials:
            self.credentials = Credentials(
                dict(credentials.get("basic", {})), dict(credentials.get("oauth", {}))
            )
        self.badges.update(str(b) for b in data.get("badges", []))
        for item in data.get("customers", []):
            self.add_customer(Customer(**{k: str(v) for k, v in item.items()}))
        for item in data.get("enrolments", []):
            self._add_enrolment(Enrolment(**item))
        for item in data.get("earns", []):
            self._add_earn(Earn(**item))

    def _load_csv(self, text: str) -> None:
        """One CSV, a `kind` column saying what each line is: badge, customer, enrolment, earn."""
        for line in csv.DictReader(text.splitlines()):
            kind = line.pop("kind").strip()
            values = {k: v.strip() for k, v in line.items() if k and v and v.strip()}
            if kind == "badge":
                self.badges.add(values["badgeMetaId"])
            elif kind == "customer":
                self.add_customer(
                    Customer(**{k: values.get(k, "") for k in Customer.__annotations__})
                )
            elif kind == "enrolment":
                status = values.get("issuedStatus", "ACTIVE")  # EXPIRED, say
                self._add_enrolment(
                    Enrolment(
                        values["issueId"], values["badgeMetaId"], values["customerId"], status
                    )
                )
            elif kind == "earn":
                self._add_earn(
                    Earn(values["earnedBadgeId"], values["badgeMetaId"], values["customerId"])
                )
            else:
                raise ValueError(f"kind {kind!r} is not badge, customer, enrolment or earn")

    def dump(self) -> dict[str, Any]:
        return {
            "credentials": asdict(self.credentials),
            "badges": sorted(self.badges),
            "customers": [asdict(c) for c in self.customers.values()],
            "enrolments": [asdict(e) for e in self.enrolments.values()],
            "earns": [asdict(e) for e in self.earns.values()],
        }

    def add_customer(self, customer: Customer) -> Customer:
        known = self.customers.setdefault(id_key(customer.customerId), customer)
        for kind in IDENTIFIER_KINDS:
            value = getattr(customer, kind).strip().lower()
            if value and not getattr(known, kind):
                setattr(known, kind, getattr(customer, kind))
            if value:
                self._by_identifier.setdefault((kind, value), known)
        return known

    def _add_enrolment(self, enrolment: Enrolment) -> None:
        enrolment.issuedOn = enrolment.issuedOn or _now()
        enrolment.revokedOn = _epoch(enrolment.revokedOn)
        self.badges.add(enrolment.badgeMetaId)
        self.add_customer(Customer(enrolment.customerId))
        self.enrolments[enrolment.issueId] = enrolment
        holder = (enrolment.badgeMetaId, id_key(enrolment.customerId))
        self._enrolled.setdefault(holder, []).append(enrolment)

    def _add_earn(self, earn: Earn) -> None:
        earn.earnedOn = earn.earnedOn or _now()
        earn.revokedOn = _epoch(earn.revokedOn)
        self.badges.add(earn.badgeMetaId)
        self.add_customer(Customer(earn.customerId))
        self.earns[earn.earnedBadgeId] = earn
        self._earned.setdefault((earn.badgeMetaId, id_key(earn.customerId)), []).append(earn)

    def _new_id(self) -> str:
        """ObjectId-shaped, and the same sequence for the same seed."""
        return f"{0x5A000000 + next(self._ids):08x}{self._random.getrandbits(64):016x}"

    def find_customer(self, value: Any, kind: str = "id") -> Customer | None:
        if kind == "id":
            return self.customers.get(id_key(value))
        return self._by_identifier.get((kind, str(value).strip().lower()))

    def enrolments_of(self, badge: str, customer: Customer) -> list[Enrolment]:
        return self._enrolled.get((badge, id_key(customer.customerId)), [])

    def earns_of(self, badge: str, customer: Customer) -> list[Earn]:
        return self._earned.get((badge, id_key(customer.customerId)), [])

    # --- the API ------------------------------------------------------------------------

    def revoke_issue(self, body: Any) -> Reply:
        if not isinstance(body, dict) or not body.get("badgeMetaId"):
            return 400, envelope(errors=[(715, "Badge meta id is mandatory")])
        badge = str(body["badgeMetaId"])
        issuals = body.get("revokeIssuals") or []
        customers = body.get("customers") or []
        if not issuals and not customers:
            return 400, envelope(errors=[(1051, "RevokeIssuals or CustomerId is mandatory")])
        # revokeIssuals wins: customers is silently ignored when both are sent.
        wanted = issuals or customers
        if not isinstance(wanted, list) or len(wanted) > MAX_BATCH_SIZE:
            message = f"Limit for passing customers and revokeIssuals is {MAX_BATCH_SIZE}"
            return 400, envelope(errors=[(400, message)])
        if badge not in self.badges:
            return 404, envelope(errors=[BADGE_NOT_FOUND])
        entries: list[dict[str, Any]] = []
        for item in wanted:
            if issuals:
                item = item if isinstance(item, dict) else {}
                entries.append(
                    self._revoke_issual(badge, item.get("customerId"), item.get("issueId"))
                )
            else:
                entries.extend(self._revoke_customer(badge, item))
        self._random.shuffle(entries)  # the real API does not promise the request's order
        data = {"badgeMetaId": badge, "revokedIssuedBadges": entries, "requestId": None}
        failed = sum(1 for e in entries if e.get("error"))
        return (201 if 0 < failed < len(entries) else 200), envelope(data)

    def _revoke_issual(self, badge: str, customer_id: Any, issue_id: Any) -> dict[str, Any]:
        enrolment = self.enrolments.get(str(issue_id))
        customer = self.find_customer(customer_id)
        shown = _api_id(str(customer_id))
        if (
            enrolment is None
            or enrolment.badgeMetaId != badge
            or enrolment.issuedStatus != "ACTIVE"
        ):
            return _not_issued(shown)
        if customer is None or id_key(enrolment.customerId) != id_key(customer.customerId):
            return {
                "customerId": shown,
                "issuedId": enrolment.issueId,
                "error": {"message": "issue doesn't belong to customer", "reference": None},
            }
        self._revoke(enrolment)
        return {"customerId": shown, "issuedId": enrolment.issueId, "error": None}

    def _revoke_customer(self, badge: str, customer_id: Any) -> list[dict[str, Any]]:
        customer = self.find_customer(customer_id)
        shown = _api_id(str(customer_id))
        held = self.enrolments_of(badge, customer) if customer is not None else []
        active = [e for e in held if e.issuedStatus == "ACTIVE"]
        for enrolment in active:
            self._revoke(enrolment)
        if not active:
            return [_not_issued(shown)]
        return [{"customerId": shown, "issuedId": e.issueId, "error": None} for e in active]

    @staticmethod
    def _revoke(enrolment: Enrolment) -> None:
        enrolment.issuedStatus = "REVOKED"
        enrolment.revokedOn = _stamp()

    def revoke_earn(self, body: Any, identifier: str | None) -> Reply:
        if not isinstance(body, dict) or not body.get("badgeMetaId"):
            return 400, envelope(errors=[(715, "Badge meta id is mandatory")])
        if not body.get("earnedBadgeId"):
            return 400, envelope(errors=[(813, "EarnId is mandatory")])
        if body.get("customerId") in (None, ""):
            return 400, envelope(errors=[(400, "customerId is mandatory")])
        kind = _identifier_kind(identifier)
        if kind is None:
            return _bad_identifier()
        if str(body["badgeMetaId"]) not in self.badges:
            return 404, envelope(errors=[BADGE_NOT_FOUND])
        customer = self.find_customer(body["customerId"], kind)
        earn = self.earns.get(str(body["earnedBadgeId"]))
        if (
            customer is None
            or earn is None
            or not earn.isActive
            or earn.badgeMetaId != str(body["badgeMetaId"])
            or id_key(earn.customerId) != id_key(customer.customerId)
        ):
            return 409, envelope(errors=[NOT_ACTIVE])
        earn.isActive = False
        earn.revokedOn = _stamp()
        data = {
            "badgeMetaId": earn.badgeMetaId,
            "customerId": _api_id(customer.customerId),
            "earnedBadgeId": earn.earnedBadgeId,
            "isActive": False,
        }
        return 200, envelope(data)

    def issue_bulk(self, body: Any) -> Reply:
        if not isinstance(body, dict) or not body.get("badgeMetaId"):
            return 400, envelope(errors=[(715, "Badge meta id is mandatory")])
        customers = body.get("customers") or []
        if not customers:
            return 400, envelope(errors=[(1051, "RevokeIssuals or CustomerId is mandatory")])
        if len(customers) > MAX_BATCH_SIZE:
            return 400, envelope(errors=[(400, f"Limit for passing customers is {MAX_BATCH_SIZE}")])
        badge = str(body["badgeMetaId"])
        issued = []
        for customer_id in customers:
            customer = self.add_customer(Customer(str(customer_id)))
            enrolment = Enrolment(self._new_id(), badge, customer.customerId)
            self._add_enrolment(enrolment)
            issued.append(
                {
                    "customerId": _api_id(customer.customerId),
                    "issuedId": enrolment.issueId,
                    "error": None,
                }
            )
        data = {"badgeMetaId": badge, "issuedBadges": issued, "requestId": body.get("requestId")}
        return 200, envelope(data)

    def earn(self, body: Any) -> Reply:
        if not isinstance(body, dict) or not body.get("badgeMetaId"):
            return 400, envelope(errors=[(715, "Badge meta id is mandatory")])
        badge, customer = str(body["badgeMetaId"]), self.find_customer(body.get("customerId"))
        enrolled = customer is not None and any(
            e.issuedStatus == "ACTIVE" for e in self.enrolments_of(badge, customer)
        )
        if customer is None or not enrolled:
            return 400, envelope(errors=[(811, "Badge issue is mandatory before earn")])
        earn = Earn(self._new_id(), badge, customer.customerId)
        self._add_earn(earn)
        data = {
            "badgeMetaId": badge,
            "customerId": _api_id(customer.customerId),
            "earnedBadgeId": earn.earnedBadgeId,
            "isActive": True,
            "requestId": body.get("requestId"),
        }
        return 200, envelope(data)

    def lookup(self, query: Mapping[str, str]) -> Reply:
        """GET /v2/customers/lookup/customerDetails: the customer an identifier names, at the
        top level of the body (v2 APIs use no `data` envelope)."""
        source = query.get("source", "").strip()
        name = query.get("identifierName", "").strip()
        value = query.get("identifierValue", "").strip()
        if not source:
            return 400, v2_errors((400, "source is mandatory"))
        if source not in LOOKUP_SOURCES:
            return 400, v2_errors((400, f"source must be one of {', '.join(LOOKUP_SOURCES)}"))
        if name not in LOOKUP_IDENTIFIERS:
            names = ", ".join(LOOKUP_IDENTIFIERS)
            return 400, v2_errors((400, f"identifierName must be one of {names}"))
        if not value:
            return 400, v2_errors((400, "identifierValue is mandatory"))
        kind = LOOKUP_IDENTIFIERS[name]
        customer = self.find_customer(value, kind) if kind and source in LOOKUP_FINDS_IN else None
        if customer is None:
            # The status is undocumented (the docs' decision: the 816 in the body means not
            # found, whatever the status). 400 is the status the vendor lists for a request it
            # refuses; 404 is in none of its lists, so a client keying on 404 fails here.
            return 400, v2_errors(NOT_FOUND)
        identifiers = [
            {"type": name, "value": getattr(customer, field)}
            for name, field in LOOKUP_IDENTIFIERS.items()
            if field and getattr(customer, field)
        ]
        body = {
            "id": _api_id(id_key(customer.customerId)),
            "profiles": [{"source": "INSTORE", "identifiers": identifiers}],
            "warnings": [],
        }
        return 200, body

    def read_back(self, customer_id: str, badge: str, identifier: str | None = None) -> Reply:
        """GET .../badges/management/{customerId}/badge/{badgeMetaId}: the customer named as
        revokeEarn names it (the id, or the identifier X-CAP-CUSTOMER-IDENTIFIER says)."""
        kind = _identifier_kind(identifier)
        if kind is None:
            return _bad_identifier()
        if badge not in self.badges:
            return 404, envelope(errors=[BADGE_NOT_FOUND])
        customer = self.find_customer(customer_id, kind) or Customer(customer_id)
        hidden = ("badgeMetaId", "customerId")
        issuals = [
            {k: v for k, v in asdict(e).items() if k not in hidden}
            for e in self.enrolments_of(badge, customer)
        ]
        earns = [
            {k: v for k, v in asdict(e).items() if k not in hidden}
            for e in self.earns_of(badge, customer)
        ]
        data = {
            "badgeMetaId": badge,
            "customerId": _api_id(customer.customerId),
            "issualDetails": {"issuals": issuals},
            "earnDetails": {"earns": earns},
            "statistics": {
                "activeIssuals": sum(1 for i in issuals if i["issuedStatus"] == "ACTIVE"),
                "activeEarns": sum(1 for e in earns if e["isActive"]),
            },
        }
        return 200, envelope(data)


def _not_issued(customer_id: int | str) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "error": {
            "code": 404,
            "message": "Customer doesn't have issue instance",
            "reference": None,
        },
    }
