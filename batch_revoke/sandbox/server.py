"""The sandbox over real HTTP (aiohttp): routes, auth, faults, and ways to run it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import random
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from batch_revoke.errors import ConfigError
from batch_revoke.sandbox.faults import FaultKind, FaultPlan, RateLimitSpec
from batch_revoke.sandbox.state import (
    NOT_FOUND_8015,
    SEARCH_BUSY,
    Reply,
    SandboxState,
    envelope,
    v2_errors,
)

# The vendor's paths and headers, copied from its pages rather than imported from the client:
# the sandbox is an independent check, so a wrong constant in the client fails a test.
REVOKE_ISSUE_PATH = "/api_gateway/v1/badges/badgeMeta/customer/revokeIssue"
REVOKE_EARN_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
TOKEN_PATH = "/v3/oauth/token/generate"
IDENTIFIER_HEADER = "X-CAP-CUSTOMER-IDENTIFIER"
TOKEN_HEADER = "X-CAP-API-OAUTH-TOKEN"
REQUEST_ID_HEADER = "X-Cap-Requestid"  # on every answer, "for end-to-end tracing"
ISSUE_BULK_PATH = "/api_gateway/v1/badges/badgeMeta/customer/issueBulk"
EARN_PATH = "/api_gateway/v1/badges/customer/earn"
READ_BACK_PATH = "/api_gateway/v1/badges/management/{customerId}/badge/{badgeMetaId}"
LOOKUP_PATH = "/v2/customers/lookup/customerDetails"  # ?source=&identifierName=&identifierValue=
STATE_PATH = "/_sandbox/state"  # the sandbox's own: dump (GET) the state, for tests and people
REQUESTS_PATH = "/_sandbox/requests"  # the sandbox's own: every revoke and lookup received

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SandboxConfig:
    state: SandboxState = field(default_factory=SandboxState)
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency_ms: tuple[float, float] = (0.0, 0.0)  # each request waits a uniform draw from this
    rate_limit: RateLimitSpec | None = None  # per credential, like Capillary's per-till limits
    # Retry-After is not documented by Capillary: sent only when set. The 429 fault asks for
    # this many seconds, the rate limit for what is left of its window.
    retry_after: float | None = None
    slow_seconds: float = 60.0  # how late a `slow` fault answers
    token_ttl: int = 300
    seed: int = 0
    # Every revoke request and customer lookup as it arrives, for tests and people checking
    # what was sent.
    requests: list[LoggedRequest] = field(default_factory=list)
    # Every read-back as it arrives, apart: no fault applies to them, and they are not
    # numbered with the calls that are.
    read_backs: list[LoggedRequest] = field(default_factory=list)
    # Every answer of the API's routes, by the X-Cap-Requestid it carried.
    answers: list[SentAnswer] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    number: int  # revokes and lookups counted from 1 in one sequence, as --fault #N counts them
    path: str
    body: Any
    identifier: str | None
    fault: FaultKind | None
    applied: bool  # the call was carried out (no fault, or a fault that applies first)
    at: float = 0.0  # time.monotonic() on arrival
    throttled: bool = False  # answered 429 by --sandbox-rate-limit, never reached the API
    query: dict[str, str] = field(default_factory=dict)  # a lookup's parameters
    request_id: str = ""  # the X-Cap-Requestid of its answer


@dataclass(frozen=True, slots=True)
class SentAnswer:
    """An answer as it left: the id it carried, what it answered, and its status."""

    request_id: str
    method: str
    path: str
    status: int


class _Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = config.state
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (key, expires at)
        self.windows: dict[str, tuple[int, int]] = {}  # caller -> (window, calls in it)
        self.throttled_calls = 0
        self.random = random.Random(config.seed)
        self.lock = asyncio.Lock()  # state changes are atomic per request
        # The X-Cap-Requestid each request's answer will carry, by id(request) until it leaves.
        self.request_ids: dict[int, str] = {}

    # --- auth and limits ----------------------------------------------------------------

    def caller(self, request: web.Request) -> str | None:
        """Who is calling, from a valid Basic header or unexpired token; None if nobody."""
        token = request.headers.get(TOKEN_HEADER)
        if token:
            key, expires = self.tokens.get(token, ("", 0.0))
            return key if key and time.monotonic() < expires else None
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, digest = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        password = self.state.credentials.basic.get(user)
        if password is None or hashlib.md5(password.encode()).hexdigest() != digest:
            return None
        return user

    def throttled(self, caller: str) -> bool:
        """Over the caller's limit in the current clock-aligned window (counts every call
        that passed auth, throttled ones excepted)."""
        limit = self.config.rate_limit
        if limit is None:
            return False
        window = limit.window(time.time())
        current, calls = self.windows.get(caller, (window, 0))
        if current != window:
            calls = 0
        if calls >= limit.count:
            self.throttled_calls += 1
            return True
        self.windows[caller] = (window, calls + 1)
        return False

    async def delay(self) -> None:
        low, high = self.config.latency_ms
        if high > 0:
            await asyncio.sleep(self.random.uniform(low, high) / 1000)

    # --- routes -------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        key = str(body.get("key", "")) if isinstance(body, dict) else ""
        secret = str(body.get("secret", "")) if isinstance(body, dict) else ""
        if not key or self.state.credentials.oauth.get(key) != secret:
            return _json(401, envelope(errors=[(401, "Invalid key or secret")]))
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (key, time.monotonic() + self.config.token_ttl)
        return _json(200, {"data": {"accessToken": token, "ttlSeconds": self.config.token_ttl}})

    async def revoke_issue(self, request: web.Request) -> web.StreamResponse:
        return await self._faulted(request, lambda body: self.state.revoke_issue(body))

    async def revoke_earn(self, request: web.Request) -> web.StreamResponse:
        identifier = request.headers.get(IDENTIFIER_HEADER)
        return await self._faulted(request, lambda body: self.state.revoke_earn(body, identifier))

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        return await self._faulted(request, lambda _: self.state.lookup(query), lookup=True)

    async def _faulted(
        self, request: web.Request, operation: Callable[[Any], Reply], lookup: bool = False
    ) -> web.StreamResponse:
        """A call the faults apply to (the revokes and the lookup), logged as it arrives."""
        fault = self.config.faults.next_fault()
        number = self.config.faults.count
        if fault is not None and fault.lookup_only and not lookup:
            fault = None  # the lookup's own answers: a revoke gets its usual one
        body = await _body(request) if request.method == "POST" else None
        self.config.requests.append(
            LoggedRequest(
                number,
                request.path,
                body,
                request.headers.get(IDENTIFIER_HEADER),
                fault,
                fault is None or fault.applies,
                time.monotonic(),
                query=dict(request.query),
                request_id=self.request_ids[id(request)],
            )
        )
        if fault is None or fault.applies:
            async with self.lock:
                status, payload = operation(body)
        if fault is None:
            return _json(status, payload)
        if fault in (FaultKind.DROP, FaultKind.APPLY_DROP):
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=204)  # never reaches the client
        if fault is FaultKind.SLOW:
            await asyncio.sleep(self.config.slow_seconds)
            return _json(status, payload)
        if fault is FaultKind.NON_JSON:
            page = "<html><body><h1>Service temporarily unavailable</h1></body></html>"
            return web.Response(status=200, text=page, content_type="text/html")
        if fault is FaultKind.SEARCH_BUSY:
            return _json(461, v2_errors(SEARCH_BUSY), reason="Search Engine Busy")
        if fault is FaultKind.NOT_FOUND_8015:
            # Its HTTP status is undocumented, like 816's: the sandbox answers both with 400.
            return _json(400, v2_errors(NOT_FOUND_8015))
        http_status = fault.http_status or 500
        retry_after = self.config.retry_after
        headers = (
            {"Retry-After": _seconds(retry_after)}
            if http_status == 429 and retry_after is not None
            else {}
        )
        messages = {429: "Too many requests", 521: "Multiple actions running for the customer"}
        error = envelope(errors=[(http_status, messages.get(http_status, "Internal error"))])
        return _json(http_status, error, headers)

    async def issue_bulk(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        async with self.lock:
            return _json(*self.state.issue_bulk(body))

    async def earn(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        async with self.lock:
            return _json(*self.state.earn(body))

    async def read_back(self, request: web.Request) -> web.StreamResponse:
        info, identifier = request.match_info, request.headers.get(IDENTIFIER_HEADER)
        self.config.read_backs.append(
            LoggedRequest(
                0,
                request.path,
                None,
                identifier,
                None,
                True,
                time.monotonic(),
                query=dict(request.query),
            )
        )
        return _json(*self.state.read_back(info["customerId"], info["badgeMetaId"], identifier))

    async def dump(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.state.dump())

    async def logged(self, request: web.Request) -> web.StreamResponse:
        return _json(
            200,
            [
                {**asdict(entry), "fault": entry.fault.value if entry.fault else None}
                for entry in self.config.requests
            ],
        )

    @web.middleware
    async def gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Latency, then auth, then the per-minute limit, as a gateway would apply them."""
        self.request_ids[id(request)] = str(uuid.uuid4())  # its answer's, whatever it is
        await self.delay()
        if request.path in (TOKEN_PATH, STATE_PATH, REQUESTS_PATH):
            return await handler(request)
        caller = self.caller(request)
        if caller is None:
            return _json(401, envelope(errors=[(401, "Authentication failed")]))
        limit = self.config.rate_limit
        if limit is not None and self.throttled(caller):
            self.config.requests.append(
                LoggedRequest(
                    0,
                    request.path,
                    None,
                    None,
                    None,
                    False,
                    time.monotonic(),
                    True,
                    dict(request.query),
                    self.request_ids[id(request)],
                )
            )
            error = envelope(errors=[(429, "Rate limit exceeded")])
            headers = {}
            if self.config.retry_after is not None:
                headers["Retry-After"] = _seconds(limit.left(time.time()))
            return _json(429, error, headers)
        return await handler(request)

    async def traced(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer carries its X-Cap-Requestid, errors, 401s and 429s included; the
        answers of the API's routes are logged by it."""
        request_id = self.request_ids.pop(id(request), None) or str(uuid.uuid4())
        response.headers[REQUEST_ID_HEADER] = request_id
        if request.path not in (STATE_PATH, REQUESTS_PATH):
            self.config.answers.append(
                SentAnswer(request_id, request.method, request.path, response.status)
            )


def make_app(config: SandboxConfig) -> web.Application:
    sandbox = _Sandbox(config)
    app = web.Application(middlewares=[sandbox.gate], client_max_size=1024**2)
    app.on_response_prepare.append(sandbox.traced)
    app.router.add_post(TOKEN_PATH, sandbox.token)
    app.router.add_post(REVOKE_ISSUE_PATH, sandbox.revoke_issue)
    app.router.add_post(REVOKE_EARN_PATH, sandbox.revoke_earn)
    app.router.add_post(ISSUE_BULK_PATH, sandbox.issue_bulk)
    app.router.add_post(EARN_PATH, sandbox.earn)
    app.router.add_get(READ_BACK_PATH, sandbox.read_back)
    app.router.add_get(LOOKUP_PATH, sandbox.lookup)
    app.router.add_get(STATE_PATH, sandbox.dump)
    app.router.add_get(REQUESTS_PATH, sandbox.logged)
    return app


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _json(
    status: int, payload: Any, headers: dict[str, str] | None = None, reason: str | None = None
) -> web.Response:
    return web.json_response(payload, status=status, headers=headers, reason=reason)


def _seconds(value: float) -> str:
    return str(max(0, math.ceil(value)))


# --- running it ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """A Basic login the sandbox accepts (the client sends the password as its MD5)."""

    username: str
    password: str


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    credentials: DemoLogin
    requests: list[LoggedRequest] = field(default_factory=list)  # live: revokes, lookups so far
    read_backs: list[LoggedRequest] = field(default_factory=list)  # live: read-backs so far
    answers: list[SentAnswer] = field(default_factory=list)  # live: every answer so far


def demo_credentials(state: SandboxState) -> DemoLogin:
    username, password = next(iter(state.credentials.basic.items()))
    return DemoLogin(username, password)


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror})",
            "pass another --port, or --port 0 for any free one",
        ) from exc
    sock.listen(1024)
    return sock


async def serve(config: SandboxConfig, sock: socket.socket, stop: asyncio.Event) -> None:
    runner = web.AppRunner(
        make_app(config), access_log=None, handle_signals=False, shutdown_timeout=0.5
    )
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def serve_forever(config: SandboxConfig, sock: socket.socket) -> None:
    """In the foreground until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, sock, stop)

    # asyncio leaves SIGTERM at its default (killed, status 143) when its loop closes.
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(main())
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


@contextmanager
def running_sandbox(config: SandboxConfig) -> Iterator[RunningSandbox]:
    """The sandbox on a free loopback port in a background thread, for one run."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def thread_main() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            ready.set()
            await serve(config, sock, stop)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
        finally:
            # Handlers still waiting (latency, slow faults) end quietly with the loop.
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=thread_main, name="batch-revoke-sandbox", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise failure[0]
    try:
        yield RunningSandbox(
            f"http://127.0.0.1:{port}",
            demo_credentials(config.state),
            config.requests,
            config.read_backs,
            config.answers,
        )
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)


def default_state_path() -> Path:
    """samples/sandbox-state.json: beside the package in a checkout, inside it in a wheel."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "samples", package.parent / "samples"):
        if (candidate / "sandbox-state.json").is_file():
            return candidate / "sandbox-state.json"
    return package.parent / "samples" / "sandbox-state.json"
