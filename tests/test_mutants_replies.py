"""What a user reads of an answer, a lookup or a failure (batch_revoke/answers/replies.py):
the columns of each row's result (its endpoint, HTTP status, attempts, the answer's request
id, the customer id a lookup found) and the key words of its message, which tell a person
what happened and what to do next."""

from __future__ import annotations

import httpx
import pytest

from batch_revoke.answers.replies import (
    RetryableFailure,
    client_failed,
    exhausted,
    failure_of,
    interpret,
    lookup_answer,
    lookup_failure_of,
    lookup_refused,
    lookup_unanswered,
)
from batch_revoke.errors import AuthError
from batch_revoke.model import (
    ApiReply,
    Batch,
    Endpoint,
    ErrorCode,
    IdentifierType,
    LookupAnswer,
    Mode,
    Row,
    Status,
)
from batch_revoke.sender import transport_failure
from tests.conftest import customers_batch, earn_batch, envelope_error, issue_batch

TRACE = "req-7f3a"  # the answer's X-Cap-Requestid, which the vendor's support asks for


def reply(body, status: int = 200, text: str = "", retry_after: float | None = None) -> ApiReply:
    return ApiReply(status, body, text, retry_after, 1, TRACE)


# A revokeIssuals row whose customer was named by mobile and found by its lookup.
RESOLVED = Row(1, "B404", "565261498", "I1", "", IdentifierType.ID, resolved=True)
BADGE_NOT_FOUND = {"data": None, "errors": [{"code": 404, "message": "Passed badge is not found"}]}
NOT_ISSUED = {"code": 404, "message": "Customer doesn't have issue instance"}


# --- a badge the org does not have ---------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "endpoint"),
    [
        pytest.param(
            Batch(1, Mode.ISSUALS, "B404", (RESOLVED,)), Endpoint.REVOKE_ISSUE, id="issue"
        ),
        pytest.param(earn_batch(badge="B404"), Endpoint.REVOKE_EARN, id="earn"),
    ],
)
def test_a_badge_not_found_row_says_where_it_was_sent_and_which_answer_said_so(batch, endpoint):
    (outcome,) = interpret(batch, reply(BADGE_NOT_FOUND, 404), attempts=3)
    assert outcome.endpoint is endpoint
    assert (outcome.http_status, outcome.attempts, outcome.request_id) == (404, 3, TRACE)
    assert outcome.resolved_customer_id == ("565261498" if batch.rows[0].resolved else "")
    assert "a typo, or a badge of another org or cluster" in outcome.error_message
    assert outcome.error_message.endswith("nothing was revoked")


# --- not present after a lost answer: what to check -----------------------------------------


@pytest.mark.parametrize(
    ("batch", "body", "http", "said"),
    [
        pytest.param(
            earn_batch(),
            envelope_error(814, "Active earn instance is not present"),
            409,
            "Active earn instance is not present",
            id="whole-request-814",
        ),
        pytest.param(
            issue_batch(("7", "I1")),
            {"data": {"revokedIssuedBadges": [{"customerId": 7, "error": NOT_ISSUED}]}},
            200,
            "Customer doesn't have issue instance",
            id="entry-404",
        ),
    ],
)
def test_nothing_there_after_a_lost_answer_says_to_check_the_badge_before_sending_again(
    batch, body, http, said
):
    (outcome,) = interpret(batch, reply(body, http), 2, earlier_unknown="ReadTimeout")
    assert outcome.status is Status.UNCONFIRMED
    assert outcome.error_message.startswith(f"{said}, but an earlier attempt's answer was lost")
    assert "(ReadTimeout) and may have revoked it" in outcome.error_message
    assert "check the customer's badge before sending it again" in outcome.error_message


# --- the customer lookup -----------------------------------------------------------------


def test_a_busy_search_engine_keeps_the_answers_status_wait_and_request_id():
    busy = {"errors": [{"code": 461, "message": "Search Engine is busy, try after some time"}]}
    failure = lookup_failure_of(reply(busy, 503, retry_after=7.0))
    assert failure is not None
    assert (failure.code, failure.maybe_applied, failure.did_nothing) == ("461", False, True)
    assert (failure.http_status, failure.retry_after, failure.request_id) == (503, 7.0, TRACE)
    assert str(failure) == "HTTP 503: 461 Search Engine is busy, try after some time"


@pytest.mark.parametrize(
    ("body", "http", "expected"),
    [
        pytest.param(
            {"id": 565261498, "warnings": []},
            200,
            LookupAnswer("565261498", http_status=200, request_id=TRACE),
            id="found",
        ),
        pytest.param(
            envelope_error(400, "source is mandatory"),
            400,
            LookupAnswer("", "400", "source is mandatory", 400, TRACE),
            id="refused",
        ),
        pytest.param(
            None, 404, LookupAnswer("", "http_404", "Not Found", 404, TRACE), id="404-not-json"
        ),
    ],
)
def test_a_lookups_answer_keeps_its_request_id(body, http, expected):
    assert lookup_answer(reply(body, http, text="Not Found" if body is None else "")) == expected


@pytest.mark.parametrize("status", [300, 301, 302])
def test_a_redirect_to_the_lookup_is_no_answer_even_with_an_id(status):
    # Only a 2xx carries the customer: a redirect was never the lookup's answer.
    answer = lookup_answer(reply({"id": 565261498, "warnings": []}, status, text="moved"))
    assert answer == f"HTTP {status}: 'moved'"


def test_a_row_whose_customer_is_not_found_says_which_row_endpoint_and_answer():
    row = Row(9, "B1", "919900099999", "I1", identifier_type=IdentifierType.MOBILE)
    answer = LookupAnswer("", "816", "", 400, TRACE)  # the API said no more than its code
    outcome = lookup_refused(row, answer)
    assert (outcome.row, outcome.endpoint, outcome.request_id) == (9, Endpoint.REVOKE_ISSUE, TRACE)
    assert outcome.error_message == (
        "customer lookup of mobile 919900099999: no customer; nothing was sent"
    )


def test_a_row_whose_lookup_got_no_answer_says_resume_looks_it_up_again():
    row = Row(9, "B1", "a@b.c", identifier_type=IdentifierType.EMAIL)
    outcome = lookup_unanswered(row, "HTTP 500")
    assert (outcome.row, outcome.endpoint) == (9, Endpoint.REVOKE_ISSUE)
    assert outcome.error_message == (
        "customer lookup of email a@b.c got no answer (HTTP 500); nothing was sent, and "
        "batch-revoke retry (or --resume while the run is unfinished) looks it up again"
    )


# --- failures on the way -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "message", "maybe_applied"),
    [
        pytest.param(
            httpx.ConnectError("refused"),
            ErrorCode.CONNECTION_ERROR,
            "ConnectError before sending",
            False,
            id="connect",
        ),
        pytest.param(
            httpx.ReadTimeout(""), ErrorCode.TIMEOUT, "ReadTimeout: no detail", True, id="read"
        ),
        pytest.param(
            httpx.RemoteProtocolError("peer closed"),
            ErrorCode.CONNECTION_ERROR,
            "RemoteProtocolError: peer closed",
            True,
            id="dropped",
        ),
    ],
)
def test_a_transport_failure_says_what_broke_and_whether_it_may_have_applied(
    exc, code, message, maybe_applied
):
    failure = transport_failure(exc)
    assert (failure.code, str(failure), failure.maybe_applied) == (code, message, maybe_applied)


def test_retries_run_out_after_a_lost_answer_unconfirmed_with_the_last_answers_status():
    last = RetryableFailure("http_503", "HTTP 503", False, 503, request_id=TRACE)
    outcomes = exhausted(customers_batch("1", "2"), last, sends=4, lost=["ReadTimeout"])
    assert [(o.row, o.status, o.http_status, o.attempts) for o in outcomes] == [
        (1, Status.UNCONFIRMED, 503, 4),
        (2, Status.UNCONFIRMED, 503, 4),
    ]
    assert outcomes[0].error_message == (
        "no definite answer after 4 attempt(s); last: HTTP 503; "
        "the revocation may or may not have happened"
    )


def test_retries_run_out_with_nothing_carried_out_failed_saying_how_many_attempts():
    last = RetryableFailure("http_503", "HTTP 503", False, 503, request_id=TRACE)
    outcomes = exhausted(customers_batch("1", "2"), last, sends=3, lost=[])
    assert [(o.row, o.status, o.error_code, o.http_status, o.attempts) for o in outcomes] == [
        (1, Status.FAILED, "http_503", 503, 3),
        (2, Status.FAILED, "http_503", 503, 3),
    ]
    assert [o.error_message for o in outcomes] == [
        "gave up after 3 attempt(s), none carried out; last: HTTP 503"
    ] * 2
    assert [(o.issued_ids, o.request_id) for o in outcomes] == [((), TRACE)] * 2


@pytest.mark.parametrize(
    ("lost", "maybe_sent", "status", "message"),
    [
        pytest.param(
            [],
            False,
            Status.FAILED,
            "InvalidURL: too long; nothing was sent",
            id="nothing-sent",
        ),
        pytest.param(
            [],
            True,
            Status.UNCONFIRMED,
            "InvalidURL: too long; the revocation may or may not have happened",
            id="this-attempt-may-have-reached-it",
        ),
        pytest.param(
            ["ReadTimeout", "RemoteProtocolError"],
            False,
            Status.UNCONFIRMED,
            "InvalidURL: too long; an earlier attempt's answer was lost (ReadTimeout; "
            "RemoteProtocolError); the revocation may or may not have happened",
            id="earlier-answers-lost",
        ),
    ],
)
def test_a_failure_on_our_side_says_whether_anything_can_have_reached_the_api(
    lost, maybe_sent, status, message
):
    (outcome,) = client_failed(
        issue_batch(("7", "I1")), "InvalidURL: too long", 2, lost, maybe_sent
    )
    assert (outcome.status, outcome.error_code) == (status, ErrorCode.CLIENT_ERROR)
    assert (outcome.http_status, outcome.attempts, outcome.request_id) == (None, 2, "")
    assert outcome.error_message == message
    assert outcome.issued_ids == ()  # the result lists no enrolment as revoked


LONG = "x" * 200


@pytest.mark.parametrize(
    ("body", "text", "message"),
    [
        pytest.param(
            envelope_error(500, "boom"), "a page", "HTTP 500: 500 boom", id="the-apis-words"
        ),
        pytest.param(envelope_error(500, LONG), "", f"HTTP 500: 500 {'x' * 116}", id="cut-at-120"),
        pytest.param(None, "y" * 80, f"HTTP 500: {'y' * 80}", id="80-characters-whole"),
        pytest.param(None, "y" * 81, f"HTTP 500: {'y' * 79}…", id="81-characters-cut"),
        pytest.param(None, "", "HTTP 500", id="nothing-said"),
    ],
)
def test_a_failing_answer_is_said_in_a_few_words(body, text, message):
    failure = failure_of(reply(body, 500, text=text))
    assert failure is not None
    assert (failure.code, failure.request_id) == ("http_500", TRACE)
    assert str(failure) == message


# --- revoke answers that settle nothing: what the row's message says -------------------------


def earn_reply(**data: object) -> ApiReply:
    return reply({"data": data, "errors": [], "warnings": []})


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        pytest.param(
            earn_reply(earnedBadgeId="E1"),
            ErrorCode.NOT_IN_RESPONSE,
            "the answer has no isActive flag",
            id="no-isActive",
        ),
        pytest.param(
            earn_reply(earnedBadgeId="E2", isActive=False),
            ErrorCode.NOT_IN_RESPONSE,
            "the answer is about earnedBadgeId E2, not this row's",
            id="another-earned-badge",
        ),
        pytest.param(
            earn_reply(earnedBadgeId="E1", isActive=True),
            ErrorCode.BAD_RESPONSE,
            "the API answered without error but reports the earned badge still active",
            id="still-active",
        ),
    ],
)
def test_an_earn_answer_that_settles_nothing_says_why(answer, code, message):
    (outcome,) = interpret(earn_batch("7", "E1"), answer, attempts=2)
    assert (outcome.row, outcome.status, outcome.error_code) == (1, Status.UNCONFIRMED, code)
    assert (outcome.http_status, outcome.attempts, outcome.request_id) == (200, 2, TRACE)
    assert outcome.error_message == message


def entries(*listed: object) -> ApiReply:
    return reply({"data": {"revokedIssuedBadges": list(listed)}, "errors": []}, 201)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        pytest.param(
            customers_batch("7", "8"),
            "the answer does not mention this customer",
            id="customers",
        ),
        pytest.param(
            issue_batch(("7", "I1"), ("8", "I2")),
            "the answer does not mention this customer and issue",
            id="issuals",
        ),
    ],
)
def test_a_row_the_answer_does_not_mention_is_unconfirmed_and_says_so(batch, message):
    # An entry without a customer names no row: it is passed over, not taken for anyone's.
    answer = entries(
        {"customerId": 7, "issuedId": "I1", "error": None}, {"issuedId": "I2", "error": None}
    )
    first, second = interpret(batch, answer, attempts=1)
    assert (first.status, first.issued_ids) == (Status.REVOKED, ("I1",))
    assert (second.status, second.error_code) == (Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE)
    assert second.error_message == message


def test_an_error_entry_with_an_empty_issued_id_is_the_rows_no_entry_named():
    answer = entries(
        {"customerId": 7, "issuedId": "I1", "error": None},
        {"customerId": 7, "issuedId": "", "error": NOT_ISSUED},
    )
    first, second = interpret(issue_batch(("7", "I1"), ("7", "I2")), answer, attempts=1)
    assert (first.status, second.status, second.error_code) == (
        Status.REVOKED,
        Status.FAILED,
        "404",
    )
    assert second.error_message == "Customer doesn't have issue instance"


def test_rows_of_one_customer_told_the_same_404_each_read_it_once():
    answer = entries({"customerId": 7, "error": NOT_ISSUED}, {"customerId": 7, "error": NOT_ISSUED})
    outcomes = interpret(issue_batch(("7", "I1"), ("7", "I2")), answer, attempts=1)
    assert [(o.status, o.error_code, o.error_message) for o in outcomes] == [
        (Status.FAILED, "404", "Customer doesn't have issue instance")
    ] * 2


def test_every_error_the_answer_gives_a_rows_customer_is_in_its_message():
    answer = entries(
        {"customerId": 7, "error": NOT_ISSUED},
        {"customerId": 7, "error": {"code": 500, "message": "boom"}},
    )
    (outcome,) = interpret(issue_batch(("7", "I1")), answer, attempts=1)
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "404")
    assert outcome.error_message == "404: Customer doesn't have issue instance; 500: boom"


def test_errors_that_cannot_be_told_apart_name_the_rows_they_may_be_about():
    answer = entries({"customerId": 7, "error": NOT_ISSUED})
    batch = Batch(1, Mode.ISSUALS, "B1", (Row(4, "B1", "7", "I1"), Row(9, "B1", "7", "I2")))
    outcomes = interpret(batch, answer, attempts=1)
    assert [(o.row, o.status, o.error_code) for o in outcomes] == [
        (4, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE),
        (9, Status.UNCONFIRMED, ErrorCode.NOT_IN_RESPONSE),
    ]
    assert outcomes[1].error_message == (
        "the answer has 1 error(s) for this customer that name no issue, for 2 of its rows "
        "(rows 4, 9): which row each is about cannot be told"
    )


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        pytest.param("boom", "api_error", "boom", id="not-an-object"),
        pytest.param({"code": 500}, "500", "", id="no-message"),
        pytest.param(
            {"code": "", "message": "Issue doesn't BELONG to customer"},
            ErrorCode.ISSUE_NOT_OF_CUSTOMER,
            "Issue doesn't BELONG to customer",
            id="empty-code-not-of-customer",
        ),
        pytest.param(
            {"message": "something else went wrong"},
            "api_error",
            "something else went wrong",
            id="no-code",
        ),
    ],
)
def test_an_entrys_error_keeps_the_apis_code_or_gets_a_stable_one(error, code, message):
    answer = entries({"customerId": 7, "issuedId": "I1", "error": error})
    (outcome,) = interpret(issue_batch(("7", "I1")), answer, attempts=1)
    assert (outcome.status, outcome.error_code, outcome.error_message) == (
        Status.FAILED,
        code,
        message,
    )


def test_an_entry_saying_the_badge_is_not_found_is_that_failure():
    error = {"code": 1054, "message": "GLOBAL.BADGE_NOT_FOUND"}
    answer = entries({"customerId": 7, "error": error})
    (outcome,) = interpret(issue_batch(("7", "I1"), badge="B404"), answer, attempts=1)
    assert (outcome.status, outcome.error_code) == (Status.FAILED, ErrorCode.BADGE_NOT_FOUND)
    assert outcome.error_message.startswith(
        "the API has no badge B404 in this org (1054 GLOBAL.BADGE_NOT_FOUND): check the badgeMetaId"
    )


def test_a_revoked_row_has_no_message_and_a_doubted_404_keeps_the_apis_words():
    answer = entries(
        {"customerId": 7, "issuedId": "I1", "error": None}, {"customerId": 8, "error": NOT_ISSUED}
    )
    revoked, doubted = interpret(
        issue_batch(("7", "I1"), ("8", "I2")), answer, 2, earlier_unknown="ReadTimeout"
    )
    assert (revoked.status, revoked.error_message) == (Status.REVOKED, "")
    assert doubted.status is Status.UNCONFIRMED
    assert doubted.error_message.startswith("Customer doesn't have issue instance, but ")
    assert doubted.error_code == "404"  # the API's code, as a row not doubted keeps it


# --- whole-request answers: what every row's message says ------------------------------------


@pytest.mark.parametrize(
    ("answer", "status", "code", "message"),
    [
        pytest.param(
            reply({"data": {"badgeMetaId": "B1"}, "errors": []}),
            Status.UNCONFIRMED,
            ErrorCode.NOT_IN_RESPONSE,
            "the answer has no revokedIssuedBadges list",
            id="no-entries",
        ),
        pytest.param(
            reply(None, 302, text="<html>moved</html>"),
            Status.UNCONFIRMED,
            ErrorCode.BAD_RESPONSE,
            "HTTP 302 with a body that is not JSON: '<html>moved</html>'",
            id="redirect-not-json",
        ),
        pytest.param(
            reply({"data": {"revokedIssuedBadges": []}}, 400, text="Bad Request"),
            Status.FAILED,
            "http_400",
            "Bad Request",
            id="400-without-errors",
        ),
        pytest.param(
            reply(envelope_error(1051, "RevokeIssuals or CustomerId is mandatory"), 400),
            Status.FAILED,
            "1051",
            "RevokeIssuals or CustomerId is mandatory",
            id="one-error",
        ),
        pytest.param(
            reply(
                {
                    "data": None,
                    "errors": [
                        {"code": 715, "message": "badge meta id is mandatory"},
                        {"code": 1051, "message": "RevokeIssuals or CustomerId is mandatory"},
                    ],
                },
                400,
            ),
            Status.FAILED,
            "715",
            "715: badge meta id is mandatory; 1051: RevokeIssuals or CustomerId is mandatory",
            id="every-error",
        ),
    ],
)
def test_what_a_whole_request_answer_tells_every_row(answer, status, code, message):
    outcomes = interpret(customers_batch("7", "8"), answer, attempts=1)
    assert [(o.status, o.error_code, o.error_message) for o in outcomes] == [
        (status, code, message)
    ] * 2
    assert [o.endpoint for o in outcomes] == [Endpoint.REVOKE_ISSUE] * 2


@pytest.mark.parametrize(
    ("status", "text", "said"),
    [
        pytest.param(401, "", "HTTP 401 authentication failed; check CAP_USERNAME", id="401"),
        pytest.param(403, "", "HTTP 403 not permitted; the credentials lack", id="403"),
        pytest.param(401, "token expired", "HTTP 401 token expired; check", id="401-said"),
    ],
)
def test_credentials_refused_stop_the_run_saying_what_the_api_said(status, text, said):
    with pytest.raises(AuthError) as refused:
        failure_of(reply(None, status, text=text))
    assert str(refused.value).startswith(said)


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        # A 404 status, but the API's code is another refusal: not "no such badge".
        pytest.param(
            reply(envelope_error(715, "badge meta id is mandatory"), 404),
            Status.FAILED,
            "715",
            id="404-with-another-code",
        ),
        # The code 404 without the status: a refusal of its own, not "no such badge".
        pytest.param(
            reply(envelope_error(404, "no such route"), 400), Status.FAILED, "404", id="code-404"
        ),
        # Entries came back: they say what was revoked, whatever else the envelope says.
        pytest.param(
            reply(
                {
                    "data": {"revokedIssuedBadges": [{"customerId": 7, "issuedId": "I7"}]},
                    "errors": [{"code": 1054, "message": "GLOBAL.BADGE_NOT_FOUND"}],
                }
            ),
            Status.REVOKED,
            "",
            id="entries-beside-1054",
        ),
    ],
)
def test_only_a_refusal_of_the_whole_request_says_the_badge_is_not_found(answer, status, code):
    (outcome,) = interpret(customers_batch("7"), answer, attempts=1)
    assert (outcome.status, outcome.error_code) == (status, code)


def test_a_2xx_whose_body_is_not_json_is_retried_as_maybe_applied():
    failure = failure_of(reply(None, 200, text="<html>ok</html>"))
    assert failure is not None
    assert (failure.code, failure.maybe_applied, failure.did_nothing) == (
        ErrorCode.BAD_RESPONSE,
        True,
        False,
    )
    assert (failure.http_status, failure.request_id) == (200, TRACE)
    assert str(failure) == "HTTP 200 with a body that is not JSON: '<html>ok</html>'"


@pytest.mark.parametrize("status", [300, 302])
def test_a_redirect_whose_body_is_not_json_is_a_final_answer_not_a_retry(status):
    # Not retried: interpret leaves its rows unconfirmed (read back), as any 3xx.
    assert failure_of(reply(None, status, text="moved")) is None


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_throttled_or_failing_answer_keeps_its_retry_after_for_the_wait(status):
    failure = failure_of(reply(None, status, retry_after=7.0))
    assert failure is not None
    assert (failure.http_status, failure.retry_after, failure.request_id) == (status, 7.0, TRACE)
