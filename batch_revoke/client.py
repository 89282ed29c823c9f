"""The Capillary badge API: auth, the two revoke endpoints, and reading their answers.

`build_request` and `interpret` are pure: (batch) -> request and (batch, reply) -> outcomes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from batch_revoke.errors import AuthError, BatchRevokeError, ConfigError
from batch_revoke.model import (
    Batch,
    IdentifierType,
    Mode,
)

log = logging.getLogger(__name__)

REVOKE_ISSUE_PATH = "/api_gateway/v1/badges/badgeMeta/customer/revokeIssue"
REVOKE_EARN_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
READ_BACK_PATH = "/api_gateway/v1/badges/management/{customerId}/badge/{badgeMetaId}"
TOKEN_PATH = "/v3/oauth/token/generate"
IDENTIFIER_HEADER = "X-CAP-CUSTOMER-IDENTIFIER"
TOKEN_HEADER = "X-CAP-API-OAUTH-TOKEN"

CLUSTERS = {
    "eu": "https://eu.api.capillarytech.com",
    "in": "https://apac.api.capillarytech.com",
    "apac2": "https://apac2.api.capillarytech.com",
    "us": "https://us.api.capillarytech.com",
    "cn": "https://api.capillarytech.cn.com",
}


# --- credentials and authentication -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str = ""


@dataclass(frozen=True, slots=True)
class OAuthCredentials:
    key: str
    secret: str = ""


Credentials = BasicCredentials | OAuthCredentials


NO_CREDENTIALS_FIX = (
    "set CAP_USERNAME and CAP_PASSWORD (till id and password) or CAP_OAUTH_KEY and "
    "CAP_OAUTH_SECRET in the environment, or use --dry-run or --sandbox"
)


def credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    """Credentials come only from the environment, never from options or files.
    None when none are set; half a pair is an error."""
    username, password = environ.get("CAP_USERNAME", ""), environ.get("CAP_PASSWORD", "")
    key, secret = environ.get("CAP_OAUTH_KEY", ""), environ.get("CAP_OAUTH_SECRET", "")
    if key or secret:
        if not (key and secret):
            missing = "CAP_OAUTH_SECRET" if key else "CAP_OAUTH_KEY"
            raise ConfigError(
                f"{missing} is not set", "set both CAP_OAUTH_KEY and CAP_OAUTH_SECRET"
            )
        if username or password:
            log.info("CAP_OAUTH_KEY and CAP_USERNAME are both set: using OAuth (the key)")
        return OAuthCredentials(key, secret)
    if username or password:
        if not (username and password):
            missing = "CAP_PASSWORD" if username else "CAP_USERNAME"
            raise ConfigError(f"{missing} is not set", "set both CAP_USERNAME and CAP_PASSWORD")
        return BasicCredentials(username, password)
    return None


def basic_header(credentials: BasicCredentials) -> str:
    """The API wants the password as its MD5 hex digest, never in clear."""
    digest = hashlib.md5(credentials.password.encode()).hexdigest()
    token = base64.b64encode(f"{credentials.username}:{digest}".encode()).decode()
    return f"Basic {token}"


class TokenUnavailable(BatchRevokeError):
    """The token endpoint did not answer usefully; no revoke request was sent."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message, http_status)
        self.message = message
        self.http_status = http_status

    def __str__(self) -> str:
        return f"could not get an OAuth token: {self.message}"


class Authenticator:
    """Adds the auth headers to each request; renews what can be renewed after a 401."""

    def __init__(
        self,
        credentials: Credentials,
        clock: Callable[[], float] = time.monotonic,
        renew_margin: float = 30.0,
    ) -> None:
        self.credentials = credentials
        self._clock = clock
        self._renew_margin = renew_margin
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        if isinstance(self.credentials, BasicCredentials):
            return {"Authorization": basic_header(self.credentials)}
        return {TOKEN_HEADER: await self._current_token(http)}

    async def renew(self, http: httpx.AsyncClient, rejected: Mapping[str, str]) -> bool:
        """After a 401: a new token, unless another request already got one. False for Basic."""
        if isinstance(self.credentials, BasicCredentials):
            return False
        async with self._lock:
            if self._token == rejected.get(TOKEN_HEADER):
                self._token = ""
        await self._current_token(http)
        return True

    async def _current_token(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if not self._token or self._clock() >= self._expires_at:
                await self._generate(http)
            return self._token

    async def _generate(self, http: httpx.AsyncClient) -> None:
        assert isinstance(self.credentials, OAuthCredentials)
        body = {"key": self.credentials.key, "secret": self.credentials.secret}
        try:
            response = await http.post(TOKEN_PATH, json=body)
        except httpx.TransportError as exc:
            raise TokenUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise AuthError(response.status_code, "the token endpoint refused CAP_OAUTH_KEY")
        data = _json(response)
        token_data = data.get("data") if isinstance(data, dict) else None
        token = token_data.get("accessToken") if isinstance(token_data, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise TokenUnavailable(_snippet(response.text), response.status_code)
        ttl = token_data.get("ttlSeconds") if isinstance(token_data, dict) else None
        lifetime = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else 300.0
        # Renew ahead of expiry, but never sooner than half-way through a short-lived token.
        self._expires_at = self._clock() + max(lifetime - self._renew_margin, lifetime / 2)
        self._token = token


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def build_request(batch: Batch) -> ApiRequest:
    """IDs go out as the text the file holds: a JSON number would lose leading zeros."""
    if batch.mode is Mode.EARN:
        (row,) = batch.rows
        headers = {}
        if row.identifier_type is not IdentifierType.ID:
            headers[IDENTIFIER_HEADER] = row.identifier_type.value
        body = {
            "badgeMetaId": batch.badge_meta_id,
            "customerId": row.customer_id,
            "earnedBadgeId": row.earned_badge_id,
        }
        return ApiRequest(REVOKE_EARN_PATH, body, headers)
    if batch.mode is Mode.ISSUALS:
        entries = [{"customerId": r.customer_id, "issueId": r.issue_id} for r in batch.rows]
        return ApiRequest(
            REVOKE_ISSUE_PATH, {"badgeMetaId": batch.badge_meta_id, "revokeIssuals": entries}, {}
        )
    customers = [r.customer_id for r in batch.rows]
    return ApiRequest(
        REVOKE_ISSUE_PATH, {"badgeMetaId": batch.badge_meta_id, "customers": customers}, {}
    )


class RequestNotSent(BatchRevokeError):
    """The request could not be made or was refused by httpx before it could reach the
    server, so nothing can have been applied; trying it again would fail the same way."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.cause = cause

    def __str__(self) -> str:
        return f"{type(self.cause).__name__}: {self.cause or 'no detail'}"


@dataclass(frozen=True, slots=True)
class ApiReply:
    http_status: int
    body: Any  # the parsed JSON, or None when the body is not JSON
    text: str  # the start of the raw body, for messages
    retry_after: float | None
    sends: int  # HTTP requests it took (2 when a 401 made us renew the token and resend)


class CapillaryClient:
    """Sends one batch as one request over a shared `httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, auth: Authenticator) -> None:
        self.http = http
        self.auth = auth

    async def ready(self) -> None:
        """The credentials in hand (an OAuth token fetched if due) before a request leaves, so
        a refused key stops the run with nothing sent."""
        await self.auth.headers(self.http)

    async def send(self, batch: Batch) -> ApiReply:
        """Raises RequestNotSent when the request could not be made (nothing left)."""
        try:
            request = build_request(batch)
        except Exception as exc:
            raise RequestNotSent(exc) from exc

        async def post(auth_headers: dict[str, str]) -> httpx.Response:
            headers = {"Accept": "application/json", **request.headers, **auth_headers}
            return await self._send_built(
                lambda: self.http.build_request(
                    "POST", request.path, json=request.body, headers=headers
                )
            )

        return await self._authorised(post)

    async def read_back(self, customer_id: str, badge_meta_id: str) -> ApiReply:
        """One customer's enrolments and earns of one badge (GET, so safe to repeat)."""
        path = READ_BACK_PATH.format(
            customerId=quote(customer_id, safe=""), badgeMetaId=quote(badge_meta_id, safe="")
        )

        async def get(auth_headers: dict[str, str]) -> httpx.Response:
            headers = {"Accept": "application/json", **auth_headers}
            return await self._send_built(
                lambda: self.http.build_request(
                    "GET", path, params={"includeStatistics": "true"}, headers=headers
                )
            )

        return await self._authorised(get)

    async def _send_built(self, build: Callable[[], httpx.Request]) -> httpx.Response:
        """The request made first, then sent, so that what fails before any byte leaves (a
        URL too long, a header httpx refuses) is told apart from what fails on the wire."""
        try:
            request = build()
        except Exception as exc:
            raise RequestNotSent(exc) from exc
        try:
            return await self.http.send(request)
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            # Refused by httpx itself before the request was complete on the wire: the server
            # cannot have acted on it (a TransportError, but nothing a retry would change).
            raise RequestNotSent(exc) from exc

    async def _authorised(
        self, call: Callable[[dict[str, str]], Awaitable[httpx.Response]]
    ) -> ApiReply:
        """The call with auth headers; once more with a new token after a 401."""
        auth_headers = await self.auth.headers(self.http)
        response = await call(auth_headers)
        if response.status_code == 401 and await self.auth.renew(self.http, auth_headers):
            return _reply(await call(await self.auth.headers(self.http)), sends=2)
        return _reply(response, sends=1)


def _reply(response: httpx.Response, sends: int) -> ApiReply:
    return ApiReply(
        response.status_code,
        _json(response),
        _snippet(response.text),
        parse_retry_after(response.headers.get("Retry-After")),
        sends,
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        # Not JSON, or JSON Python will not hold: a number of more than 4,300 digits, nesting
        # deeper than the stack. Either way a body this code cannot read.
        return None


def _snippet(text: str, limit: int = 200) -> str:
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


def check_base_url(url: str) -> str:
    """Refuse URLs that would send credentials in clear to another machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base URL {url!r} is not an http(s) URL",
            "pass the host root, e.g. --base-url https://eu.api.capillarytech.com or --cluster eu",
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        root = f"{parts.scheme}://{parts.netloc}"
        raise ConfigError(
            f"base URL {url!r} has a path; the endpoints' paths are added to it",
            f"pass the host root only: --base-url {root}",
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r} would send credentials unencrypted",
            "use https (plain http is allowed for 127.0.0.1/localhost only)",
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
