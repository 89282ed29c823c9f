"""The sandbox's revoke and read-back answers, over real HTTP on 127.0.0.1, in the shapes the
vendor documents (../shared/api-docs, whose README names the page of each)."""

from __future__ import annotations

import pytest

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
