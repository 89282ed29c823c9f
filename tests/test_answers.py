"""What an answer means for a row (batch_revoke/answers.py): what every response example of
the two API pages means for each row, and the cases where a wrong reading would silently
report a badge revoked that is not."""

from __future__ import annotations

import pytest

from batch_revoke.answers.replies import (
    failure_of,
    interpret,
    lookup_answer,
    lookup_failure_of,
    lookup_refused,
    lookup_unanswered,
)
from batch_revoke.codes import explain
from batch_revoke.model import (
    ApiReply,
    Endpoint,
    ErrorCode,
    IdentifierType,
    LookupAnswer,
    Row,
    Status,
)
from tests.conftest import EARN_REVOKED, customers_batch, earn_batch, envelope_error, issue_batch


def reply(body, status: int = 200) -> ApiReply:
    return ApiReply(status, body, "", None, 1)


# --- the pages' response examples, verbatim -------------------------------------------------

SINGLE_CUSTOMER = {
    "data": {
        "badgeMetaId": "653de84db3cda7078c7c68ed",
        "revokedIssuedBadges": [
            {"customerId": 62090013, "issuedId": "653e024bb3cda7078c7c6903", "error": None}
        ],
        "requestId": None,
    },
    "errors": [],
    "warnings": [],
}
MULTIPLE_CUSTOMERS = {
    "data": {
        "badgeMetaId": "654bb48766a87827bb61e631",
        "revokedIssuedBadges": [
            {"customerId": 123, "issuedId": "654cc02b6bccde1274b6d3a7", "error": None},
            {"customerId": 62090013, "issuedId": "654cc03e6bccde1274b6d3a9", "error": None},
        ],
        "requestId": None,
    },
    "errors": [],
    "warnings": [],
}
WITH_REVOKE_ISSUALS = {
    "data": {
        "badgeMetaId": "66e3ef1b5abea9582ae4f301",
        "revokedIssuedBadges": [{"customerId": 12323, "issuedId": "66e3ef1e5abea9582ae4f302"}],
    },
    "errors": [],
    "warnings": [],
}
NOT_ISSUED = {
    "data": {
        "badgeMetaId": "670371e39235f02fd5d71cbd",
        "revokedIssuedBadges": [
            {
                "customerId": 555567088,
                "error": {
                    "code": 404,
                    "message": "Customer doesn't have issue instance",
                    "reference": None,
                },
            }
        ],
        "requestId": None,
    },
    "errors": [],
    "warnings": [],
}
NOT_CUSTOMERS_ISSUE = {
    "data": {
        "badgeMetaId": "66e3d6335abea9582ae4f264",
        "revokedIssuedBadges": [
            {
                "customerId": 12323,
                "issuedId": "66e3ef1e5abea9582ae4f302",
                "error": {"message": "issue doesn't belong to customer", "reference": None},
            }
        ],
        "requestId": None,
    },
    "errors": [],
    "warnings": [],
}
# revokeIssue's OpenAPI responses (revokeEarn's likewise): the whole request, HTTP 404.
BADGE_NOT_FOUND = {
    "data": None,
    "errors": [{"code": 404, "message": "Passed badge is not found"}],
}
MANDATORY_1051 = {
    "data": None,
    "errors": [
        {"code": 1051, "message": "RevokeIssuals or CustomerId is mandatory", "reference": None}
    ],
    "warnings": None,
}


@pytest.mark.parametrize(
    ("batch", "body", "http", "expected"),
    [
        pytest.param(
            customers_batch("62090013"),
            SINGLE_CUSTOMER,
            200,
            [(Status.REVOKED, "", ("653e024bb3cda7078c7c6903",))],
            id="single-customer",
        ),
        pytest.param(
            customers_batch("62090013", "123"),  # the answer's order differs from ours
            MULTIPLE_CUSTOMERS,
            200,
            [
                (Status.REVOKED, "", ("654cc03e6bccde1274b6d3a9",)),
                (Status.REVOKED, "", ("654cc02b6bccde1274b6d3a7",)),
            ],
            id="multiple-customers-any-order",
        ),
        pytest.param(
            issue_batch(("12323", "66e3ef1e5abea9582ae4f302")),
            WITH_REVOKE_ISSUALS,
            200,
            [(Status.REVOKED, "", ("66e3ef1e5abea9582ae4f302",))],
            id="with-revoke-issuals",
        ),
        pytest.param(
            issue_batch(("555567088", "670371e39235f02fd5d71cc0")),
            NOT_ISSUED,
            200,
            [(Status.FAILED, "404", ())],
            id="customer-not-issued",
        ),
        pytest.param(
            issue_batch(("12323", "66e3ef1e5abea9582ae4f302")),
            NOT_CUSTOMERS_ISSUE,
            200,
            [(Status.FAILED, "issue_not_of_customer", ())],
            id="issue-not-of-customer",
        ),
        pytest.param(
            customers_batch("1", "2"),
            MANDATORY_1051,
            400,
            [(Status.FAILED, "1051", ()), (Status.FAILED, "1051", ())],
            id="whole-request-1051",
        ),
        pytest.param(
            customers_batch("1"),
            MANDATORY_1051,
            200,
            [(Status.FAILED, "1051", ())],
            id="whole-request-error-inside-200",
        ),
        pytest.param(
            customers_batch("1"),
            envelope_error(715, "Badge meta id is mandatory"),
            400,
            [(Status.FAILED, "715", ())],
            id="whole-request-715",
        ),
        pytest.param(
            earn_batch("566135941", "698daf848644c157e72d83f3"),
            EARN_REVOKED,
            200,
            [(Status.REVOKED, "", ("698daf848644c157e72d83f3",))],
            id="earn-revoked",
        ),
        pytest.param(
            earn_batch(),
            envelope_error(814, "Active earn instance is not present"),
            400,
            [(Status.FAILED, "814", ())],
            id="earn-814",
        ),
        pytest.param(
            earn_batch(),
            envelope_error(814, "Active earn instance is not present"),
            409,
            [(Status.FAILED, "814", ())],
            id="earn-814-409",  # the OpenAPI spec's status
        ),
        pytest.param(
            earn_batch(),
            envelope_error(813, "EarnId is mandatory"),
            400,
            [(Status.FAILED, "813", ())],
            id="earn-813",
        ),
        pytest.param(
            customers_batch("1", "2"),
            BADGE_NOT_FOUND,
            404,
            [(Status.FAILED, "badge_not_found", ()), (Status.FAILED, "badge_not_found", ())],
            id="customers-badge-not-found",
        ),
        pytest.param(
            issue_batch(("1", "I1")),
            BADGE_NOT_FOUND,
            404,
            [(Status.FAILED, "badge_not_found", ())],
            id="issuals-badge-not-found",
        ),
        pytest.param(
            earn_batch(),
            BADGE_NOT_FOUND,
            404,
            [(Status.FAILED, "badge_not_found", ())],
            id="earn-badge-not-found",
        ),
        pytest.param(
            customers_batch("1"),
            envelope_error(1054, "GLOBAL.BADGE_NOT_FOUND"),
            400,
            [(Status.FAILED, "badge_not_found", ())],
            id="badge-not-found-1054",
        ),
        pytest.param(
            customers_batch("62090013", "777"),
            SINGLE_CUSTOMER,
            200,
            [
                (Status.REVOKED, "", ("653e024bb3cda7078c7c6903",)),
                (Status.UNCONFIRMED, "not_in_response", ()),
            ],
            id="row-missing-from-answer",
        ),
        pytest.param(
            customers_batch("1"),
            {"oops": True},
            200,
            [(Status.UNCONFIRMED, "not_in_response", ())],
            id="answer-without-entries",
        ),
        pytest.param(
            customers_batch("1"),
            "not an object",
            404,
            [(Status.FAILED, "http_404", ())],
            id="plain-404",
        ),
    ],
)
def test_interpret_matches_outcomes_to_rows(batch, body, http, expected):
    outcomes = interpret(batch, reply(body, http), attempts=1)
    assert [(o.status, o.error_code, o.issued_ids) for o in outcomes] == expected
    assert [o.row for o in outcomes] == [r.row for r in batch.rows]
    assert all(o.http_status == http and o.attempts == 1 for o in outcomes)


def test_customers_mode_lists_every_revoked_enrolment():
    body = {
        "data": {
            "revokedIssuedBadges": [
                {"customerId": 777, "issuedId": "I2", "error": None},
                {"customerId": 62090013, "issuedId": "I9", "error": None},
                {"customerId": 777, "issuedId": "I1", "error": None},
            ]
        },
        "errors": [],
    }
    first, second = interpret(customers_batch("000777", "62090013"), reply(body), 1)
    assert (first.status, first.issued_ids) == (Status.REVOKED, ("I1", "I2"))
    assert (second.status, second.issued_ids) == (Status.REVOKED, ("I9",))


def test_partly_revoked_customer_is_failed_but_keeps_the_revoked_ids():
    body = {
        "data": {
            "revokedIssuedBadges": [
                {"customerId": 5, "issuedId": "I1", "error": None},
                {"customerId": 5, "error": {"code": 500, "message": "boom"}},
            ]
        }
    }
    (outcome,) = interpret(customers_batch("5"), reply(body), 1)
    assert (outcome.status, outcome.error_code, outcome.issued_ids) == (
        Status.FAILED,
        "500",
        ("I1",),
    )
    assert outcome.error_message.startswith("1 enrolment(s) revoked, but boom")


def test_issue_entries_are_matched_by_issue_id_too():
    body = {
        "data": {"revokedIssuedBadges": [{"customerId": 5, "issuedId": "OTHER", "error": None}]}
    }
    (outcome,) = interpret(issue_batch(("5", "MINE")), reply(body), 1)
    assert outcome.status is Status.UNCONFIRMED


@pytest.mark.parametrize(
    ("batch", "body", "http"),
    [
        pytest.param(issue_batch(("555567088", "I1")), NOT_ISSUED, 200, id="404-entry"),
        pytest.param(
            earn_batch(), envelope_error(814, "Active earn instance is not present"), 400, id="814"
        ),
        pytest.param(
            earn_batch(),
            envelope_error(814, "Active earn instance is not present"),
            409,
            id="814-409",
        ),
    ],
)
def test_not_present_after_a_lost_answer_is_unconfirmed(batch, body, http):
    # An earlier attempt may have revoked it and lost the answer: not a failure we saw.
    (outcome,) = interpret(batch, reply(body, http), 2, earlier_unknown="ReadTimeout")
    assert outcome.status is Status.UNCONFIRMED
    assert "earlier attempt" in outcome.error_message
    assert outcome.attempts == 2


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(customers_batch("1", badge="B404"), id="customers"),
        pytest.param(issue_batch(("1", "I1"), badge="B404"), id="issuals"),
        pytest.param(earn_batch(badge="B404"), id="earn"),
    ],
)
@pytest.mark.parametrize("lost", ["", "ReadTimeout"], ids=["first-answer", "after-a-lost-answer"])
def test_a_badge_the_org_does_not_have_is_never_taken_for_already_revoked(batch, lost):
    # Nothing of a badge that does not exist can have been revoked, by us or anyone: not the
    # advice for "no active enrolment", and not "maybe our lost attempt did it".
    (outcome,) = interpret(batch, reply(BADGE_NOT_FOUND, 404), 2, earlier_unknown=lost)
    assert (outcome.status, outcome.error_code) == (Status.FAILED, ErrorCode.BADGE_NOT_FOUND)
    assert "B404" in outcome.error_message
    assert "check the badgeMetaId" in outcome.error_message
    assert "Passed badge is not found" in outcome.error_message
    assert "earlier attempt" not in outcome.error_message
    assert outcome.final


def test_the_404_entry_inside_a_200_is_still_not_issued():
    # Same code, other meaning: one customer has no enrolment, the badge exists.
    (outcome,) = interpret(issue_batch(("555567088", "I1")), reply(NOT_ISSUED, 200), 1)
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "404")


def test_814_with_the_specs_409_is_a_final_answer_like_any_4xx():
    assert (
        failure_of(reply(envelope_error(814, "Active earn instance is not present"), 409)) is None
    )


def test_earn_still_active_is_not_claimed_revoked():
    body = {"data": {**EARN_REVOKED["data"], "isActive": True}, "errors": []}
    (outcome,) = interpret(earn_batch("566135941", "698daf848644c157e72d83f3"), reply(body), 1)
    assert outcome.status is Status.UNCONFIRMED


def not_issued(customer: int) -> dict:
    return {"customerId": customer, "error": {"code": 404, "message": "no issue instance"}}


@pytest.mark.parametrize(
    ("rows", "entries", "expected"),
    [
        pytest.param(
            [("7", "I1"), ("7", "I2")],
            [{"customerId": 7, "issuedId": "I1", "error": None}, not_issued(7)],
            [(Status.REVOKED, ""), (Status.FAILED, "404")],
            id="the-404-is-the-row-no-entry-named",
        ),
        pytest.param(
            [("7", "I1"), ("7", "I2"), ("7", "I3")],
            [not_issued(7), {"customerId": 7, "issuedId": "I2", "error": None}, not_issued(7)],
            [(Status.FAILED, "404"), (Status.REVOKED, ""), (Status.FAILED, "404")],
            id="one-404-each",
        ),
        pytest.param(
            [("7", "I1"), ("7", "I2"), ("8", "I3")],
            [not_issued(7), {"customerId": 8, "issuedId": "I3", "error": None}],
            [
                (Status.UNCONFIRMED, "not_in_response"),
                (Status.UNCONFIRMED, "not_in_response"),
                (Status.REVOKED, ""),
            ],
            id="cannot-tell-which",
        ),
    ],
)
def test_rows_of_one_customer_share_a_request_and_each_gets_its_own_answer(rows, entries, expected):
    body = {"data": {"badgeMetaId": "B1", "revokedIssuedBadges": entries}, "errors": []}
    outcomes = interpret(issue_batch(*rows), reply(body, 201), 1)
    assert [(o.status, o.error_code) for o in outcomes] == expected
    if expected[0][0] is Status.UNCONFIRMED:
        assert "cannot be told" in outcomes[0].error_message


# --- revokeEarn's isActive, ids echoed as numbers ---------------------------------------

EARNED = "698daf848644c157e72d83f3"
MISSING = object()


def earn_answer(is_active: object) -> ApiReply:
    data: dict[str, object] = {
        "badgeMetaId": "698dae82d30c4f6b3da9dc06",
        "customerId": 566135941,
        "earnedBadgeId": EARNED,
    }
    if is_active is not MISSING:
        data["isActive"] = is_active
    return ApiReply(200, {"data": data, "errors": [], "warnings": []}, "", None, 1)


@pytest.mark.parametrize(
    ("is_active", "status", "code"),
    [
        pytest.param(False, Status.REVOKED, "", id="false-is-revoked"),
        pytest.param(True, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="true"),
        pytest.param("false", Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="text-false"),
        pytest.param("False", Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="text-False"),
        pytest.param(0, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="zero"),
        pytest.param("", Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="empty-text"),
        pytest.param(None, Status.UNCONFIRMED, ErrorCode.BAD_RESPONSE, id="null"),
        pytest.param(MISSING, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE, id="missing"),
    ],
)
def test_an_earn_is_revoked_only_on_a_definite_false(is_active, status, code):
    (outcome,) = interpret(earn_batch("566135941", EARNED), earn_answer(is_active), attempts=1)
    assert (outcome.status, outcome.error_code) == (status, code)
    if status is Status.REVOKED:
        assert outcome.issued_ids == (EARNED,)


def issue_answer(*entries: dict[str, object]) -> ApiReply:
    body = {"data": {"revokedIssuedBadges": list(entries)}, "errors": [], "warnings": []}
    return ApiReply(200, body, "", None, 1)


def test_a_customer_echoed_with_the_zeros_it_was_sent_with_is_matched():
    # Ids are sent as text, zeros kept: the API may echo them back as sent, or as a number.
    batch = customers_batch("000777", "62090013")
    answer = issue_answer(
        {"customerId": "000777", "issuedId": "I1", "error": None},
        {"customerId": 62090013, "issuedId": "I9", "error": None},
    )
    first, second = interpret(batch, answer, attempts=1)
    assert (first.status, first.issued_ids) == (Status.REVOKED, ("I1",))
    assert (second.status, second.issued_ids) == (Status.REVOKED, ("I9",))


def test_an_issue_id_echoed_as_a_number_is_matched_to_its_row():
    batch = issue_batch(("5", "0042"), ("5", "0043"))
    answer = issue_answer(
        {"customerId": 5, "issuedId": 43, "error": None},
        {"customerId": 5, "issuedId": 42, "error": None},
    )
    first, second = interpret(batch, answer, attempts=1)
    assert (first.status, first.issued_ids) == (Status.REVOKED, ("42",))
    assert (second.status, second.issued_ids) == (Status.REVOKED, ("43",))


def test_an_earned_badge_id_echoed_as_a_number_is_this_rows():
    body = {"data": {"earnedBadgeId": 123, "isActive": False}, "errors": []}
    (outcome,) = interpret(earn_batch("5", "000123"), ApiReply(200, body, "", None, 1), 1)
    assert (outcome.status, outcome.issued_ids) == (Status.REVOKED, ("123",))


# --- the customer lookup ----------------------------------------------------------------------

NOT_FOUND = {
    "errors": [{"code": 816, "message": "Customer not found for organization", "reference": None}],
    "warnings": [],
}
NOT_FOUND_8015 = {
    "errors": [
        {"code": 8015, "message": "Customer not found for the given identifiers", "reference": None}
    ],
    "warnings": [],
}
BUSY = {
    "errors": [{"code": 461, "message": "Search Engine is busy, try after some time"}],
    "warnings": [],
}
FOUND = {
    "id": 565261498,
    "profiles": [{"identifiers": [{"type": "mobile", "value": "919900000013"}]}],
    "warnings": [],
}


@pytest.mark.parametrize(
    ("body", "http", "expected"),
    [
        pytest.param(FOUND, 200, LookupAnswer("565261498", http_status=200), id="found"),
        pytest.param(
            {**FOUND, "id": "000777"}, 200, LookupAnswer("777", http_status=200), id="id-as-text"
        ),
        pytest.param(
            NOT_FOUND,
            400,
            LookupAnswer("", "816", "Customer not found for organization", 400),
            id="not-found-400",
        ),
        # The status of "not found" is not documented: the 816 in the body decides.
        pytest.param(
            NOT_FOUND,
            200,
            LookupAnswer("", "816", "Customer not found for organization", 200),
            id="not-found-200",
        ),
        pytest.param(
            {"errors": [{"code": 618, "message": "customer is marked as fraud"}]},
            400,
            LookupAnswer("", "618", "customer is marked as fraud", 400),
            id="fraud",
        ),
        pytest.param(
            {"errors": [{"code": 400, "message": "source is mandatory"}]},
            400,
            LookupAnswer("", "400", "source is mandatory", 400),
            id="refused",
        ),
        pytest.param(None, 404, LookupAnswer("", "http_404", "", 404), id="404-not-json"),
        # The Get Customer Details page's own "not found": like 816, whatever the status.
        pytest.param(
            NOT_FOUND_8015,
            404,
            LookupAnswer("", "8015", "Customer not found for the given identifiers", 404),
            id="not-found-8015",
        ),
        pytest.param(
            {"errors": [{"code": 400, "message": "profile"}, *NOT_FOUND_8015["errors"]]},
            400,
            LookupAnswer("", "8015", "Customer not found for the given identifiers", 400),
            id="8015-after-another-error",
        ),
        # A customer marked as fraud is never one to revoke, even when its id comes along.
        pytest.param(
            {**FOUND, "warnings": [{"code": 618, "message": "customer is marked as fraud"}]},
            200,
            LookupAnswer("", "618", "customer is marked as fraud", 200),
            id="fraud-warned-alongside-an-id",
        ),
        pytest.param(
            {**FOUND, "errors": [{"code": 618, "message": "customer is marked as fraud"}]},
            200,
            LookupAnswer("", "618", "customer is marked as fraud", 200),
            id="fraud-alongside-an-id",
        ),
        pytest.param({"profiles": []}, 200, "without a customer id", id="no-id"),
        pytest.param({**FOUND, "id": True}, 200, "without a customer id", id="id-not-a-number"),
        pytest.param({**FOUND, "id": "12ab"}, 200, "without a customer id", id="id-not-digits"),
        pytest.param({**FOUND, "id": None}, 200, "without a customer id", id="id-null"),
    ],
)
def test_what_a_lookup_answer_means(body, http, expected):
    answer = lookup_answer(reply(body, http))
    if isinstance(expected, str):  # no answer: the lookup counts as unanswered
        assert isinstance(answer, str)
        assert expected in answer
    else:
        assert answer == expected


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 521])
def test_a_lookup_throttled_or_failing_is_retried_like_any_call(status):
    assert lookup_failure_of(reply(None, status)) is not None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(BUSY, 461, id="461-in-both"),
        pytest.param(None, 461, id="http-461"),
        pytest.param(BUSY, 200, id="461-in-a-200"),
        pytest.param(BUSY, 400, id="461-in-a-400"),
        pytest.param(BUSY, 500, id="461-in-a-500"),
    ],
)
def test_a_busy_search_engine_did_nothing_and_is_retried_like_a_503(body, status):
    failure = lookup_failure_of(reply(body, status))
    assert failure is not None
    assert not failure.maybe_applied
    assert failure.did_nothing  # like 503: never uses up --max-attempts
    assert failure.did_nothing == lookup_failure_of(reply(None, 503)).did_nothing


@pytest.mark.parametrize("status", [200, 400, 404, 429, 461, 500, 503])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(NOT_FOUND, id="816"),
        pytest.param(NOT_FOUND_8015, id="8015"),
        pytest.param({"errors": [{"code": 618, "message": "fraud"}]}, id="618"),
        pytest.param({**FOUND, "warnings": [{"code": 618, "message": "fraud"}]}, id="618-id"),
    ],
)
def test_a_body_carrying_816_8015_or_618_is_that_answer_whatever_the_status(body, status):
    assert lookup_failure_of(reply(body, status)) is None  # final: not retried
    answer = lookup_answer(reply(body, status))
    assert isinstance(answer, LookupAnswer)
    assert answer.customer_id == ""
    assert answer.code == str(body.get("errors", body.get("warnings"))[0]["code"])


def test_8015_is_explained_like_816():
    assert explain("8015").meaning == explain("816").meaning
    assert explain("8015").todo == explain("816").todo
    assert explain("8015").statuses == (Status.FAILED,)


def test_a_row_whose_customer_is_not_found_fails_with_the_apis_code_and_nothing_sent():
    row = Row(4, "B1", "919900099999", identifier_type=IdentifierType.MOBILE)
    answer = lookup_answer(reply(NOT_FOUND, 400))
    assert isinstance(answer, LookupAnswer)
    outcome = lookup_refused(row, answer)
    assert (outcome.status, outcome.error_code, outcome.http_status) == (
        Status.FAILED,
        "816",
        400,
    )
    assert outcome.final
    assert "nothing was sent" in outcome.error_message
    assert "mobile 919900099999" in outcome.error_message


def test_a_row_whose_lookup_got_no_answer_is_not_attempted_and_resumable():
    row = Row(4, "B1", "a@b.c", "I1", identifier_type=IdentifierType.EMAIL)
    outcome = lookup_unanswered(row, "customer lookup failed: HTTP 500")
    assert (outcome.status, outcome.error_code) == (Status.NOT_ATTEMPTED, ErrorCode.LOOKUP_FAILED)
    assert not outcome.final  # --resume looks it up again
    assert outcome.endpoint is Endpoint.REVOKE_ISSUE
