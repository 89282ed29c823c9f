"""Read-back verification: the pure settlement, and the read-back call through respx."""

from __future__ import annotations

import time

import httpx
import pytest

from batch_revoke.answers.readbacks import CLOCK_SLACK, InDoubt, read_back_verdict
from batch_revoke.client import (
    LOOKUP_PATH,
    READ_BACK_PATH,
    ApiReply,
    CapillaryClient,
    TillAuth,
)
from batch_revoke.config import RetryPolicy
from batch_revoke.credentials import BasicCredentials
from batch_revoke.model import Endpoint, ErrorCode, IdentifierType, Row, RowOutcome, Status
from batch_revoke.readback import read_back
from batch_revoke.sender import Sender

SENT = time.time()
RECENT = "2030-01-01T00:00:00+00:00"  # any time after SENT
LONG_AGO = "2020-01-01T00:00:00Z"
ISSUAL = Row(1, "B1", "000777", "I1")
CUSTOMER = Row(2, "B1", "777")
EARN = Row(3, "B1", "777", "", "E1")
LOST = RowOutcome(
    1, Status.UNCONFIRMED, Endpoint.REVOKE_ISSUE, "timeout", "ReadTimeout", (), None, 2
)


def reply(issuals=(), earns=(), status: int = 200, body=None) -> ApiReply:
    data = {
        "badgeMetaId": "B1",
        "customerId": 777,
        "issualDetails": {"issuals": list(issuals)},
        "earnDetails": {"earns": list(earns)},
    }
    return ApiReply(status, body if body is not None else {"data": data, "errors": []}, "", None, 1)


def issual(ident: str | int, status: str = "REVOKED", revoked_on: object = RECENT) -> dict:
    entry: dict = {"issueId": ident, "issuedStatus": status}
    if status == "REVOKED":
        entry["revokedOn"] = revoked_on
    return entry


def earn(ident: str | int, active: bool = False, revoked_on: object = RECENT) -> dict:
    entry: dict = {"earnedBadgeId": ident, "isActive": active}
    if not active:
        entry["revokedOn"] = revoked_on
    return entry


@pytest.mark.parametrize(
    ("row", "answer", "expected"),
    [
        pytest.param(ISSUAL, reply([issual("I1")]), ("revoked", ("I1",)), id="issual-revoked"),
        pytest.param(ISSUAL, reply([issual("I1", "ACTIVE")]), "resend", id="issual-active"),
        pytest.param(ISSUAL, reply([issual("I2")]), "resend", id="issual-absent"),
        pytest.param(
            ISSUAL,
            reply([issual("I1", revoked_on=LONG_AGO)]),
            "resend",
            id="issual-revoked-earlier",
        ),
        pytest.param(
            ISSUAL,
            reply([issual("I1", revoked_on=int((SENT + 60) * 1000))]),
            ("revoked", ("I1",)),
            id="issual-revoked-epoch-millis",
        ),
        # The badge details page's own form: epoch seconds with a fraction (1728282201.451).
        pytest.param(
            ISSUAL,
            reply([issual("I1", revoked_on=round(SENT + 60, 3))]),
            ("revoked", ("I1",)),
            id="issual-revoked-epoch-seconds-with-fraction",
        ),
        pytest.param(
            EARN,
            reply(earns=[earn("E1", revoked_on=round(SENT + 60, 3))]),
            ("revoked", ("E1",)),
            id="earn-revoked-epoch-seconds-with-fraction",
        ),
        pytest.param(
            ISSUAL,
            reply([issual("I1", revoked_on=1728282201.451)]),
            "resend",
            id="issual-revoked-epoch-seconds-long-ago",
        ),
        pytest.param(
            CUSTOMER,
            reply([issual("I3"), issual("I2"), issual("I9", revoked_on=LONG_AGO)]),
            ("revoked", ("I2", "I3")),
            id="customer-none-active-ours-only",
        ),
        pytest.param(
            CUSTOMER, reply([issual("I2"), issual("I3", "ACTIVE")]), "resend", id="customer-active"
        ),
        pytest.param(CUSTOMER, reply([]), "resend", id="customer-never-enrolled"),
        pytest.param(EARN, reply(earns=[earn("E1")]), ("revoked", ("E1",)), id="earn-inactive"),
        pytest.param(EARN, reply(earns=[earn("E1", active=True)]), "resend", id="earn-active"),
        pytest.param(
            ISSUAL,
            reply([{"issueId": "I1", "issuedStatus": "SUSPENDED"}]),
            "unconfirmed",
            id="unknown-status",
        ),
        pytest.param(
            ISSUAL, reply([issual("I1", revoked_on="last tuesday")]), "unconfirmed", id="bad-date"
        ),
        pytest.param(ISSUAL, reply([issual("I1", revoked_on=None)]), "unconfirmed", id="no-date"),
        pytest.param(
            EARN,
            reply(earns=[{"earnedBadgeId": "E1", "active": False}]),
            "unconfirmed",
            id="earn-shape",
        ),
        pytest.param(
            ISSUAL, reply(body={"data": {"issuals": []}}), "unconfirmed", id="no-issualDetails"
        ),
        pytest.param(ISSUAL, reply(status=500, body={}), "unconfirmed", id="http-500"),
        pytest.param(ISSUAL, "read-back failed: ReadTimeout", "unconfirmed", id="call-failed"),
    ],
)
def test_settle(row, answer, expected):
    settled = read_back_verdict(InDoubt(row, LOST, SENT), answer)
    if expected == "resend":
        assert settled == row
    elif expected == "unconfirmed":
        assert isinstance(settled, RowOutcome)
        assert settled.status is Status.UNCONFIRMED
        assert settled.error_message.startswith("ReadTimeout; ")  # the first cause is kept
    else:
        assert isinstance(settled, RowOutcome)
        assert (settled.status.value, settled.issued_ids) == expected
        assert "confirmed by read-back" in settled.error_message
        assert settled.attempts == 2


def test_without_a_send_time_any_revocation_counts():
    """`verify` of an old result file cannot know when its request left."""
    settled = read_back_verdict(
        InDoubt(ISSUAL, LOST, None), reply([issual("I1", revoked_on=LONG_AGO)])
    )
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.REVOKED


def test_clock_slack_tolerates_a_server_clock_behind_ours():
    just_before = SENT - CLOCK_SLACK / 2
    settled = read_back_verdict(
        InDoubt(ISSUAL, LOST, SENT), reply([issual("I1", revoked_on=just_before)])
    )
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.REVOKED


def test_in_flight_rows_without_an_answer_say_so():
    settled = read_back_verdict(InDoubt(ISSUAL, None, SENT), "read-back failed: ConnectError")
    assert isinstance(settled, RowOutcome)
    assert (settled.status, settled.error_code) == (Status.UNCONFIRMED, "run_aborted")
    assert "in flight" in settled.error_message


# A revokeIssuals row that named its customer by mobile, as its lookup resolved it.
BY_MOBILE = Row(4, "B1", "777", "I1", "", IdentifierType.ID, resolved=True)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(reply([issual("I1")]), id="revoked"),
        pytest.param("read-back failed: ConnectError", id="still-unknown"),
    ],
)
def test_a_row_a_kill_left_in_flight_shows_its_sends_and_its_customers_id(answer):
    """As a clean run's answer would: the journal's count of sends, and the id its lookup
    found (answers.replies.outcome), whether the read-back settles the row or not."""
    settled = read_back_verdict(InDoubt(BY_MOBILE, None, SENT, sends=3), answer)
    assert isinstance(settled, RowOutcome)
    assert (settled.attempts, settled.resolved_customer_id) == (3, "777")
    plain = read_back_verdict(InDoubt(ISSUAL, None, SENT, sends=1), answer)
    assert isinstance(plain, RowOutcome)
    assert (plain.attempts, plain.resolved_customer_id) == (1, "")


MISSING = object()
LONG_AGO_MILLIS = int((SENT - 30 * 86400) * 1000)  # a month before we asked, in ms
BEFORE_SLACK = SENT - CLOCK_SLACK - 60  # a minute more than the slack before we asked


def with_flag(entry: dict, key: str, value: object) -> dict:
    """The entry with `key` set to `value`, or without it for MISSING."""
    changed = {k: v for k, v in entry.items() if k != key}
    if value is not MISSING:
        changed[key] = value
    return changed


@pytest.mark.parametrize("sent_at", [SENT, None], ids=["sent-now", "old-result-file"])
@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        pytest.param(True, "resend", id="true"),
        pytest.param("false", "unconfirmed", id="text-false"),
        pytest.param(0, "unconfirmed", id="zero"),
        pytest.param(None, "unconfirmed", id="null"),
        pytest.param(MISSING, "unconfirmed", id="missing"),
    ],
)
def test_a_read_back_earn_is_revoked_only_on_a_definite_false(flag, expected, sent_at):
    entry = with_flag(earn("E1"), "isActive", flag)  # revokedOn stays: it looks revoked
    settled = read_back_verdict(InDoubt(EARN, LOST, sent_at), reply(earns=[entry]))
    if expected == "resend":
        assert settled == EARN
    else:
        assert isinstance(settled, RowOutcome)
        assert settled.status is Status.UNCONFIRMED
        assert "shape this version does not know" in settled.error_message


@pytest.mark.parametrize("sent_at", [SENT, None], ids=["sent-now", "old-result-file"])
@pytest.mark.parametrize("row", [ISSUAL, CUSTOMER], ids=["issual", "customer"])
@pytest.mark.parametrize(
    "issued_status",
    [
        pytest.param("SUSPENDED", id="a-state-no-page-names"),
        pytest.param("revoked", id="lower-case-revoked"),
        pytest.param("Revoked", id="title-case-revoked"),
        pytest.param("", id="empty"),
        pytest.param(None, id="null"),
        pytest.param(MISSING, id="missing"),
    ],
)
def test_an_issual_neither_active_nor_revoked_is_never_settled(issued_status, row, sent_at):
    entry = with_flag(issual("I1"), "issuedStatus", issued_status)  # revokedOn stays
    settled = read_back_verdict(InDoubt(row, LOST, sent_at), reply([entry]))
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.UNCONFIRMED
    assert "shape this version does not know" in settled.error_message


@pytest.mark.parametrize(
    ("row", "answer"),
    [
        pytest.param(
            ISSUAL,
            reply([issual("I1", revoked_on=LONG_AGO_MILLIS)]),
            id="issual-epoch-millis-long-ago",
        ),
        pytest.param(
            CUSTOMER,
            reply([issual("I1", revoked_on=LONG_AGO_MILLIS)]),
            id="customer-epoch-millis-long-ago",
        ),
        pytest.param(
            ISSUAL, reply([issual("I1", revoked_on=BEFORE_SLACK)]), id="issual-beyond-slack"
        ),
        pytest.param(
            EARN, reply(earns=[earn("E1", revoked_on=BEFORE_SLACK)]), id="earn-beyond-slack"
        ),
        pytest.param(
            EARN,
            reply(earns=[earn("E1", revoked_on=int(BEFORE_SLACK * 1000))]),
            id="earn-millis-beyond-slack",
        ),
        pytest.param(EARN, reply(earns=[earn("E1", revoked_on=LONG_AGO)]), id="earn-long-ago"),
    ],
)
def test_a_revocation_from_before_our_request_is_somebody_elses(row, answer):
    """The row is sent again, so the API's own answer (404, 814) is what gets reported."""
    assert read_back_verdict(InDoubt(row, LOST, SENT), answer) == row


BASE = "http://127.0.0.1:9"


async def test_verify_reads_back_once_per_customer_and_badge(respx_mock):
    route = respx_mock.get(
        BASE + READ_BACK_PATH.format(customerId="000777", badgeMetaId="B1")
    ).mock(return_value=httpx.Response(200, json=reply([issual("I1"), issual("I5")]).body))
    items = [
        InDoubt(ISSUAL, LOST, SENT),
        InDoubt(Row(5, "B1", "000777", "I5"), LOST, SENT),
    ]
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = Sender(CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))))
        found = await read_back(items, sender)
    assert route.call_count == 1
    assert route.calls[0].request.url.params["includeStatistics"] == "true"
    assert "X-CAP-CUSTOMER-IDENTIFIER" not in route.calls[0].request.headers
    assert found.resend == []
    assert found.read == 2
    by_row = {o.row: o for o in found.outcomes}
    assert (by_row[1].status, by_row[5].status) == (Status.REVOKED, Status.REVOKED)


async def test_a_read_back_that_keeps_failing_leaves_the_row_unconfirmed(respx_mock):
    respx_mock.get(url__regex=r".*/badges/management/.*").mock(
        side_effect=httpx.ConnectError("refused")
    )

    async def no_wait(_: float) -> None:
        return None

    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = Sender(
            CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))),
            RetryPolicy(max_attempts=2),
            sleep=no_wait,
        )
        found = await read_back([InDoubt(ISSUAL, LOST, SENT)], sender)
    assert found.resend == []
    (outcome,) = found.outcomes
    assert outcome.status is Status.UNCONFIRMED
    assert "read-back failed" in outcome.error_message


async def no_wait(_: float) -> None:
    return None


def plain_sender(http: httpx.AsyncClient, **options) -> Sender:
    return Sender(
        CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))),
        RetryPolicy(max_attempts=2),
        sleep=no_wait,
        **options,
    )


async def test_a_read_back_that_raises_leaves_its_rows_unconfirmed(respx_mock):
    respx_mock.get(url__regex=r".*/badges/management/.*").mock(side_effect=RuntimeError("boom"))
    async with httpx.AsyncClient(base_url=BASE) as http:
        found = await read_back([InDoubt(ISSUAL, LOST, SENT)], plain_sender(http))
    assert found.resend == []
    (outcome,) = found.outcomes
    assert outcome.status is Status.UNCONFIRMED
    assert "read-back failed: unexpected error: RuntimeError: boom" in outcome.error_message


async def test_a_read_back_of_an_id_too_long_for_a_url_leaves_it_unconfirmed(respx_mock):
    row = Row(1, "B1", "1" * 70_000, "I1")
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = plain_sender(http)
        found = await read_back([InDoubt(row, LOST, SENT)], sender)
    (outcome,) = found.outcomes
    assert outcome.status is Status.UNCONFIRMED
    assert "read-back could not be sent (InvalidURL" in outcome.error_message
    assert sender.http_calls == 0


async def test_an_answer_that_cannot_be_read_leaves_its_rows_unconfirmed(respx_mock):
    # A revokedOn of 400 digits is a number JSON allows and no float holds.
    other = Row(2, "B2", "5", "I2")
    respx_mock.get(BASE + READ_BACK_PATH.format(customerId="5", badgeMetaId="B2")).mock(
        return_value=httpx.Response(200, json=reply([issual("I2")]).body)
    )
    body = reply([issual("I1", revoked_on=10**400)]).body
    respx_mock.get(url__regex=r".*/badges/management/.*").mock(
        return_value=httpx.Response(200, json=body)
    )
    async with httpx.AsyncClient(base_url=BASE) as http:
        found = await read_back(
            [InDoubt(ISSUAL, LOST, SENT), InDoubt(other, LOST, SENT)], plain_sender(http)
        )
    by_row = {o.row: o for o in found.outcomes}
    assert by_row[1].status is Status.UNCONFIRMED
    assert "read-back could not be read: OverflowError" in by_row[1].error_message
    assert by_row[2].status is Status.REVOKED  # the other read-back went on


async def test_a_stop_during_a_read_back_ends_it_quietly(respx_mock):
    sender: Sender

    def failing(request: httpx.Request) -> httpx.Response:
        sender.stop.request("interrupted")  # Ctrl-C while the read-back waits to retry
        return httpx.Response(500)

    respx_mock.get(url__regex=r".*/badges/management/.*").mock(side_effect=failing)
    async with httpx.AsyncClient(base_url=BASE) as http:
        sender = plain_sender(http)
        found = await read_back([InDoubt(ISSUAL, LOST, SENT)], sender)
    # Neither settled nor to send: the journal still says unconfirmed, and --resume reads back.
    assert (found.outcomes, found.resend) == ([], [])


@pytest.mark.parametrize(
    ("minutes_before", "expected"),
    [
        pytest.param(4, Status.REVOKED, id="4-min-before-is-ours"),
        pytest.param(6, None, id="6-min-before-is-somebody-elses"),
    ],
)
def test_the_clock_slack_is_five_minutes(minutes_before, expected):
    # The README's promise: stamped more than 5 minutes before our request left, it was
    # somebody else's revocation (the row is sent again); within 5 minutes, it was ours.
    stamp = SENT - minutes_before * 60
    settled = read_back_verdict(
        InDoubt(ISSUAL, LOST, SENT), reply([issual("I1", revoked_on=stamp)])
    )
    if expected is None:
        assert settled == ISSUAL
    else:
        assert isinstance(settled, RowOutcome)
        assert settled.status is expected


def test_a_read_back_id_without_the_rows_zeros_is_the_rows():
    row = Row(1, "B1", "777", "0042", "")
    settled = read_back_verdict(InDoubt(row, LOST, SENT), reply([issual(42)]))
    assert isinstance(settled, RowOutcome)
    assert (settled.status, settled.issued_ids) == (Status.REVOKED, ("0042",))
    earn_row = Row(3, "B1", "777", "", "000123")
    settled = read_back_verdict(InDoubt(earn_row, LOST, SENT), reply(earns=[earn(123)]))
    assert isinstance(settled, RowOutcome)
    assert settled.status is Status.REVOKED


def test_another_enrolment_still_active_does_not_unsettle_an_issue_row():
    # The row names one enrolment: the customer's other enrolments of the badge are not its
    # business. Its own is revoked, by us: it is revoked, not sent again (that would be a 404).
    answer = reply([issual("I2", "ACTIVE"), issual("I1")])
    settled = read_back_verdict(InDoubt(ISSUAL, LOST, SENT), answer)
    assert isinstance(settled, RowOutcome)
    assert (settled.status, settled.issued_ids) == (Status.REVOKED, ("I1",))


# --- states besides ACTIVE and REVOKED (EXPIRED, say): a row is judged by what is its own --


def expired(ident: str) -> dict:
    return {"issueId": ident, "issuedStatus": "EXPIRED"}


@pytest.mark.parametrize("sent_at", [SENT, None], ids=["sent-now", "old-result-file"])
@pytest.mark.parametrize(
    ("row", "issuals", "expected"),
    [
        pytest.param(
            ISSUAL, [expired("I0"), issual("I1")], ("revoked", ("I1",)), id="issual-beside-expired"
        ),
        pytest.param(
            ISSUAL,
            [{"issueId": "I0", "issuedStatus": "SUSPENDED"}, issual("I1")],
            ("revoked", ("I1",)),
            id="issual-beside-an-unknown-state",
        ),
        pytest.param(
            ISSUAL,
            [
                {"issueId": "I0", "issuedStatus": "REVOKED", "revokedOn": "last tuesday"},
                issual("I1"),
            ],
            ("revoked", ("I1",)),
            id="issual-beside-another-with-a-bad-date",
        ),
        pytest.param(
            CUSTOMER,
            [expired("I0"), issual("I3"), issual("I2")],
            ("revoked", ("I2", "I3")),
            id="customer-beside-expired",
        ),
        pytest.param(ISSUAL, [expired("I1")], "resend", id="issual-itself-expired"),
        pytest.param(CUSTOMER, [expired("I0")], "resend", id="customer-only-expired"),
        pytest.param(
            CUSTOMER,
            [{"issueId": "I0", "issuedStatus": "SUSPENDED"}, issual("I2")],
            "unconfirmed",
            id="customer-beside-an-unknown-state",
        ),
    ],
)
def test_an_issual_expired_is_not_active_and_not_ours(row, issuals, expected, sent_at):
    """EXPIRED is neither what the lost request left undone nor what it did: a revokeIssuals
    row is judged by its own issual, a customers row by the entries that could still be
    active (a state this version does not know could be, so it stays unconfirmed)."""
    settled = read_back_verdict(InDoubt(row, LOST, sent_at), reply(issuals))
    if expected == "resend":
        assert settled == row
    elif expected == "unconfirmed":
        assert isinstance(settled, RowOutcome)
        assert settled.status is Status.UNCONFIRMED
        assert "SUSPENDED" in settled.error_message
    else:
        assert isinstance(settled, RowOutcome)
        assert (settled.status.value, settled.issued_ids) == expected


# --- a badge the org does not have -------------------------------------------------------

BADGE_NOT_FOUND = {"data": None, "errors": [{"code": 404, "message": "Passed badge is not found"}]}


@pytest.mark.parametrize("row", [ISSUAL, CUSTOMER, EARN], ids=["issual", "customer", "earn"])
def test_a_read_back_of_a_badge_not_found_is_that_failure_never_not_present(row):
    settled = read_back_verdict(InDoubt(row, LOST, SENT), reply(status=404, body=BADGE_NOT_FOUND))
    assert isinstance(settled, RowOutcome)
    assert (settled.status, settled.error_code) == (Status.FAILED, ErrorCode.BADGE_NOT_FOUND)
    assert "B1" in settled.error_message
    assert "check the badgeMetaId" in settled.error_message
    assert (settled.http_status, settled.attempts) == (404, 2)


# --- a revokeEarn row named by mobile, email, externalId or cardNumber -----------------------


async def test_an_earn_named_by_mobile_is_read_back_by_the_mobile_in_one_call(respx_mock):
    """The badge details page takes X-CAP-CUSTOMER-IDENTIFIER as revokeEarn does: one call,
    and the customer revokeEarn found, with no customer lookup first."""
    mobile = Row(4, "B1", "919900000013", "", "E7", IdentifierType.MOBILE)
    email = Row(5, "B1", "Ana.Silva@example.com", "", "E8", IdentifierType.EMAIL)
    same_email = Row(6, "B1", "ana.silva@EXAMPLE.com", "", "E9", IdentifierType.EMAIL)
    lookup = respx_mock.get(BASE + LOOKUP_PATH).mock(return_value=httpx.Response(500))
    by_mobile = respx_mock.get(
        BASE + READ_BACK_PATH.format(customerId="919900000013", badgeMetaId="B1")
    ).mock(return_value=httpx.Response(200, json=reply(earns=[earn("E7")]).body))
    by_email = respx_mock.get(url__regex=r".*/badges/management/Ana.Silva%40example.com/.*").mock(
        return_value=httpx.Response(200, json=reply(earns=[earn("E8"), earn("E9")]).body)
    )
    items = [InDoubt(row, LOST, SENT) for row in (mobile, email, same_email)]
    async with httpx.AsyncClient(base_url=BASE) as http:
        found = await read_back(items, plain_sender(http))
    assert lookup.call_count == 0
    assert by_mobile.call_count == 1
    assert by_mobile.calls[0].request.headers["X-CAP-CUSTOMER-IDENTIFIER"] == "mobile"
    assert by_email.call_count == 1  # one customer, however its email is cased
    assert by_email.calls[0].request.headers["X-CAP-CUSTOMER-IDENTIFIER"] == "email"
    assert (found.resend, found.read) == ([], 3)
    by_row = {o.row: o for o in found.outcomes}
    assert [by_row[n].status for n in (4, 5, 6)] == [Status.REVOKED] * 3
    assert "confirmed by read-back" in by_row[4].error_message
