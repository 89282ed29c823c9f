"""The sandbox's customer lookup, over real HTTP on 127.0.0.1: the answers of the vendor's
"Get Customer Details" page (../shared/api-docs), from the same customers and identifiers
that revokeEarn's X-CAP-CUSTOMER-IDENTIFIER reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from batch_revoke.client import basic_header
from batch_revoke.sandbox import (
    FaultPlan,
    FaultSpec,
    RateLimitSpec,
    SandboxConfig,
    SandboxState,
    running_sandbox,
)
from batch_revoke.sandbox.server import RunningSandbox

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STATE = ROOT / "samples" / "sandbox-state.json"
# The vendor's path, written out here: neither the client's nor the sandbox's constant.
LOOKUP = "/v2/customers/lookup/customerDetails"


@contextmanager
def api(*faults: str, **settings) -> Iterator[tuple[RunningSandbox, httpx.Client]]:
    config = SandboxConfig(
        state=settings.pop("state", None) or SandboxState.load(SAMPLE_STATE),
        faults=FaultPlan((FaultSpec.parse(f) for f in faults), seed=1),
        **settings,
    )
    with running_sandbox(config) as running:
        headers = {"Authorization": basic_header(running.credentials)}
        with httpx.Client(base_url=running.base_url, headers=headers) as http:
            yield running, http


def lookup(http: httpx.Client, name: str, value: str, source: str = "INSTORE") -> httpx.Response:
    params = {"source": source, "identifierName": name, "identifierValue": value}
    return http.get(LOOKUP, params=params)


@pytest.mark.parametrize(
    ("name", "value", "customer"),
    [
        pytest.param("mobile", "919900000013", 62090013, id="mobile"),
        pytest.param("email", "li.wei@example.com", 387403360, id="email"),
        pytest.param("email", "  Li.Wei@Example.COM ", 387403360, id="email-any-case"),
        pytest.param("externalId", "EXT-566135941", 566135941, id="external-id"),
        pytest.param("cardnumber", "4000123412341234", 62090013, id="card-number"),
        pytest.param("mobile", "919900000777", 777, id="mobile-of-a-leading-zeros-id"),
    ],
)
def test_a_customer_is_found_by_each_identifier(name, value, customer):
    with api() as (_running, http):
        answer = lookup(http, name, value)
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == customer  # a JSON number, at the top level: no data envelope
    assert "data" not in body
    assert body["warnings"] == []
    (profile,) = body["profiles"]
    kinds = {i["type"]: i["value"] for i in profile["identifiers"]}
    assert kinds[name].lower() == value.strip().lower()


def test_the_answer_lists_the_customers_identifiers_by_the_lookups_names():
    with api() as (_running, http):
        body = lookup(http, "mobile", "919900000013").json()
    assert body["profiles"][0]["identifiers"] == [
        {"type": "mobile", "value": "919900000013"},
        {"type": "email", "value": "ana.silva@example.com"},
        {"type": "cardnumber", "value": "4000123412341234"},
    ]


@pytest.mark.parametrize(
    ("name", "value", "source"),
    [
        pytest.param("mobile", "919900000099", "INSTORE", id="unknown-mobile"),
        pytest.param("mobile", "+919900000013", "INSTORE", id="mobile-with-plus"),
        pytest.param("email", "nobody@example.com", "INSTORE", id="unknown-email"),
        pytest.param("mobile", "62090013", "INSTORE", id="a-customer-id-is-no-mobile"),
        pytest.param("wechat", "wx-62090013", "INSTORE", id="wechat"),
        pytest.param("mobile", "919900000013", "MARTJACK", id="not-a-martjack-customer"),
    ],
)
def test_a_customer_not_found_is_816_in_the_body(name, value, source):
    with api() as (_running, http):
        answer = lookup(http, name, value, source)
    # The docs' decision: any status whose body carries 816 is "not found".
    assert answer.status_code == 400
    assert answer.json() == {
        "errors": [
            {"code": 816, "message": "Customer not found for organization", "reference": None}
        ],
        "warnings": [],
    }


def test_source_all_finds_loyalty_customers():
    with api() as (_running, http):
        assert lookup(http, "mobile", "919900000013", "ALL").json()["id"] == 62090013


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        pytest.param(
            {"identifierName": "mobile", "identifierValue": "919900000013"},
            "source is mandatory",
            id="no-source",
        ),
        pytest.param(
            {"source": "POS", "identifierName": "mobile", "identifierValue": "919900000013"},
            "source must be one of INSTORE, MARTJACK, WECHAT, ALL",
            id="unknown-source",
        ),
        pytest.param(
            {"source": "INSTORE", "identifierName": "cardNumber", "identifierValue": "4000"},
            "identifierName must be one of mobile, email, externalId, cardnumber, wechat",
            id="revoke-earns-spelling-of-card-number",
        ),
        pytest.param(
            {"source": "INSTORE", "identifierValue": "919900000013"},
            "identifierName must be one of",
            id="no-identifier-name",
        ),
        pytest.param(
            {"source": "INSTORE", "identifierName": "mobile"},
            "identifierValue is mandatory",
            id="no-identifier-value",
        ),
    ],
)
def test_a_bad_lookup_is_refused_with_400(params, fragment):
    with api() as (_running, http):
        answer = http.get(LOOKUP, params=params)
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["code"] == 400
    assert fragment in error["message"]


def test_a_lookup_needs_authentication_like_every_call():
    with api() as (running, _http):
        params = {"source": "INSTORE", "identifierName": "mobile", "identifierValue": "1"}
        anonymous = httpx.get(f"{running.base_url}{LOOKUP}", params=params)
        assert running.requests == []  # refused at the gate: never reached the API
        token = httpx.post(
            f"{running.base_url}/v3/oauth/token/generate",
            json={"key": "demo-key", "secret": "demo-secret"},
        ).json()["data"]["accessToken"]
        params["identifierValue"] = "919900000013"
        by_token = httpx.get(
            f"{running.base_url}{LOOKUP}", params=params, headers={"X-CAP-API-OAUTH-TOKEN": token}
        )
    assert anonymous.status_code == 401
    assert by_token.json()["id"] == 62090013


def test_the_lookup_and_revoke_earns_identifier_header_name_the_same_customer():
    """What a revokeEarn by mobile revokes belongs to the customer the lookup returns, and
    that customer's id reads the earn back as revoked."""
    badge, earned = "698dae82d30c4f6b3da9dc06", "6659551c304b6e0b517b7bc7"
    with api() as (_running, http):
        customer = lookup(http, "mobile", "919900000013").json()["id"]
        revoked = http.post(
            "/api_gateway/v1/badges/customer/revokeEarn",
            json={"badgeMetaId": badge, "customerId": "919900000013", "earnedBadgeId": earned},
            headers={"X-CAP-CUSTOMER-IDENTIFIER": "mobile"},
        ).json()
        read = http.get(f"/api_gateway/v1/badges/management/{customer}/badge/{badge}").json()
    assert revoked["data"]["customerId"] == customer
    (earn,) = [e for e in read["data"]["earnDetails"]["earns"] if e["earnedBadgeId"] == earned]
    assert earn["isActive"] is False


def test_faults_count_lookups_and_revokes_in_one_sequence():
    with api("503:#1", "drop:#3") as (running, http):
        first = lookup(http, "mobile", "919900000013")
        second = lookup(http, "email", "ana.silva@example.com")
        revoke = {"badgeMetaId": "B", "customerId": "1", "earnedBadgeId": "E"}
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/api_gateway/v1/badges/customer/revokeEarn", json=revoke)
        log = [(e.number, e.path, e.fault and e.fault.value, e.query) for e in running.requests]
        shown = http.get("/_sandbox/requests").json()
    assert first.status_code == 503
    assert second.json()["id"] == 62090013
    query = {"source": "INSTORE", "identifierName": "mobile", "identifierValue": "919900000013"}
    assert log == [
        (1, LOOKUP, "503", query),
        (
            2,
            LOOKUP,
            None,
            {**query, "identifierName": "email", "identifierValue": "ana.silva@example.com"},
        ),
        (3, "/api_gateway/v1/badges/customer/revokeEarn", "drop", {}),
    ]
    assert shown[0]["path"] == LOOKUP
    assert shown[0]["query"] == query
    assert shown[0]["body"] is None


def test_the_lookups_own_answers_461_and_8015_on_demand_and_no_revoke_gets_them():
    earn = {"badgeMetaId": "698dae82d30c4f6b3da9dc06", "customerId": "566135941"}
    earn["earnedBadgeId"] = "698daf848644c157e72d83f3"
    with api("461:#1", "8015:#2", "8015:#3") as (running, http):
        busy = lookup(http, "mobile", "919900000013")
        missing = lookup(http, "mobile", "919900000013")
        revoked = http.post("/api_gateway/v1/badges/customer/revokeEarn", json=earn)
        found = lookup(http, "mobile", "919900000013")
        faults = [e.fault and e.fault.value for e in running.requests]
    assert busy.status_code == 461
    assert busy.json() == {
        "errors": [
            {
                "code": 461,
                "message": "Search Engine is busy, try after some time",
                "reference": None,
            }
        ],
        "warnings": [],
    }
    assert missing.json()["errors"] == [
        {"code": 8015, "message": "Customer not found for the given identifiers", "reference": None}
    ]
    assert revoked.status_code == 200  # call #3 is a revoke: the lookup's answer is not its
    assert found.json()["id"] == 62090013
    assert faults == ["461", "8015", None, None]


@pytest.mark.parametrize("kind", ["apply-drop", "drop"])
def test_a_dropped_lookup_answers_nothing(kind):
    with api(f"{kind}:#1") as (_running, http):
        with pytest.raises(httpx.RemoteProtocolError):
            lookup(http, "mobile", "919900000013")
        assert lookup(http, "mobile", "919900000013").json()["id"] == 62090013


def test_the_rate_limit_counts_lookups():
    rate = RateLimitSpec.parse("3/3600s")
    with api(rate_limit=rate) as (running, http):
        statuses = [lookup(http, "mobile", "919900000013").status_code for _ in range(5)]
        throttled = [e for e in running.requests if e.throttled]
    # 3 calls per window; a window boundary may fall between the calls, never more.
    assert statuses.count(429) in (1, 2), statuses
    assert throttled
    assert throttled[0].path == LOOKUP
    assert throttled[0].query["identifierValue"] == "919900000013"


def test_every_sample_customer_can_be_named_by_mobile_and_email():
    """So a demo file naming customers by mobile or email works against the bundled state."""
    state = SandboxState.load(SAMPLE_STATE)
    with api(state=state) as (_running, http):
        for customer in state.customers.values():
            assert customer.mobile, customer
            assert customer.email, customer
            for name, value in (("mobile", customer.mobile), ("email", customer.email)):
                body = lookup(http, name, value).json()
                assert str(body["id"]) == customer.customerId, (name, value)


def test_the_csv_state_gives_customers_their_identifiers(tmp_path):
    state = SandboxState.load(ROOT / "samples" / "sandbox-state.csv")
    with api(state=state) as (_running, http):
        by_card = lookup(http, "cardnumber", "4000123412341234").json()
        by_email = lookup(http, "email", "ARJUN.RAO@example.com").json()
    assert (by_card["id"], by_email["id"]) == (62090013, 387403362)


def test_a_customer_enrolled_by_issue_bulk_has_no_identifiers_to_look_up():
    with api() as (_running, http):
        http.post(
            "/api_gateway/v1/badges/badgeMeta/customer/issueBulk",
            json={"badgeMetaId": "B9", "customers": ["91000001"], "requestId": "r1"},
        )
        answer = lookup(http, "mobile", "91000001")
    assert answer.json()["errors"][0]["code"] == 816
