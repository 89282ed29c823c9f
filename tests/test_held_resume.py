"""Customers named by mobile or email across a resume and across the file's chunks, and the
regions their mobiles are read in: end to end against the sandbox on 127.0.0.1 where only a
real run can show it, and through the read-back's own function where it can."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from batch_revoke.answers.readbacks import InDoubt
from batch_revoke.client import (
    LOOKUP_PATH,
    READ_BACK_PATH,
    REVOKE_ISSUE_PATH,
    CapillaryClient,
    TillAuth,
)
from batch_revoke.credentials import BasicCredentials
from batch_revoke.identifiers import lookup_key, mobile_number
from batch_revoke.model import (
    Endpoint,
    ErrorCode,
    IdentifierType,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.readback import read_back
from batch_revoke.sandbox.server import LoggedRequest
from batch_revoke.sender import Sender
from batch_revoke.source import CHUNK_ROWS
from tests.conftest import HEADER, run_cli, sandbox
from tests.conftest import read_rows as results

pytestmark = pytest.mark.e2e

WELCOME = "654bb48766a87827bb61e631"
ANA = "62090013"  # mobile 919900000013, email ana.silva@example.com
ANA_ENROLMENT = "654cc02b6bccde1274b6d3a7"  # one of her two enrolments of WELCOME


def lookups(requests: list[LoggedRequest]) -> list[str]:
    return [entry.query["identifierValue"] for entry in requests if entry.path == LOOKUP_PATH]


def issue_entries(requests: list[LoggedRequest]) -> list[dict]:
    """Every revokeIssuals or customers entry sent, as {customerId, issueId}."""
    sent = []
    for entry in requests:
        if entry.path != REVOKE_ISSUE_PATH or not isinstance(entry.body, dict):
            continue
        sent += entry.body.get("revokeIssuals") or []
        sent += [{"customerId": c} for c in entry.body.get("customers") or []]
    return sent


# --- resume -------------------------------------------------------------------------------


def test_a_lookup_with_no_answer_is_asked_again_by_resume_and_only_it(tmp_path, write_csv):
    path = write_csv(
        HEADER
        + "\n"
        + f"{WELCOME},919900000013,{ANA_ENROLMENT},,mobile\n"
        + f"{WELCOME},919900000123,654cc0416bccde1274b6d3b0,,mobile\n"
        + f"{WELCOME},919900000777,654cc0456bccde1274b6d3b4,,mobile\n"
        + f"{WELCOME},919900000015,654cc0496bccde1274b6d3b8,,mobile\n"
    )
    out = tmp_path / "out.csv"
    # One call at a time, in file order: #2 is the second customer's lookup, and it fails;
    # #5 is the one revoke of the three others, applied and its answer lost (left unknown
    # with --no-verify), so a resume has all four rows to settle, and only one lookup to ask.
    with sandbox("500:#2", "apply-drop:#5") as (running, _state):
        args = ("--concurrency", "1", "--max-attempts", "1", "--no-verify")
        first = run_cli(running, str(path), "-o", str(out), *args)
        asked = len(running.requests)
        assert first.returncode == 3, first.stderr
        rows = results(out)
        assert [(r["status"], r["error_code"]) for r in rows] == [
            ("unconfirmed", "connection_error"),
            ("not_attempted", "lookup_failed"),
            ("unconfirmed", "connection_error"),
            ("unconfirmed", "connection_error"),
        ]
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
        again = list(running.requests)[asked:]
    assert resumed.returncode == 0, resumed.stderr
    assert lookups(again) == ["919900000123"]
    assert [r["status"] for r in results(out)] == ["revoked"] * 4


@pytest.mark.parametrize(
    ("named", "kind", "lost"),
    [(ANA, "", 2), ("ana.silva@example.com", "email", 3)],
    ids=["by-id", "by-email"],
)
def test_a_row_sent_whose_answer_was_lost_is_read_back_on_resume_never_a_duplicate(
    tmp_path, write_csv, named, kind, lost
):
    """Row 1 names Ana by mobile and its lookup gets no answer; row 2 names her otherwise,
    with the same enrolment, and is sent, its answer lost. On resume row 1's lookup says it
    is Ana: row 2 was sent all the same, so it is read back, not called a duplicate."""
    path = write_csv(
        HEADER
        + "\n"
        + f"{WELCOME},919900000013,{ANA_ENROLMENT},,mobile\n"
        + f"{WELCOME},{named},{ANA_ENROLMENT},,{kind}\n"
    )
    out = tmp_path / "out.csv"
    # One call at a time: #1 is row 1's lookup; then row 2's lookup (by email) and its revoke.
    with sandbox("500:#1", f"apply-drop:#{lost}") as (running, state):
        first = run_cli(
            running,
            str(path),
            "-o",
            str(out),
            "--concurrency",
            "1",
            "--max-attempts",
            "1",
            "--no-verify",
        )
        assert first.returncode == 3, first.stderr
        assert [r["status"] for r in results(out)] == ["not_attempted", "unconfirmed"]
        assert state.enrolments[ANA_ENROLMENT].issuedStatus == "REVOKED"
        asked = len(running.requests)
        resumed = run_cli(running, str(path), "-o", str(out), "--resume")
        again = list(running.requests)[asked:]
    rows = results(out)
    assert rows[1]["status"] == "revoked", (rows[1], resumed.stderr)
    assert "confirmed by read-back" in rows[1]["error_message"]
    assert len(issue_entries(again)) <= 1  # row 1, maybe; row 2 never again


# --- one customer across the file's chunks -----------------------------------------------


@pytest.mark.parametrize(
    ("first_issue", "expected"),
    [(ANA_ENROLMENT, "duplicate"), ("", "revoked")],
    ids=["same-enrolment-is-a-duplicate", "customers-row-covers-it"],
)
def test_a_row_by_id_thousands_of_rows_after_its_customer_by_mobile_is_never_sent_twice(
    tmp_path, first_issue, expected
):
    # Row 1 names Ana by mobile; the rows between are refused (no badge) and cost no call;
    # the last row, in a later chunk of the file, names her by id.
    lines = [HEADER, f"{WELCOME},919900000013,{first_issue},,mobile"]
    lines += [f",{n},I{n},," for n in range(CHUNK_ROWS + 500)]
    lines.append(f"{WELCOME},{ANA},{ANA_ENROLMENT},,")
    path = tmp_path / "input.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(out))
        log = list(running.requests)
    assert done.returncode == 1, done.stderr  # the refused rows
    rows = results(out)
    last = rows[-1]
    assert int(last["row"]) > CHUNK_ROWS
    assert (rows[0]["status"], last["status"]) == ("revoked", expected), last
    assert "row 1" in last["error_message"]
    sent = issue_entries(log)
    assert len(sent) == 1, sent  # Ana's enrolment (or Ana) once


# --- a lost answer of a row whose customer the lookup cannot find ------------------------


async def test_a_lost_answer_of_a_row_by_mobile_whose_customer_is_not_found_is_sent_again(
    respx_mock,
):
    # revokeEarn takes the mobile itself, so the row was sent; its answer was lost. The
    # read-back asks by the mobile too, and the API holds no earn of it for that mobile (no
    # such customer): nothing shows it applied, so it is sent again, and revoking twice does
    # nothing twice. No lookup is made: the read-back takes the mobile as revokeEarn did.
    row = Row(1, "B3", "919900099999", "", "E1", IdentifierType.MOBILE)
    lost = RowOutcome(1, Status.UNCONFIRMED, Endpoint.REVOKE_EARN, ErrorCode.TIMEOUT, "ReadTimeout")
    base = "http://127.0.0.1:9"
    lookup = respx_mock.get(base + LOOKUP_PATH).mock(return_value=httpx.Response(500))
    empty = {"badgeMetaId": "B3", "issualDetails": {"issuals": []}, "earnDetails": {"earns": []}}
    read = respx_mock.get(
        base + READ_BACK_PATH.format(customerId="919900099999", badgeMetaId="B3")
    ).mock(return_value=httpx.Response(200, json={"data": empty, "errors": [], "warnings": []}))
    async with httpx.AsyncClient(base_url=base) as http:
        sender = Sender(CapillaryClient(http, TillAuth(BasicCredentials("u", "p"))))
        back = await read_back([InDoubt(row, lost, time.time())], sender)
    assert (back.resend, back.outcomes) == ([row], [])
    assert (read.call_count, lookup.call_count) == (1, 0)


# --- mobiles read with --default-region ---------------------------------------------------


@pytest.mark.parametrize("region", ["GB", "US"])
def test_a_national_reading_not_in_use_never_wins_over_a_valid_international_one(region):
    # 6581234567: as a national number of GB or US it has the right length but is no number
    # in use; with its country code it is Singapore's +65 8123 4567, a mobile.
    assert mobile_number("6581234567", region) == "6581234567"
    assert lookup_key(IdentifierType.MOBILE, "6581234567", region) == "mobile:6581234567"


def test_a_resume_with_another_default_region_is_refused(tmp_path, write_csv):
    path = write_csv(HEADER + "\n" + f"{WELCOME},09900000013,{ANA_ENROLMENT},,mobile\n")
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        first = run_cli(running, str(path), "-o", str(out), "--default-region", "IN")
        assert first.returncode == 0, first.stderr
        before = out.read_bytes()
        asked = len(running.requests)
        again = run_cli(running, str(path), "-o", str(out), "--resume", "--default-region", "GB")
        assert len(running.requests) == asked
    assert again.returncode == 2, again.stderr
    assert "default_region" in again.stderr or "--default-region" in again.stderr
    assert out.read_bytes() == before


# --- --max-errors and customers the lookup does not find ---------------------------------


def unknown_mobiles(folder: Path, count: int) -> Path:
    lines = [HEADER] + [f"{WELCOME},9188{n:08d},I{n},,mobile" for n in range(count)]
    path = folder / "unknown.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_max_errors_counts_customers_the_lookup_did_not_find(tmp_path):
    path = unknown_mobiles(tmp_path, 2000)
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(
            running, str(path), "-o", str(out), "--max-errors", "10", "--concurrency", "2"
        )
        asked = lookups(running.requests)
    assert done.returncode == 3, done.stderr
    assert "--max-errors 10 reached" in done.stderr
    assert 10 <= len(asked) <= 10 + 2  # the limit, and the lookups in flight when it was met
    assert issue_entries(running.requests) == []
    statuses = json.dumps([r["status"] for r in results(out)])
    assert "revoked" not in statuses


def test_customers_the_lookup_did_not_find_count_once_against_max_errors(tmp_path):
    # 5 customers not found, --max-errors 8: counted as their lookups answer and again when
    # their rows are recorded, they would make 10 and stop a run that has only 5 failures.
    lines = [HEADER] + [f"{WELCOME},9188{n:08d},I{n},,mobile" for n in range(5)]
    lines.append(f"{WELCOME},919900000013,{ANA_ENROLMENT},,mobile")
    path = tmp_path / "input.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    with sandbox() as (running, _state):
        done = run_cli(running, str(path), "-o", str(out), "--max-errors", "8")
    assert done.returncode == 1, done.stderr  # finished: not stopped by --max-errors
    assert [(r["status"], r["error_code"]) for r in results(out)] == [("failed", "816")] * 5 + [
        ("revoked", "")
    ]
