from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from batch_revoke import source
from batch_revoke.config import RunConfig
from batch_revoke.errors import InputError
from batch_revoke.model import Record
from batch_revoke.source import Source, records


def scan(path: Path) -> Source:
    """The structure pass, as a run makes it."""
    return Source.open(RunConfig(path), whole=True)


@dataclass
class Read:
    columns: tuple[str, ...]
    field_index: dict[str, int]
    records: list[Record]


def read_input(path: Path) -> Read:
    """Both passes, as a run makes them: the structure pass, then the records streamed."""
    found = scan(path)
    with mock.patch.object(source, "CHUNK_ROWS", 2):
        listed = [record for chunk in records(path, found.stamp) for record in chunk]
    assert found.records == len(listed)
    return Read(found.columns, found.field_index, listed)


def test_values_stay_text_exactly_as_written(write_csv):
    path = write_csv(
        "badgeMetaId,customerId,issueId,amount\n"
        "B1,000777,,\n"
        "B1,98765432109876543210,0012,1001\n"
        "B1,1001,,\n"
    )
    table = read_input(path)
    assert [r.values for r in table.records] == [
        ("B1", "000777", "", ""),
        ("B1", "98765432109876543210", "0012", "1001"),
        ("B1", "1001", "", ""),
    ]


def test_bom_crlf_quotes_and_header_spelling(write_csv):
    path = write_csv(
        b'\xef\xbb\xbfBadge Meta ID,CUSTOMER_ID,issue-id,note\r\nB1,1,I1,"a, ""b""\r\nc"\r\n'
    )
    table = read_input(path)
    assert table.columns == ("Badge Meta ID", "CUSTOMER_ID", "issue-id", "note")
    assert table.field_index == {"badgemetaid": 0, "customerid": 1, "issueid": 2}
    assert table.records[0].values == ("B1", "1", "I1", 'a, "b"\r\nc')


def test_records_of_the_wrong_width_keep_their_place(write_csv):
    path = write_csv("badgeMetaId,customerId,note\nB1,1,x\nB1,2,x,extra\nB1\nB1,4,x\n")
    records = read_input(path).records
    assert [r.row for r in records] == [1, 2, 3, 4]
    assert records[1].defect.startswith("the record has 4 fields but the header has 3")
    assert "B1,2,x,extra" in records[1].defect
    assert records[2].defect == "the record has 1 fields but the header has 3"
    assert records[2].values == ("B1", "", "")
    assert not records[0].defect
    assert not records[3].defect


def test_a_chunk_of_broken_records_and_usual_ones_keeps_each_defect_on_its_record(write_csv):
    """A blank line makes a chunk from two blocks of lines: one with a broken record, read
    record by record, then a usual one, kept as read. Each record keeps its own defect."""
    path = write_csv("badgeMetaId,customerId\nB1\n\nB1,2\nB1,3\nB1,4,x\nB1,5\n")
    with mock.patch.object(source, "CHUNK_ROWS", 3):
        chunks = list(records(path))
    assert [len(chunk) for chunk in chunks] == [3, 2]
    listed = [record for chunk in chunks for record in chunk]
    assert [r.row for r in listed] == [1, 2, 3, 4, 5]
    assert [bool(r.defect) for r in listed] == [True, False, False, True, False]
    assert [r.values for r in listed] == [
        ("B1", ""),
        ("B1", "2"),
        ("B1", "3"),
        ("B1", "4"),
        ("B1", "5"),
    ]
    assert [chunks[0][index] for index in range(3)] == listed[:3]


@pytest.mark.parametrize(
    ("text", "by_identifier"),
    [
        pytest.param("badgeMetaId,customerId\nB1,1\n", False, id="no-type-column"),
        pytest.param("badgeMetaId,customerId,identifierType\nB1,1,\nB1,2, id\n", False, id="ids"),
        pytest.param(
            "badgeMetaId,customerId,earnedBadgeId,identifierType\nB1,919900000013,E1,mobile\n",
            False,
            id="earns-by-mobile",
        ),
        pytest.param(
            "badgeMetaId,customerId,identifierType\nB1,1\nB1,919900000013,Mobile\n",
            True,
            id="short-record-then-mobile",
        ),
        pytest.param(
            "badgeMetaId,customerId,earnedBadgeId,identifierType\nB1,a@b.c, ,email\n",
            True,
            id="blank-earned",
        ),
        pytest.param("badgeMetaId,customerId,identifierType\nB1,7,phone\n", True, id="bad-type"),
    ],
)
def test_the_structure_pass_tells_whether_a_record_may_need_a_customer_lookup(
    write_csv, text, by_identifier
):
    assert scan(write_csv(text)).by_identifier is by_identifier


def test_a_record_by_identifier_past_the_first_block_is_noticed(write_csv):
    lines = "".join(f"B1,{n},\n" for n in range(1, 12_001))
    path = write_csv(f"badgeMetaId,customerId,identifierType\n{lines}B1,a@b.c,email\n")
    found = scan(path)
    assert (found.records, found.by_identifier) == (12_001, True)


@pytest.mark.parametrize(
    ("column", "meant"),
    [("isueId", "issueId"), ("earnedBadge", "earnedBadgeId"), ("identifer type", "identifierType")],
)
def test_a_column_spelt_like_an_optional_one_is_refused_with_the_name_it_looks_like(
    write_csv, column, meant
):
    """Carried through untouched, a misspelt issueId would make its rows revoke every
    enrolment of the customer: the file is refused before anything is sent."""
    path = write_csv(f"badgeMetaId,customerId,{column},note\nB1,1,I1,x\n")
    with pytest.raises(InputError) as refused:
        scan(path)
    assert f"{column!r}" in refused.value.problem
    assert f"looks like {meant}" in refused.value.problem
    assert f"rename it {meant}" in refused.value.fix


@pytest.mark.parametrize(
    "header",
    [
        "badgeMetaId,customerId,note,ticket,issueDate,earned",
        "badgeMetaId,customerId,issueId,issue_id_old_system",
        # a result file fed back in: issued_ids is its own column, not a misspelt issueId
        "badgeMetaId,customerId,row,endpoint,status,error_code,error_message,issued_ids,"
        "http_status,attempts,resolved_customer_id,request_id",
    ],
)
def test_other_columns_are_carried_through(write_csv, header):
    width = header.count(",") + 1
    assert scan(write_csv(f"{header}\n" + ",".join(["B1", "1"] + [""] * (width - 2)) + "\n"))


def test_blank_lines_are_not_records(write_csv):
    path = write_csv("badgeMetaId,customerId\n\nB1,1\n\n\nB1,2\n")
    assert [r.values for r in read_input(path).records] == [("B1", "1"), ("B1", "2")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "no such file", id="missing"),
        pytest.param("", "the file is empty", id="empty"),
        pytest.param("\n\n", "the file is empty", id="only-blank-lines"),
        pytest.param("badgeMetaId,customerId\n", "header but no records", id="header-only"),
        pytest.param(
            "badge,customer\nB1,1\n", "required column badgeMetaId and customerId", id="no-required"
        ),
        pytest.param(
            "badgeMetaId,cust\nB1,1\n", "required column customerId not found", id="no-customer"
        ),
        pytest.param(b"PK\x03\x04rest", "Excel workbook", id="xlsx"),
        pytest.param(b"\x00\x01\x02binary", "binary file", id="binary"),
        pytest.param("badgeMetaId,customerId\nB1,1\n".encode("utf-16"), "UTF-16", id="utf-16"),
        pytest.param(b"badgeMetaId,customerId\nB1,\xe9t\xe9\n", "not UTF-8", id="latin-1"),
        pytest.param('badgeMetaId,customerId\nB1,"1\n', "never closed", id="open-quote-last"),
        # The records after an unclosed quote would vanish into one field: refuse, never drop.
        pytest.param(
            'badgeMetaId,customerId\nB0,0\nB1,"1\nB2,2\n',
            "never closed (in the record that starts on line 3; found at line 4)",
            id="open-quote-mid",
        ),
        pytest.param(
            'badgeMetaId,customerId\nB1,"1"2\n', "broken quoting (line 2)", id="text-after-quote"
        ),
        # A quote opened in one record and met again lines later: both lines are named.
        pytest.param(
            'badgeMetaId,customerId,note\nB0,0,a\nB1,"1,b\nB2,2,c\nB3,3,"d"\n',
            "broken quoting (in the record that starts on line 3; found at line 5)",
            id="quote-met-later",
        ),
        pytest.param(
            "badgeMetaId,customer_id,customerId\nB1,1,1\n", "both mean customerId", id="twice"
        ),
    ],
)
def test_unusable_files_are_refused_with_the_problem_and_fix(
    write_csv, tmp_path, content, expected
):
    path = tmp_path / "missing.csv" if content is None else write_csv(content)
    with pytest.raises(InputError) as caught:
        read_input(path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert ";" in message  # every refusal says how to fix it


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_input(tmp_path)


def test_the_structure_pass_digests_every_byte_of_the_file(write_csv):
    path = write_csv("badgeMetaId,customerId\nB1,1\n\n\n")
    assert scan(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_changed_after_the_structure_pass_is_refused(write_csv):
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    found = scan(path)
    path.write_text("badgeMetaId,customerId\nB1,1\nB1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="changed since"):
        next(records(path, found.stamp))


def test_a_huge_field_is_named_for_what_it_is(write_csv):
    path = write_csv("badgeMetaId,customerId\nB1,1\nB1," + "9" * 2_000_000 + "\nB1,3\n")
    with pytest.raises(InputError) as caught:
        scan(path)
    assert "a field is longer than 1,000,000 characters (line 3)" in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("badgeMetaId;customerId;note\nB1;000777;a, b\n", id="semicolons"),
        pytest.param("badgeMetaId\tcustomerId\tnote\nB1\t000777\ta, b\n", id="tabs"),
        pytest.param("sep=;\nbadgeMetaId;customerId;note\nB1;000777;a, b\n", id="excel-sep-line"),
        pytest.param("\nSEP=|\nbadgeMetaId|customerId|note\nB1|000777|a, b\n", id="sep-pipe"),
    ],
)
def test_spreadsheet_separators_are_detected(write_csv, content):
    table = read_input(write_csv(content))
    assert table.columns == ("badgeMetaId", "customerId", "note")
    assert [r.values for r in table.records] == [("B1", "000777", "a, b")]


def test_line_numbers_count_the_sep_line(write_csv):
    with pytest.raises(InputError, match="starts on line 4; found at line 5"):
        scan(write_csv('sep=;\nbadgeMetaId;customerId\nB0;0\nB1;"1\nB2;2\n'))
