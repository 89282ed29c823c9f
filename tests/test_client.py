"""The client: request bodies, auth, and the small parsers of the wire (what an answer
means for each row is tests/test_answers.py)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from batch_revoke.client import (
    REVOKE_EARN_PATH,
    REVOKE_ISSUE_PATH,
    TOKEN_PATH,
    CapillaryClient,
    OAuthTokenAuth,
    RequestNotSent,
    TillAuth,
    TokenUnavailable,
    auth_for,
    basic_header,
    build_request,
    parse_retry_after,
    read_back_request,
)
from batch_revoke.credentials import (
    BasicCredentials,
    OAuthCredentials,
    check_base_url,
    credentials_from_env,
)
from batch_revoke.errors import AuthError, ConfigError
from batch_revoke.model import IdentifierType
from tests.conftest import EARN_REVOKED, customers_batch, earn_batch, envelope_error, issue_batch

BASE = "http://127.0.0.1:9"


# --- requests -------------------------------------------------------------------------------


def test_request_bodies_keep_ids_as_text():
    issuals = build_request(issue_batch(("000777", "0012"), ("98765432109876543210", "x")))
    assert issuals.path == REVOKE_ISSUE_PATH
    assert issuals.body == {
        "badgeMetaId": "B1",
        "revokeIssuals": [
            {"customerId": "000777", "issueId": "0012"},
            {"customerId": "98765432109876543210", "issueId": "x"},
        ],
    }
    customers = build_request(customers_batch("1", "2"))
    assert customers.body == {"badgeMetaId": "B1", "customers": ["1", "2"]}
    assert "revokeIssuals" not in customers.body


def test_leading_zeros_reach_the_api_in_every_body():
    """000777 is customer 777 to the API, but 0099000013 as a mobile is someone else than
    99000013: no body may strip what the file holds."""
    customers = build_request(customers_batch("000777", "0012"))
    assert customers.body["customers"] == ["000777", "0012"]
    earn = build_request(earn_batch("0099000013", "007", IdentifierType.MOBILE))
    assert (earn.body["customerId"], earn.body["earnedBadgeId"]) == ("0099000013", "007")
    by_id = build_request(earn_batch("000566135941", "E1"))
    assert by_id.body["customerId"] == "000566135941"


@pytest.mark.parametrize(
    ("identifier", "header"),
    [
        (IdentifierType.ID, None),
        (IdentifierType.MOBILE, "mobile"),
        (IdentifierType.EMAIL, "email"),
        (IdentifierType.EXTERNAL_ID, "externalId"),
        (IdentifierType.CARD_NUMBER, "cardNumber"),
    ],
)
def test_earn_request_names_the_identifier_type(identifier, header):
    request = build_request(earn_batch("someone@example.com", "E1", identifier))
    assert request.path == REVOKE_EARN_PATH
    assert request.body == {
        "badgeMetaId": "B3",
        "customerId": "someone@example.com",
        "earnedBadgeId": "E1",
    }
    assert request.headers.get("X-CAP-CUSTOMER-IDENTIFIER") == header


# --- auth -----------------------------------------------------------------------------------


def test_basic_header_sends_the_md5_of_the_password():
    header = basic_header(BasicCredentials("store.server", "server123"))
    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    assert decoded == "store.server:8a16a6b70505eb1f1ff7cdc0cd5559a7"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CAP_USERNAME": "u", "CAP_PASSWORD": "p"}, BasicCredentials("u", "p")),
        (
            {"CAP_OAUTH_KEY": "k", "CAP_OAUTH_SECRET": "s", "CAP_USERNAME": "u"},
            OAuthCredentials("k", "s"),
        ),
        ({}, None),
    ],
)
def test_credentials_come_from_the_environment(env, expected):
    assert credentials_from_env(env) == expected


@pytest.mark.parametrize("env", [{"CAP_USERNAME": "u"}, {"CAP_OAUTH_SECRET": "s"}])
def test_half_a_credential_pair_is_an_error(env):
    with pytest.raises(ConfigError, match="is not set"):
        credentials_from_env(env)


def ok_earn(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=EARN_REVOKED)


async def test_basic_auth_header_is_sent(respx_mock):
    route = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(side_effect=ok_earn)
    async with httpx.AsyncClient(base_url=BASE) as http:
        client = CapillaryClient(http, TillAuth(BasicCredentials("store.server", "server123")))
        batch = earn_batch("566135941", "698daf848644c157e72d83f3", IdentifierType.MOBILE)
        await client.send(build_request(batch))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == basic_header(
        BasicCredentials("store.server", "server123")
    )
    assert sent.headers["X-CAP-CUSTOMER-IDENTIFIER"] == "mobile"


def test_each_kind_of_credentials_makes_its_auth():
    http = httpx.AsyncClient(base_url=BASE)
    assert isinstance(auth_for(BasicCredentials("u", "p"), http), TillAuth)
    assert isinstance(auth_for(OAuthCredentials("k", "s"), http), OAuthTokenAuth)


def token_response(token: str, ttl: int = 300) -> httpx.Response:
    return httpx.Response(200, json={"data": {"accessToken": token, "ttlSeconds": ttl}})


async def test_oauth_token_is_generated_once_and_renewed_before_expiry(respx_mock):
    now = [1000.0]
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("t1", 300), token_response("t2", 300)]
    )
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(side_effect=ok_earn)
    async with httpx.AsyncClient(base_url=BASE) as http:
        auth = OAuthTokenAuth(OAuthCredentials("k", "s"), http, clock=lambda: now[0])
        client = CapillaryClient(http, auth)
        await client.send(build_request(earn_batch()))
        now[0] += 200  # still valid
        await client.send(build_request(earn_batch()))
        now[0] += 71  # 271 s in: inside the 30 s margin before the 300 s ttl
        await client.send(build_request(earn_batch()))
    assert tokens.call_count == 2
    assert tokens.calls[0].request.content == b'{"key":"k","secret":"s"}'
    sent = [c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in revoke.calls]
    assert sent == ["t1", "t1", "t2"]


async def test_a_short_lived_token_is_renewed_half_way_not_at_once(respx_mock):
    now = [1000.0]
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("t1", 40), token_response("t2", 40)]
    )
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(side_effect=ok_earn)
    async with httpx.AsyncClient(base_url=BASE) as http:
        auth = OAuthTokenAuth(OAuthCredentials("k", "s"), http, clock=lambda: now[0])
        client = CapillaryClient(http, auth)
        await client.send(build_request(earn_batch()))
        now[0] += 19  # 40 s ttl - 30 s margin = 10 s, but half of 40 s is kept
        await client.send(build_request(earn_batch()))
        now[0] += 1
        await client.send(build_request(earn_batch()))
    assert tokens.call_count == 2
    assert [c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in revoke.calls] == ["t1", "t1", "t2"]


async def test_requests_in_flight_together_share_one_token(respx_mock):
    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return token_response("t1")

    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(side_effect=slow_token)
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(side_effect=ok_earn)
    async with httpx.AsyncClient(base_url=BASE) as http:
        client = CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http))
        answers = await asyncio.gather(
            *(client.send(build_request(earn_batch())) for _ in range(5))
        )
    assert [a.http_status for a in answers] == [200] * 5
    assert tokens.call_count == 1
    assert {c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in revoke.calls} == {"t1"}


async def test_ready_gets_the_token_before_any_request_leaves(respx_mock):
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(return_value=token_response("t1"))
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(side_effect=ok_earn)
    async with httpx.AsyncClient(base_url=BASE) as http:
        client = CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http))
        await client.auth.ready()
        assert (tokens.call_count, revoke.call_count) == (1, 0)
        await client.auth.ready()  # still valid: not generated again
        await client.send(build_request(earn_batch()))
    assert (tokens.call_count, revoke.call_count) == (1, 1)
    assert revoke.calls.last.request.headers["X-CAP-API-OAUTH-TOKEN"] == "t1"


async def test_basic_auth_has_nothing_to_get_ready(respx_mock):
    async with httpx.AsyncClient(base_url=BASE) as http:
        await CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))).auth.ready()
    assert not respx_mock.calls


async def test_oauth_401_renews_the_token_once_and_resends(respx_mock):
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("old"), token_response("new")]
    )
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(
        side_effect=[
            httpx.Response(401, json=envelope_error(401, "expired")),
            httpx.Response(200, json=EARN_REVOKED),
        ]
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        answer = await CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http)).send(
            build_request(earn_batch())
        )
    assert (answer.http_status, answer.sends) == (200, 2)
    assert tokens.call_count == 2
    assert [c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in revoke.calls] == ["old", "new"]
    assert revoke.calls[0].request.content == revoke.calls[1].request.content


async def test_oauth_read_back_renews_after_a_401_too(respx_mock):
    respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("old"), token_response("new")]
    )
    read = respx_mock.get(url__regex=r".*/badges/management/.*").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json={"data": {}})]
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        answer = await CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http)).send(
            read_back_request("7", "B1")
        )
    assert (answer.http_status, answer.sends) == (200, 2)
    assert [c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in read.calls] == ["old", "new"]


async def test_a_401_with_the_new_token_is_the_answer(respx_mock):
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("old"), token_response("new")]
    )
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(
        side_effect=[httpx.Response(401), httpx.Response(401, text="still no")]
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        answer = await CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http)).send(
            build_request(earn_batch())
        )
    assert (answer.http_status, answer.sends, answer.text) == (401, 2, "still no")
    assert (tokens.call_count, revoke.call_count) == (2, 2)


async def test_requests_refused_together_renew_the_token_once(respx_mock):
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("old"), token_response("new"), token_response("newer")]
    )

    async def expired_old(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # all three are out with the old token before one answer
        if request.headers["X-CAP-API-OAUTH-TOKEN"] == "old":
            return httpx.Response(401)
        return httpx.Response(200, json=EARN_REVOKED)

    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(side_effect=expired_old)
    async with httpx.AsyncClient(base_url=BASE) as http:
        client = CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http))
        answers = await asyncio.gather(
            *(client.send(build_request(earn_batch())) for _ in range(3))
        )
    assert [(a.http_status, a.sends) for a in answers] == [(200, 2)] * 3
    assert tokens.call_count == 2
    sent = [c.request.headers["X-CAP-API-OAUTH-TOKEN"] for c in revoke.calls]
    assert sorted(sent) == ["new", "new", "new", "old", "old", "old"]


async def test_basic_401_is_not_resent(respx_mock):
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(return_value=httpx.Response(401))
    async with httpx.AsyncClient(base_url=BASE) as http:
        answer = await CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))).send(
            build_request(earn_batch())
        )
    assert (answer.http_status, answer.sends, revoke.call_count) == (401, 1, 1)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_oauth_key_is_an_auth_error(respx_mock, status):
    respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        return_value=httpx.Response(status, json=envelope_error(status, "no"))
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        with pytest.raises(AuthError) as refused:
            await CapillaryClient(http, auth_for(OAuthCredentials("k", "bad"), http)).send(
                build_request(earn_batch())
            )
    assert refused.value.http_status == status
    assert "the token endpoint refused CAP_OAUTH_KEY" in str(refused.value)
    assert len(respx_mock.calls) == 1  # no revoke request left


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(httpx.ConnectError("refused"), "ConnectError: refused", id="no-answer"),
        pytest.param(httpx.Response(500, text="down"), "down", id="500"),
        pytest.param(httpx.Response(200, json={"data": {}}), '{"data":{}}', id="no-token"),
        pytest.param(
            httpx.Response(200, json={"data": {"accessToken": ""}}),
            '{"data":{"accessToken":""}}',
            id="empty-token",
        ),
    ],
)
async def test_a_token_endpoint_that_does_not_answer_usefully_is_token_unavailable(
    respx_mock, answer, message
):
    respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(side_effect=[answer])
    async with httpx.AsyncClient(base_url=BASE) as http:
        with pytest.raises(TokenUnavailable) as unavailable:
            await CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http)).send(
                build_request(earn_batch())
            )
    assert str(unavailable.value) == f"could not get an OAuth token: {message}"
    assert len(respx_mock.calls) == 1  # no revoke request left


async def test_a_token_unavailable_after_a_401_is_raised_not_resent(respx_mock):
    tokens = respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(
        side_effect=[token_response("old"), httpx.Response(503)]
    )
    revoke = respx_mock.post(f"{BASE}{REVOKE_EARN_PATH}").mock(return_value=httpx.Response(401))
    async with httpx.AsyncClient(base_url=BASE) as http:
        with pytest.raises(TokenUnavailable):
            await CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http)).send(
                build_request(earn_batch())
            )
    assert (tokens.call_count, revoke.call_count) == (2, 1)


async def test_a_token_that_cannot_be_a_header_is_a_request_not_sent(respx_mock):
    respx_mock.post(f"{BASE}{TOKEN_PATH}").mock(return_value=token_response("tøken"))
    async with httpx.AsyncClient(base_url=BASE) as http:
        with pytest.raises(RequestNotSent, match="UnicodeEncodeError"):
            await CapillaryClient(http, auth_for(OAuthCredentials("k", "s"), http)).send(
                build_request(earn_batch())
            )
    assert len(respx_mock.calls) == 1  # the token call only


# --- small parsers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_forms(value, expected):
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "eu.api.capillarytech.com", "http://eu.api.capillarytech.com", "http://10.0.0.1"],
)
def test_base_url_must_be_https_except_loopback(url):
    with pytest.raises(ConfigError):
        check_base_url(url)


@pytest.mark.parametrize(
    "url", ["https://eu.api.capillarytech.com/", "http://127.0.0.1:8765", "http://localhost:1"]
)
def test_good_base_urls(url):
    assert check_base_url(url) == url.rstrip("/")


def test_oauth_wins_when_both_pairs_are_set_and_says_so(caplog):
    import logging

    from batch_revoke.credentials import OAuthCredentials, credentials_from_env

    environ = {
        "CAP_USERNAME": "u",
        "CAP_PASSWORD": "p",
        "CAP_OAUTH_KEY": "k",
        "CAP_OAUTH_SECRET": "oauth-secret-value",
    }
    with caplog.at_level(logging.INFO, logger="batch_revoke"):
        assert credentials_from_env(environ) == OAuthCredentials("k", "oauth-secret-value")
    assert "using OAuth" in caplog.text
    assert "oauth-secret-value" not in caplog.text
