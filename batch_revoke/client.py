"""The Capillary badge API on the wire: auth (one httpx.Auth class per kind of credentials),
the four requests (two revokes, the read-back, the lookup) and their raw replies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from batch_revoke.credentials import BasicCredentials, Credentials, OAuthCredentials
from batch_revoke.errors import AuthError, BatchRevokeError
from batch_revoke.model import ApiReply, Batch, IdentifierType, Mode

REVOKE_ISSUE_PATH = "/api_gateway/v1/badges/badgeMeta/customer/revokeIssue"
REVOKE_EARN_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
READ_BACK_PATH = "/api_gateway/v1/badges/management/{customerId}/badge/{badgeMetaId}"
LOOKUP_PATH = "/v2/customers/lookup/customerDetails"
TOKEN_PATH = "/v3/oauth/token/generate"
IDENTIFIER_HEADER = "X-CAP-CUSTOMER-IDENTIFIER"
TOKEN_HEADER = "X-CAP-API-OAUTH-TOKEN"
# On every answer, for tracing it end to end: the id the vendor's support asks for.
REQUEST_ID_HEADER = "X-Cap-Requestid"

# The lookup's identifierName for each kind of identifier: `cardnumber` with a lower-case n
# here, unlike revokeEarn's header. `INSTORE` is the source of loyalty customers.
LOOKUP_NAMES = {
    IdentifierType.MOBILE: "mobile",
    IdentifierType.EMAIL: "email",
    IdentifierType.EXTERNAL_ID: "externalId",
    IdentifierType.CARD_NUMBER: "cardnumber",
}
LOOKUP_SOURCE = "INSTORE"


def auth_for(credentials: Credentials, http: httpx.AsyncClient) -> ApiAuth:
    """A till's Basic header, or an OAuth key's tokens (generated through `http`)."""
    match credentials:
        case BasicCredentials():
            return TillAuth(credentials)
        case OAuthCredentials():
            return OAuthTokenAuth(credentials, http)


def basic_header(credentials: BasicCredentials) -> str:
    """The API wants the password as its MD5 hex digest, never in clear."""
    digest = hashlib.md5(credentials.password.encode()).hexdigest()
    token = base64.b64encode(f"{credentials.username}:{digest}".encode()).decode()
    return f"Basic {token}"


class TokenUnavailable(BatchRevokeError):
    """The token endpoint did not answer usefully; no revoke request was sent."""

    def __str__(self) -> str:
        return f"could not get an OAuth token: {self.args[0]}"


class ApiAuth(httpx.Auth):
    """One of the API's auth schemes; `ready` gets what a request needs before it leaves, so
    a refused key stops the run with nothing sent (a till's header needs nothing)."""

    async def ready(self) -> str | None:
        return None


class TillAuth(ApiAuth):
    def __init__(self, credentials: BasicCredentials) -> None:
        self._header = basic_header(credentials)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class OAuthTokenAuth(ApiAuth):
    """A token from TOKEN_PATH in TOKEN_HEADER, generated again before it expires; after a
    401 a new one (unless another request already got one) and the request once more."""

    def __init__(
        self,
        credentials: OAuthCredentials,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self._http = http
        self._clock = clock
        self._token = ""
        self._expires_at = 0.0
        # Requests in flight together wait for one token instead of each generating its own.
        self._lock = asyncio.Lock()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.ready()
        _attach(request, token)
        response = yield request
        if response.status_code != 401:
            return
        await response.aread()  # done with: its connection goes back before the token call
        async with self._lock:  # the rejected token dropped, unless another request renewed it
            if self._token == token:
                self._token = ""
        _attach(request, await self.ready())
        yield request

    async def ready(self) -> str:
        async with self._lock:
            if not self._token or self._clock() >= self._expires_at:
                await self._generate()
            return self._token

    async def _generate(self) -> None:
        body = {"key": self.credentials.key, "secret": self.credentials.secret}
        try:
            response = await self._http.post(TOKEN_PATH, json=body)
        except httpx.TransportError as exc:
            raise TokenUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise AuthError(response.status_code, "the token endpoint refused CAP_OAUTH_KEY")
        data = _json(response)
        token_data = data.get("data") if isinstance(data, dict) else None
        token = token_data.get("accessToken") if isinstance(token_data, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise TokenUnavailable(snippet(response.text))
        ttl = token_data.get("ttlSeconds") if isinstance(token_data, dict) else None
        lifetime = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else 300.0
        # Renew 30 s ahead of expiry, but never sooner than half-way through a short-lived token.
        self._expires_at = self._clock() + max(lifetime - 30.0, lifetime / 2)
        self._token = token


def _attach(request: httpx.Request, token: str) -> None:
    """A header value must be ASCII, as when a request is built with it: a token that is not
    makes a request that cannot be sent."""
    try:
        token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise RequestNotSent(exc) from exc
    request.headers[TOKEN_HEADER] = token


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None


def identified(identifier: IdentifierType) -> dict[str, str]:
    """The header that names the customer otherwise than by id (revokeEarn, the read-back)."""
    return {} if identifier is IdentifierType.ID else {IDENTIFIER_HEADER: identifier.value}


def build_request(batch: Batch) -> ApiRequest:
    """IDs go out as the text the file holds: a JSON number would lose leading zeros."""
    body: dict[str, Any] = {"badgeMetaId": batch.badge_meta_id}
    if batch.mode is Mode.EARN:
        (row,) = batch.rows
        body |= {"customerId": row.customer_id, "earnedBadgeId": row.earned_badge_id}
        return ApiRequest("POST", REVOKE_EARN_PATH, body, identified(row.identifier_type))
    if batch.mode is Mode.ISSUALS:
        body["revokeIssuals"] = [
            {"customerId": r.customer_id, "issueId": r.issue_id} for r in batch.rows
        ]
    else:
        body["customers"] = [r.customer_id for r in batch.rows]
    return ApiRequest("POST", REVOKE_ISSUE_PATH, body)


class RequestNotSent(BatchRevokeError):
    """The request could not be made or was refused by httpx before it could reach the
    server, so nothing can have been applied; trying it again would fail the same way."""

    def __str__(self) -> str:
        return f"{type(self.args[0]).__name__}: {self.args[0]}"


def read_back_request(
    customer_id: str, badge_meta_id: str, identifier: IdentifierType = IdentifierType.ID
) -> ApiRequest:
    """One customer's enrolments and earns of one badge (GET, so safe to repeat)."""
    path = READ_BACK_PATH.format(
        customerId=quote(customer_id, safe=""), badgeMetaId=quote(badge_meta_id, safe="")
    )
    return ApiRequest("GET", path, None, identified(identifier), {"includeStatistics": "true"})


def lookup_request(identifier: IdentifierType, value: str) -> ApiRequest:
    """The customer an identifier names (GET, so safe to repeat)."""
    params = {
        "source": LOOKUP_SOURCE,
        "identifierName": LOOKUP_NAMES[identifier],
        "identifierValue": value,
    }
    return ApiRequest("GET", LOOKUP_PATH, params=params)


class CapillaryClient:
    """The API's requests over a shared `httpx.AsyncClient`, with the API's auth."""

    def __init__(self, http: httpx.AsyncClient, auth: ApiAuth) -> None:
        self.http = http
        self.auth = auth

    async def send(self, made: ApiRequest) -> ApiReply:
        """The request made first, then sent, so that what fails before any byte leaves (a
        URL too long, a header httpx refuses) is told apart from what fails on the wire."""
        try:
            request = self.http.build_request(
                made.method,
                made.path,
                json=made.body,
                params=made.params,
                headers={"Accept": "application/json", **made.headers},
            )
        except Exception as exc:
            raise RequestNotSent(exc) from exc
        try:
            response = await self.http.send(request, auth=self.auth)
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            # Refused by httpx itself before the request was complete on the wire: the server
            # cannot have acted on it (a TransportError, but nothing a retry would change).
            raise RequestNotSent(exc) from exc
        # Each answer the auth flow sent the request again after is in the history: its sends.
        return ApiReply(
            response.status_code,
            _json(response),
            snippet(response.text),
            parse_retry_after(response.headers.get("Retry-After")),
            len(response.history) + 1,
            response.headers.get(REQUEST_ID_HEADER, ""),
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        # Not JSON, or JSON Python will not hold: a number of more than 4,300 digits, nesting
        # deeper than the stack. Either way a body this code cannot read.
        return None


def snippet(text: str, limit: int = 200) -> str:
    """Text on one line, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait, from either form of Retry-After (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
