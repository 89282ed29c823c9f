"""A chunk validated a column at a time gets exactly the verdicts of the Validator called on
each record, whatever the records hold and whichever columns the file has."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_revoke.chunker import Validator
from batch_revoke.model import Chunk, IdentifierType, Record

IDS = st.sampled_from(
    ["B1", "B1", "5b0001", " B1", "B 1", "B1\t", "", " ", "ü", "a,b", "=A1", "x" * 250, "\u00a0B"]
)
CUSTOMERS = st.sampled_from(
    [
        "7",
        "007",
        "0",
        "000",
        "100200300",
        " 8",
        "8 ",
        "",
        "1e5",
        "9" * 18,
        "9" * 19,
        "919900000013",
        "+91 99000 00013",
        "a@b.c",
        "\u0663",
        "12\n3",
        "0" * 300,
    ]
)
TYPES = st.sampled_from(["", "", "", "mobile", " ", "id", "email", "cardNumber", "nonsense"])
DEFECTS = st.sampled_from(["", "", "", "the record has 7 fields but the header has 5"])

# Column layouts: every known column, only the required ones, other orders and extra columns.
LAYOUTS = [
    {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3, "identifiertype": 4},
    {"badgemetaid": 0, "customerid": 1},
    {"customerid": 4, "badgemetaid": 2, "earnedbadgeid": 0},
    {"badgemetaid": 1, "customerid": 3, "issueid": 0, "identifiertype": 2},
]


@st.composite
def chunks(draw):
    size = draw(st.integers(0, 40))
    records = []
    for row in range(1, size + 1):
        values = [
            draw(IDS),
            draw(CUSTOMERS),
            draw(IDS),
            draw(st.sampled_from(["", "", "E1", " "])),
            draw(TYPES),
        ]
        records.append(Record(row, tuple(values), draw(DEFECTS)))
    return records


@settings(max_examples=400, deadline=None)
@given(
    chunks(),
    st.sampled_from(LAYOUTS),
    st.sampled_from(list(IdentifierType)),
    st.booleans(),
)
def test_a_chunk_gets_the_verdicts_of_its_records_one_by_one(records, layout, default, workbook):
    validate = Validator(layout, default, from_workbook=workbook)
    assert validate.many(records) == [validate(record) for record in records]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["B1", "B2"]),
            st.sampled_from(["7", "8", "007", "000"]),
            st.sampled_from(["", "I1", "I2"]),
            st.sampled_from(["", "", "E1"]),
        ),
        max_size=40,
    ),
    st.sampled_from(list(IdentifierType)),
)
def test_a_chunk_of_usual_records_gets_the_verdicts_of_its_records(values, default):
    records = [Record(row, (*fields, "")) for row, fields in enumerate(values, start=1)]
    validate = Validator(LAYOUTS[0], default)
    assert validate.many(records) == [validate(record) for record in records]


CLEAN = st.tuples(
    st.sampled_from(["B1", "B2"]),
    st.sampled_from(["7", "8", "007", "0", "000", "9" * 18]),
    st.sampled_from(["", "I1"]),
    st.sampled_from(["", "", "E1"]),
    st.just(""),
)
ODD = st.tuples(IDS, CUSTOMERS, IDS, st.sampled_from(["", "E1", " "]), TYPES)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(CLEAN, CLEAN, ODD), DEFECTS), max_size=40),
    st.sampled_from(list(IdentifierType)),
)
def test_usual_records_among_typed_and_broken_ones_get_their_own_verdicts(values, default):
    records = [Record(row, fields, defect) for row, (fields, defect) in enumerate(values, 1)]
    validate = Validator(LAYOUTS[0], default)
    assert validate.many(records) == [validate(record) for record in records]


@st.composite
def nearly_clean(draw):
    """A clean row with one field changed in one way the column checks must notice."""
    fields = list(draw(CLEAN))
    at = draw(st.integers(0, 3))
    if at == 1:
        fields[1] = draw(st.sampled_from([" 7", "7 ", "", "9" * 19, "\u0663", "1e5", "7\t"]))
    else:
        fields[at] = draw(st.sampled_from([" B1", "B1 ", "B 1", "B1\t", "\u00a0B", "", "x" * 257]))
    return tuple(fields)


TYPED = st.tuples(
    IDS, CUSTOMERS, IDS, st.sampled_from(["", "E1"]), st.sampled_from(["mobile", "id"])
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(CLEAN, TYPED), max_size=20),
    nearly_clean(),
    st.integers(0, 20),
    st.sampled_from(list(IdentifierType)),
)
def test_one_record_off_the_usual_path_gets_its_own_verdict(values, odd, at, default):
    """Among usual and typed records (which the column checks leave to the Validator), the
    one record that must fail a column check."""
    values.insert(min(at, len(values)), odd)
    records = [Record(row, fields) for row, fields in enumerate(values, start=1)]
    validate = Validator(LAYOUTS[0], default)
    assert validate.many(records) == [validate(record) for record in records]


def as_chunk(records: list[Record]) -> Chunk:
    """The records as the reader holds them: field lists and numbers as columns."""
    defects = [record.defect for record in records]
    return Chunk(
        [list(record.values) for record in records],
        [record.row for record in records],
        defects if any(defects) else None,
    )


@settings(max_examples=300, deadline=None)
@given(chunks(), st.sampled_from(LAYOUTS), st.sampled_from(list(IdentifierType)), st.booleans())
def test_a_chunk_held_as_columns_gets_the_verdicts_of_its_records(records, layout, default, book):
    chunk = as_chunk(records)
    assert list(chunk) == records
    assert [chunk[index] for index in range(len(chunk))] == records
    validate = Validator(layout, default, from_workbook=book)
    assert validate.many(chunk) == [validate(record) for record in records]
