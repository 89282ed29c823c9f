"""What a user reads of a row refused for a value too long to be an id (batch_revoke/chunker.py):
which column, the value cut short, the most an id may have, what to look for, and the endpoint
the row would have gone to (so the result file says which kind of revoke it was)."""

from __future__ import annotations

import pytest

from batch_revoke import chunker
from batch_revoke.chunker import Planner, Validator, check_columns, planner_for
from batch_revoke.config import RunConfig
from batch_revoke.duplicates import FirstRows
from batch_revoke.model import (
    Endpoint,
    ErrorCode,
    IdentifierType,
    Mode,
    Record,
    Row,
    RowOutcome,
    Status,
)
from batch_revoke.source import Source

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3, "identifiertype": 4}
LONG = "x" * 300


def verdict(*values: str) -> RowOutcome:
    planner = Planner(Validator(FIELDS, IdentifierType.ID))
    try:
        (found,) = planner.classify([Record(4, values + ("",) * (5 - len(values)))])
    finally:
        planner.close()
    assert isinstance(found, RowOutcome)
    return found


@pytest.mark.parametrize(
    ("values", "endpoint"),
    [
        pytest.param((LONG, "1", "I1"), Endpoint.REVOKE_ISSUE, id="enrolment"),
        pytest.param((LONG, "1", "", "E1"), Endpoint.REVOKE_EARN, id="earned-badge"),
    ],
)
def test_a_value_too_long_for_an_id_says_what_to_look_for_and_keeps_its_endpoint(values, endpoint):
    outcome = verdict(*values)
    assert (outcome.row, outcome.status, outcome.endpoint) == (4, Status.INVALID, endpoint)
    assert outcome.error_code == ErrorCode.VALUE_TOO_LONG
    assert outcome.error_message == (
        f"badgeMetaId {'x' * 40!r}… (300 characters) is longer than any id (256 characters at "
        "most); look for a value pasted in by mistake"
    )


def test_a_value_of_the_longest_length_shown_whole_is_shown_whole():
    """A rejected value of 40 characters is quoted whole; one of 41 is cut with its length."""
    whole, cut = 'B"' + "x" * 38, 'B"' + "x" * 39
    assert verdict(whole, "1").error_message == (
        f"badgeMetaId {whole!r} holds a quote, which no id has: a stray quote in the file? "
        "fix the cell"
    )
    assert verdict(cut, "1").error_message.startswith(f"badgeMetaId {cut[:40]!r}… (41 characters)")


def test_batches_are_numbered_in_the_order_they_leave_with_their_badge_and_call():
    planner = Planner(Validator(FIELDS, IdentifierType.ID), batch_size=2)
    rows = planner.classify(
        [
            Record(1, ("B1", "7", "", "", "")),
            Record(2, ("B2", "8", "", "E2", "")),
            Record(3, ("B1", "9", "", "", "")),
            Record(4, ("B3", "7", "I4", "", "")),
            Record(5, ("B1", "6", "", "", "")),
        ]
    )
    left = [batch for row in rows if isinstance(row, Row) and (batch := planner.place(row))]
    left += list(planner.finish())
    planner.close()
    assert [(b.number, b.mode, b.badge_meta_id, [r.row for r in b.rows]) for b in left] == [
        (1, Mode.EARN, "B2", [2]),
        (2, Mode.CUSTOMERS, "B1", [1, 3]),
        (3, Mode.ISSUALS, "B3", [4]),  # the open batches in the order they were opened
        (4, Mode.CUSTOMERS, "B1", [5]),
    ]


def test_a_duplicate_says_what_it_repeats_and_which_row_it_repeats():
    planner = Planner(Validator(FIELDS, IdentifierType.ID))
    verdicts = planner.classify(
        [
            Record(1, ("B1", "7", "I1", "", "")),
            Record(2, ("B1", "8", "", "E2", "")),
            Record(3, ("B1", "7", "I1", "", "")),
            Record(4, ("B1", "9", "", "E2", "")),  # one earn, whoever it names
        ]
    )
    planner.close()
    said = [(v.row, v.error_message) for v in verdicts if isinstance(v, RowOutcome)]
    assert said == [
        (3, "same badge, customer and ids as row 1; not sent again"),
        (4, "same badge and earnedBadgeId as row 2; not sent again"),
    ]


def test_a_formula_with_no_saved_value_is_a_missing_value_that_says_so():
    validate = Validator({"badgemetaid": 0, "customerid": 1}, IdentifierType.ID, from_workbook=True)
    chunk = [Record(2, ("B1", "7")), Record(3, ("=A2", "7")), Record(4, ("B1", "=B2+1"))]
    verdicts = validate.many(chunk)
    assert verdicts[0] == Row(2, "B1", "7")
    advice = (
        "with no saved value: the workbook was written by a script and never recalculated; "
        "open it in Excel and save it, or write the values"
    )
    assert [(v.row, v.status, v.error_code, v.error_message) for v in verdicts[1:]] == [
        (3, Status.INVALID, ErrorCode.MISSING_VALUE, f"badgeMetaId is a formula (=A2) {advice}"),
        (4, Status.INVALID, ErrorCode.MISSING_VALUE, f"customerId is a formula (=B2+1) {advice}"),
    ]
    # A CSV's value that starts with = is a value.
    assert Validator({"badgemetaid": 0, "customerid": 1}, IdentifierType.ID)(
        Record(3, ("=A2", "7"))
    ) == Row(3, "=A2", "7")


def test_a_file_with_only_badge_and_customer_columns_gives_customers_rows():
    validate = Validator({"badgemetaid": 0, "customerid": 1}, IdentifierType.ID)
    assert validate(Record(1, ("B1", " 7 "))) == Row(1, "B1", "7")
    assert validate(Record(2, ("B1", "'7"))) == Row(2, "B1", "7")
    assert validate(Record(2, ("B1", "'7"))).mode is Mode.CUSTOMERS


def test_a_chunk_of_usual_records_is_checked_a_column_at_a_time(monkeypatch):
    """The column checks (`check_columns`) take a plain file's chunk; a workbook's, whose
    values may be formulas, and a file that names customers otherwise go record by record."""
    seen: list[int] = []

    def counted(records, validate):
        seen.append(len(records))
        return check_columns(records, validate)

    monkeypatch.setattr(chunker, "check_columns", counted)
    chunk = [Record(1, ("B1", "7")), Record(2, ("B1", "8"))]
    fields = {"badgemetaid": 0, "customerid": 1}
    assert Validator(fields, IdentifierType.ID).many(chunk) == [
        Row(1, "B1", "7"),
        Row(2, "B1", "8"),
    ]
    assert seen == [2]
    Validator(fields, IdentifierType.ID, from_workbook=True).many(chunk)
    Validator(fields, IdentifierType.MOBILE).many(chunk)
    assert seen == [2]


def test_a_row_with_neither_badge_nor_customer_says_both_are_blank():
    validate = Validator({"badgemetaid": 0, "customerid": 1}, IdentifierType.ID)
    found = validate(Record(1, ("", " ")))
    assert isinstance(found, RowOutcome)
    assert (found.error_code, found.error_message) == (
        ErrorCode.MISSING_VALUE,
        "badgeMetaId and customerId are blank",
    )


def test_a_mobile_is_read_in_the_default_region_before_as_an_international_number():
    """6591234567 is an Indian mobile with --default-region IN, a Singapore one without."""
    fields = {"badgemetaid": 0, "customerid": 1}
    record = Record(1, ("B1", "6591234567"))
    with_region = Validator(fields, IdentifierType.MOBILE, default_region="in")
    assert with_region(record) == Row(1, "B1", "916591234567", "", "", IdentifierType.MOBILE)
    assert Validator(fields, IdentifierType.MOBILE)(record) == Row(
        1, "B1", "6591234567", "", "", IdentifierType.MOBILE
    )


def test_excels_keep_as_text_mark_is_not_part_of_an_identifier():
    fields = {"badgemetaid": 0, "customerid": 1}
    for kind, written, sent in (
        (IdentifierType.EMAIL, "'a@b.c", "a@b.c"),
        (IdentifierType.EMAIL, "a@b.c", "a@b.c"),
        (IdentifierType.EXTERNAL_ID, "' X1", "X1"),
    ):
        assert Validator(fields, kind)(Record(1, ("B1", written))) == Row(
            1, "B1", sent, "", "", kind
        )


BIG = "9223372036854775808"  # 2^63: one past the largest customer id


@pytest.mark.parametrize(
    ("values", "code", "message", "endpoint"),
    [
        pytest.param(
            ("B1", "", "", "E1"),
            ErrorCode.MISSING_VALUE,
            "customerId is blank",
            Endpoint.REVOKE_EARN,
            id="blank-earn",
        ),
        pytest.param(
            ("", "7"),
            ErrorCode.MISSING_VALUE,
            "badgeMetaId is blank",
            Endpoint.REVOKE_ISSUE,
            id="blank-issue",
        ),
        pytest.param(
            ("B1", "7", "i" * 257),
            ErrorCode.VALUE_TOO_LONG,
            f"issueId {'i' * 40!r}… (257 characters) is longer than any id (256 characters at "
            "most); look for a value pasted in by mistake",
            Endpoint.REVOKE_ISSUE,
            id="issue-too-long",
        ),
        pytest.param(
            ("B1", "7", "", "e" * 257),
            ErrorCode.VALUE_TOO_LONG,
            f"earnedBadgeId {'e' * 40!r}… (257 characters) is longer than any id (256 "
            "characters at most); look for a value pasted in by mistake",
            Endpoint.REVOKE_EARN,
            id="earned-too-long",
        ),
        pytest.param(
            ("B\t1", "7"),
            ErrorCode.BAD_ID,
            "badgeMetaId 'B\\t1' holds a line break, tab or other control character, which no "
            "id has: fix the cell (a quoted value spanning lines?)",
            Endpoint.REVOKE_ISSUE,
            id="control-character",
        ),
        pytest.param(
            ("B1", "7\n8", "", "E1"),
            ErrorCode.BAD_ID,
            "customerId '7\\n8' holds a line break, tab or other control character, which no "
            "id has: fix the cell (a quoted value spanning lines?)",
            Endpoint.REVOKE_EARN,
            id="control-character-earn",
        ),
        pytest.param(
            ("B1", "7", 'I"1'),
            ErrorCode.BAD_ID,
            "issueId 'I\"1' holds a quote, which no id has: a stray quote in the file? fix the "
            "cell",
            Endpoint.REVOKE_ISSUE,
            id="quote",
        ),
        pytest.param(
            ("B1", "7", "", 'E"1'),
            ErrorCode.BAD_ID,
            "earnedBadgeId 'E\"1' holds a quote, which no id has: a stray quote in the file? "
            "fix the cell",
            Endpoint.REVOKE_EARN,
            id="quote-earn",
        ),
        pytest.param(
            ("B1", "7", "I1", "E1"),
            ErrorCode.CONFLICTING_IDS,
            "both issueId and earnedBadgeId are set; a row revokes either an enrolment "
            "(issueId) or an earned badge (earnedBadgeId): split it into two rows",
            None,
            id="both-ids",
        ),
        pytest.param(
            ("B1", "7", "", "E1", "phone"),
            ErrorCode.BAD_IDENTIFIER_TYPE,
            "identifierType 'phone' is not one of id, mobile, email, externalId, cardNumber",
            Endpoint.REVOKE_EARN,
            id="bad-type",
        ),
        pytest.param(
            ("B1", "1.5E+11"),
            ErrorCode.BAD_CUSTOMER_ID,
            "customerId '1.5E+11' is not a numeric customer id; for a mobile, email, "
            "externalId or cardNumber set identifierType",
            Endpoint.REVOKE_ISSUE,
            id="not-numeric",
        ),
        pytest.param(
            ("B1", BIG, "", "E1"),
            ErrorCode.BAD_CUSTOMER_ID,
            f"customerId '{BIG}' is beyond the largest customer id (9223372036854775807: the "
            "API takes a 64-bit number)",
            Endpoint.REVOKE_EARN,
            id="beyond-range",
        ),
        pytest.param(
            ("B1", "1" + "0" * 19),
            ErrorCode.BAD_CUSTOMER_ID,
            "customerId '10000000000000000000' is beyond the largest customer id "
            "(9223372036854775807: the API takes a 64-bit number)",
            Endpoint.REVOKE_ISSUE,
            id="more-digits",
        ),
        pytest.param(
            ("B1", "0" * 260 + "7"),
            ErrorCode.VALUE_TOO_LONG,
            f"customerId {'0' * 40!r}… (261 characters) is longer than any id (256 characters "
            "at most); look for a value pasted in by mistake",
            Endpoint.REVOKE_ISSUE,
            id="padded-id",
        ),
        pytest.param(
            ("B1", "a" * 257 + "@b.c", "", "E1", "email"),
            ErrorCode.VALUE_TOO_LONG,
            f"customerId {'a' * 40!r}… (261 characters) is longer than any id (256 characters "
            "at most); look for a value pasted in by mistake",
            Endpoint.REVOKE_EARN,
            id="identifier-too-long",
        ),
        pytest.param(
            ("B1", "12", "", "", "mobile"),
            ErrorCode.BAD_CUSTOMER_ID,
            "customerId '12' is not a mobile number: ",
            Endpoint.REVOKE_ISSUE,
            id="not-a-mobile",
        ),
    ],
)
def test_a_row_that_cannot_be_sent_says_why_and_keeps_its_endpoint(values, code, message, endpoint):
    outcome = verdict(*values)
    assert (outcome.status, outcome.error_code, outcome.endpoint) == (
        Status.INVALID,
        code,
        endpoint,
    )
    if message.endswith(": "):
        assert outcome.error_message.startswith(message)
    else:
        assert outcome.error_message == message


def test_the_planner_of_a_run_follows_its_options_and_its_input(tmp_path):
    """--identifier-type, --batch-size and --default-region reach the chunker, and so does
    whether the input is a workbook (whose formulas it refuses)."""
    path = tmp_path / "in.csv"
    path.write_text("badgeMetaId,customerId\nB1,6591234567\nB1,=A1\nB1,9900000013\n")
    config = RunConfig(
        path, identifier_type=IdentifierType.MOBILE, batch_size=2, default_region="IN"
    )
    source = Source.open(config, whole=True)
    planner = planner_for(config, source)
    try:
        ((records, _),) = list(source.chunks())
        verdicts = planner.classify(records)
        assert [v.customer_id if isinstance(v, Row) else v.error_code for v in verdicts] == [
            "916591234567",
            ErrorCode.BAD_CUSTOMER_ID,  # not a formula in a CSV: a value, and no mobile
            "919900000013",
        ]
        placed = [planner.place(v) for v in verdicts if isinstance(v, Row)]
        assert placed[0] is None
        assert placed[1] is not None
        assert [r.row for r in placed[1].rows] == [1, 3]
    finally:
        planner.close()


def test_the_planner_of_a_workbook_refuses_its_formulas_with_no_saved_value(tmp_path):
    """A sheet is read from its CSV copy: a value there that starts with = is a formula."""
    path = tmp_path / "sheet.csv"
    path.write_text("badgeMetaId,customerId\nB1,7\nB1,=B2+1\n")
    config = RunConfig(path, input_name=tmp_path / "in.xlsx")
    source = Source.open(config, whole=True)
    planner = planner_for(config, source)
    try:
        ((records, _),) = list(source.chunks())
        verdicts = planner.classify(records)
    finally:
        planner.close()
    assert isinstance(verdicts[0], Row)
    assert isinstance(verdicts[1], RowOutcome)
    assert verdicts[1].error_code == ErrorCode.MISSING_VALUE


@pytest.mark.parametrize(
    ("values", "kind", "region", "row"),
    [
        pytest.param(
            ("B1", "0" * 255 + "7"), IdentifierType.ID, None, ("0" * 255 + "7", "", ""), id="padded"
        ),
        pytest.param(
            ("B1", "'" + "a" * 252 + "@b.c"),
            IdentifierType.EMAIL,
            None,
            ("a" * 252 + "@b.c", "", ""),
            id="longest-email",
        ),
        pytest.param(
            ("B1", "'1234 5678", "I1"),
            IdentifierType.CARD_NUMBER,
            None,
            ("12345678", "I1", ""),
            id="card",
        ),
        pytest.param(
            ("B1", "'6591234567", "", "E1"),
            IdentifierType.MOBILE,
            "IN",
            ("916591234567", "", "E1"),
            id="mobile-in-region",
        ),
        pytest.param(("B1", "'7", "I1"), IdentifierType.ID, None, ("7", "I1", ""), id="issue"),
        pytest.param(("B1", "'7", "", "E1"), IdentifierType.ID, None, ("7", "", "E1"), id="earn"),
    ],
)
def test_a_row_checked_in_full_is_sent_as_written_up_to_the_limits(values, kind, region, row):
    """Rows with Excel's mark or the longest ids are sent with their ids as they are meant."""
    fields = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3}
    padded = values + ("",) * (4 - len(values))
    found = Validator(fields, kind, default_region=region)(Record(1, padded))
    assert found == Row(1, "B1", *row, kind)


def test_revoke_earn_rows_by_customer_id_are_checked_a_column_at_a_time_too(monkeypatch):
    masks: list[list[bool]] = []

    def counted(records, validate):
        found = check_columns(records, validate)
        masks.append(found[0] if found is not None else [])
        return found

    monkeypatch.setattr(chunker, "check_columns", counted)
    fields = {"badgemetaid": 0, "customerid": 1, "earnedbadgeid": 2}
    chunk = [Record(1, ("B1", "7", "")), Record(2, ("B1", "8", "E2"))]
    assert Validator(fields, IdentifierType.ID).many(chunk) == [
        Row(1, "B1", "7"),
        Row(2, "B1", "8", "", "E2"),
    ]
    assert masks == [[True, True]]


def test_a_planner_reads_a_value_that_starts_with_an_equals_sign_as_a_value_by_default():
    planner = Planner(Validator({"badgemetaid": 0, "customerid": 1}))
    try:
        assert planner.classify([Record(1, ("=A2", "7"))]) == [Row(1, "=A2", "7")]
    finally:
        planner.close()


@pytest.mark.parametrize(
    ("kind", "written"),
    [
        pytest.param(IdentifierType.EXTERNAL_ID, "AB 12", id="external-id"),
        pytest.param(IdentifierType.EMAIL, "a b@c.d", id="email"),
    ],
)
def test_only_a_card_number_loses_the_spaces_written_in_it(kind, written):
    """A card number's digits are grouped with spaces; any other identifier is sent as
    written, for the API to judge."""
    fields = {"badgemetaid": 0, "customerid": 1}
    for customer in (written, "'" + written):  # with and without Excel's mark
        found = Validator(fields, kind)(Record(1, ("B1", customer)))
        assert found == Row(1, "B1", written, "", "", kind)
    card = Validator(fields, IdentifierType.CARD_NUMBER)(Record(1, ("B1", "41 11")))
    assert card == Row(1, "B1", "4111", "", "", IdentifierType.CARD_NUMBER)


def test_a_revoke_issuals_row_whose_customer_has_no_customers_row_costs_no_lookup(monkeypatch):
    """The customers rows' filter keeps one bit per customer: a revokeIssuals row whose
    customer's bit is not set (even one next to a set bit) is ruled out before the rows seen
    are searched."""
    low = (1 << 25) - 1
    bits: dict[int, str] = {}
    for n in range(200_000):  # two customers whose bits are neighbours: hashes are salted
        customer = str(10_000 + n)
        bit = hash(customer) & low
        if (pair := bits.get(bit ^ 1)) is not None:
            break
        bits[bit] = customer
    else:
        pytest.skip("no two neighbouring bits")
    asked: list[int] = []
    find = FirstRows.find

    def counted(self, keys):
        asked.append(len(keys))
        return find(self, keys)

    monkeypatch.setattr(FirstRows, "find", counted)
    planner = Planner(Validator(FIELDS, IdentifierType.ID))
    try:
        assert planner.classify([Record(1, ("B1", pair, "", "", ""))]) == [Row(1, "B1", pair)]
        (issuals,) = planner.classify([Record(2, ("B1", customer, "I2", "", ""))])
        assert isinstance(issuals, Row)
        asked.clear()
        assert planner.covering([issuals]) == {}
        assert planner.later_customers_rows([issuals]) == {}
        assert asked == [0, 0]
        (covered,) = planner.classify([Record(3, ("B1", pair, "I3", "", ""))])
        assert isinstance(covered, Row)
        assert planner.covering([covered]) == {3: 1}
    finally:
        planner.close()
