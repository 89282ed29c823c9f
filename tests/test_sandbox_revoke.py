"""The sandbox's revoke and read-back answers, over real HTTP on 127.0.0.1, in the shapes the
vendor documents (../shared/api-docs, whose README names the page of each)."""

from __future__ import annotations

import time

import pytest

from batch_revoke.sandbox import SandboxConfig, SandboxState, running_sandbox
from tests.conftest import api_client, sandbox

# The vendor's paths, written out here: neither the client's nor the sandbox's constants.
REVOKE_ISSUE = "/api_gateway/v1/badges/badgeMeta/customer/revokeIssue"
REVOKE_EARN = "/api_gateway/v1/badges/customer/revokeEarn"


def read_back(customer: str, badge: str) -> str:
    return f"/api_gateway/v1/badges/management/{customer}/badge/{badge}"


STREAK = "670371e39235f02fd5d71cbd"  # 387403362 holds 6703724a9235f02fd5d71cc1
EARNED = "698dae82d30c4f6b3da9dc06"  # 62090013 (mobile 919900000013) earned ...7bc7
NO_SUCH_BADGE = "66e3d6335abea9582ae40000"
PASSED_BADGE_NOT_FOUND = {
    "data": None,
    "errors": [{"code": 404, "message": "Passed badge is not found", "reference": None}],
}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param(
            "POST",
            REVOKE_ISSUE,
            {"badgeMetaId": NO_SUCH_BADGE, "customers": ["387403362"]},
            id="revokeIssue-customers",
        ),
        pytest.param(
            "POST",
            REVOKE_ISSUE,
            {
                "badgeMetaId": NO_SUCH_BADGE,
                "revokeIssuals": [
                    {"customerId": "387403362", "issueId": "6703724a9235f02fd5d71cc1"}
                ],
            },
            id="revokeIssue-revokeIssuals",
        ),
        pytest.param(
            "POST",
            REVOKE_EARN,
            {"badgeMetaId": NO_SUCH_BADGE, "customerId": "62090013", "earnedBadgeId": "E"},
            id="revokeEarn",
        ),
        pytest.param("GET", read_back("387403362", NO_SUCH_BADGE), None, id="read-back"),
    ],
)
def test_a_badge_the_org_does_not_have_is_a_whole_request_404(method, path, body):
    with sandbox() as (running, state), api_client(running) as http:
        before = {e.issueId: e.issuedStatus for e in state.enrolments.values()}
        answer = http.request(method, path, json=body)
        after = {e.issueId: e.issuedStatus for e in state.enrolments.values()}
    assert answer.status_code == 404
    assert answer.json()["data"] is None
    assert answer.json()["errors"] == PASSED_BADGE_NOT_FOUND["errors"]
    assert before == after


def test_the_per_entry_404_inside_a_200_stays_for_a_badge_the_org_has():
    body = {"badgeMetaId": STREAK, "customers": ["555567088"]}
    with sandbox() as (running, _state), api_client(running) as http:
        answer = http.post(REVOKE_ISSUE, json=body)
    assert answer.status_code == 200
    (entry,) = answer.json()["data"]["revokedIssuedBadges"]
    assert entry["error"]["code"] == 404
    assert entry["error"]["message"] == "Customer doesn't have issue instance"


def test_revoke_earns_814_comes_with_the_specs_409():
    body = {"badgeMetaId": EARNED, "customerId": "566135941", "earnedBadgeId": "nope"}
    with sandbox() as (running, _state), api_client(running) as http:
        answer = http.post(REVOKE_EARN, json=body)
    assert answer.status_code == 409
    assert answer.json()["errors"][0]["code"] == 814
    assert answer.json()["errors"][0]["message"] == "Active earn instance is not present"


def test_revoked_on_reads_back_as_epoch_seconds_with_a_fraction():
    """The badge details page's example: `1728282201.451`. A state file's ISO date (as the
    sample's earn revoked last week) is served in that form too."""
    issual = {"customerId": "387403362", "issueId": "6703724a9235f02fd5d71cc1"}
    with sandbox() as (running, _state), api_client(running) as http:
        asked = time.time()
        http.post(REVOKE_ISSUE, json={"badgeMetaId": STREAK, "revokeIssuals": [issual]})
        http.post(
            REVOKE_EARN,
            json={
                "badgeMetaId": EARNED,
                "customerId": "919900000013",
                "earnedBadgeId": "6659551c304b6e0b517b7bc7",
            },
            headers={"X-CAP-CUSTOMER-IDENTIFIER": "mobile"},
        )
        issuals = http.get(read_back("387403362", STREAK)).json()["data"]["issualDetails"]
        earns = http.get(read_back("62090013", EARNED)).json()["data"]["earnDetails"]["earns"]
        earlier = http.get(read_back("566135941", EARNED)).json()["data"]["earnDetails"]["earns"]
    (revoked,) = [i for i in issuals["issuals"] if i["issueId"] == issual["issueId"]]
    (earned,) = [e for e in earns if e["earnedBadgeId"] == "6659551c304b6e0b517b7bc7"]
    (last_week,) = [e for e in earlier if e["earnedBadgeId"] == "654cbea06bccde1274b6d3a2"]
    for stamp in (revoked["revokedOn"], earned["revokedOn"]):
        assert isinstance(stamp, float)
        assert abs(stamp - asked) < 60
    assert revoked["issuedStatus"] == "REVOKED"
    # 2026-11-16T10:12:00+00:00 in the sample state
    assert last_week["revokedOn"] == 1794823920.0


EXPIRING = {
    "badges": ["B"],
    "customers": [{"customerId": "41", "mobile": "919900000041"}],
    "enrolments": [
        {"issueId": "I-old", "badgeMetaId": "B", "customerId": "41", "issuedStatus": "EXPIRED"},
        {"issueId": "I-new", "badgeMetaId": "B", "customerId": "41"},
    ],
}


def test_a_state_holds_an_expired_issual_and_no_revoke_touches_it(tmp_path):
    csv_state = tmp_path / "state.csv"
    csv_state.write_text(
        "kind,badgeMetaId,customerId,issueId,issuedStatus\n"
        "enrolment,B,41,I-old,EXPIRED\n"
        "enrolment,B,41,I-new,\n",
        encoding="utf-8",
    )
    for state in (SandboxState.from_dict(EXPIRING), SandboxState.load(csv_state)):
        with running_sandbox(SandboxConfig(state=state)) as running, api_client(running) as http:
            shown = http.get(read_back("41", "B")).json()["data"]["issualDetails"]["issuals"]
            one = http.post(
                REVOKE_ISSUE,
                json={
                    "badgeMetaId": "B",
                    "revokeIssuals": [{"customerId": "41", "issueId": "I-old"}],
                },
            ).json()
            every = http.post(REVOKE_ISSUE, json={"badgeMetaId": "B", "customers": ["41"]}).json()
        assert {i["issueId"]: i["issuedStatus"] for i in shown} == {
            "I-old": "EXPIRED",
            "I-new": "ACTIVE",
        }
        assert one["data"]["revokedIssuedBadges"][0]["error"]["code"] == 404
        assert [e["issuedId"] for e in every["data"]["revokedIssuedBadges"]] == ["I-new"]
        assert state.enrolments["I-old"].issuedStatus == "EXPIRED"
        assert state.enrolments["I-new"].issuedStatus == "REVOKED"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("mobile", "919900000013", id="mobile"),
        pytest.param("email", "Ana.Silva@Example.com", id="email-any-case"),
        pytest.param("cardNumber", "4000123412341234", id="card-number"),
        pytest.param(None, "62090013", id="the-id-itself"),
    ],
)
def test_the_read_back_takes_the_customer_identifier_header_as_revoke_earn_does(header, value):
    headers = {"X-CAP-CUSTOMER-IDENTIFIER": header} if header else {}
    with sandbox() as (running, _state), api_client(running) as http:
        revoked = http.post(
            REVOKE_EARN,
            json={
                "badgeMetaId": EARNED,
                "customerId": value,
                "earnedBadgeId": "6659551c304b6e0b517b7bc7",
            },
            headers=headers,
        )
        answer = http.get(read_back(value, EARNED), headers=headers)
        logged = list(running.read_backs)
    assert revoked.status_code == 200
    data = answer.json()["data"]
    assert data["customerId"] == 62090013
    assert [(e["earnedBadgeId"], e["isActive"]) for e in data["earnDetails"]["earns"]] == [
        ("6659551c304b6e0b517b7bc7", False)
    ]
    (call,) = logged  # the sandbox lists its read-backs, apart from revokes and lookups
    assert call.identifier == header
    assert call.query == {}


def test_a_read_back_with_an_identifier_header_revoke_earn_refuses_is_refused_alike():
    headers = {"X-CAP-CUSTOMER-IDENTIFIER": "wechat"}
    with sandbox() as (running, _state), api_client(running) as http:
        earn = http.post(
            REVOKE_EARN,
            json={"badgeMetaId": EARNED, "customerId": "x", "earnedBadgeId": "E"},
            headers=headers,
        )
        answer = http.get(read_back("x", EARNED), headers=headers)
    assert earn.status_code == answer.status_code == 400
    assert answer.json()["errors"] == earn.json()["errors"]
