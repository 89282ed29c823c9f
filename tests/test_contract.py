"""The vendor's contract, pinned as literal strings from its pages (../shared/api-docs): what
goes on the wire for each call. A wrong path, header name or body key in the client fails here,
not only against a sandbox that might share the mistake."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest

from batch_revoke.client import (
    CapillaryClient,
    auth_for,
    build_request,
    lookup_request,
    read_back_request,
)
from batch_revoke.credentials import BasicCredentials, OAuthCredentials
from batch_revoke.model import IdentifierType
from tests.conftest import customers_batch, earn_batch, issue_batch

HOST = "https://eu.api.capillarytech.com"


async def sent(call, credentials=None) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v3/oauth/token/generate":
            return httpx.Response(200, json={"data": {"accessToken": "T0K", "ttlSeconds": 300}})
        return httpx.Response(200, json={"data": {}, "errors": []})

    async with httpx.AsyncClient(base_url=HOST, transport=httpx.MockTransport(api)) as http:
        credentials = credentials or BasicCredentials("store.server", "server123")
        client = CapillaryClient(http, auth_for(credentials, http))
        await call(client)
    return seen


@pytest.mark.parametrize(
    ("batch", "path", "body", "identifier"),
    [
        pytest.param(
            issue_batch(("000777", "654cc0416bccde1274b6d3b0")),
            "/api_gateway/v1/badges/badgeMeta/customer/revokeIssue",
            {
                "badgeMetaId": "B1",
                "revokeIssuals": [{"customerId": "000777", "issueId": "654cc0416bccde1274b6d3b0"}],
            },
            None,
            id="revokeIssue-revokeIssuals",
        ),
        pytest.param(
            customers_batch("000777", "62090013"),
            "/api_gateway/v1/badges/badgeMeta/customer/revokeIssue",
            {"badgeMetaId": "B1", "customers": ["000777", "62090013"]},
            None,
            id="revokeIssue-customers",
        ),
        pytest.param(
            earn_batch("0919900000013", "698daf848644c157e72d83f3", IdentifierType.MOBILE),
            "/api_gateway/v1/badges/customer/revokeEarn",
            {
                "badgeMetaId": "B3",
                "customerId": "0919900000013",
                "earnedBadgeId": "698daf848644c157e72d83f3",
            },
            "mobile",
            id="revokeEarn-mobile",
        ),
        pytest.param(
            earn_batch("566135941", "E1"),
            "/api_gateway/v1/badges/customer/revokeEarn",
            {"badgeMetaId": "B3", "customerId": "566135941", "earnedBadgeId": "E1"},
            None,
            id="revokeEarn-id",
        ),
    ],
)
async def test_revoke_requests_on_the_wire(batch, path, body, identifier):
    (request,) = await sent(lambda client: client.send(build_request(batch)))
    assert (request.method, request.url.path) == ("POST", path)
    assert json.loads(request.content) == body
    assert request.headers.get("X-CAP-CUSTOMER-IDENTIFIER") == identifier
    # Basic: base64(username:md5(password)); the page's example store.server/server123.
    digest = hashlib.md5(b"server123").hexdigest()
    assert digest == "8a16a6b70505eb1f1ff7cdc0cd5559a7"
    expected = base64.b64encode(f"store.server:{digest}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


async def test_read_back_on_the_wire():
    (request,) = await sent(
        lambda client: client.send(read_back_request("62090013", "654bb48766a87827bb61e631"))
    )
    assert request.method == "GET"
    assert request.url.path == (
        "/api_gateway/v1/badges/management/62090013/badge/654bb48766a87827bb61e631"
    )
    assert request.url.params["includeStatistics"] == "true"


async def test_oauth_token_and_its_header_on_the_wire():
    token, revoke = await sent(
        lambda client: client.send(build_request(customers_batch("1"))), OAuthCredentials("K", "S")
    )
    assert (token.method, token.url.path) == ("POST", "/v3/oauth/token/generate")
    assert json.loads(token.content) == {"key": "K", "secret": "S"}
    assert "Authorization" not in token.headers
    assert revoke.headers["X-CAP-API-OAUTH-TOKEN"] == "T0K"
    assert "Authorization" not in revoke.headers


@pytest.mark.parametrize(
    ("identifier", "value", "query"),
    [
        pytest.param(
            IdentifierType.MOBILE,
            "919900000013",
            "source=INSTORE&identifierName=mobile&identifierValue=919900000013",
            id="mobile",
        ),
        pytest.param(
            IdentifierType.EMAIL,
            "ana.silva@example.com",
            "source=INSTORE&identifierName=email&identifierValue=ana.silva%40example.com",
            id="email",
        ),
        pytest.param(
            IdentifierType.EXTERNAL_ID,
            "EXT-1",
            "source=INSTORE&identifierName=externalId&identifierValue=EXT-1",
            id="externalId",
        ),
        pytest.param(
            IdentifierType.CARD_NUMBER,
            "4000123412341234",
            # `cardnumber` with a lower-case n: the lookup's spelling, not revokeEarn's header's
            "source=INSTORE&identifierName=cardnumber&identifierValue=4000123412341234",
            id="cardnumber",
        ),
    ],
)
async def test_customer_lookup_on_the_wire(identifier, value, query):
    (request,) = await sent(lambda client: client.send(lookup_request(identifier, value)))
    assert request.method == "GET"
    assert request.url.path == "/v2/customers/lookup/customerDetails"
    assert request.url.query.decode() == query
    assert request.content == b""
    assert request.headers["Authorization"].startswith("Basic ")
    assert "X-CAP-CUSTOMER-IDENTIFIER" not in request.headers
