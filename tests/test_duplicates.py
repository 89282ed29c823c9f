"""Duplicates found in memory give exactly the verdicts of the on-disk set: the same rows
marked, each naming the same (earliest) row, before and past the size where the rest of the
file goes to disk."""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_revoke import duplicates
from batch_revoke.chunker import Planner, Validator
from batch_revoke.duplicates import FirstRows, SeenRows
from batch_revoke.model import Record, Row, RowOutcome, Status

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3, "identifiertype": 4}

# Sizes past which the rest goes to disk: at once, part-way through a file, never.
MEMORY_SIZES = [0, 1, 3, 17, 10**9]


def memory_rows_of(memory_rows: int) -> Any:
    """While it lasts, duplicates are held in memory up to `memory_rows` identities."""
    return mock.patch.object(duplicates, "MEMORY_ROWS", memory_rows)


# Few distinct hashes, so first hashes collide with and without their second hash agreeing.
KEYS = st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 2)), max_size=40)
CHUNKS = st.lists(KEYS, max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    CHUNKS,
    st.sampled_from(MEMORY_SIZES),
    st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 2))),
)
def test_first_rows_agree_with_the_on_disk_set_for_any_identities(chunks, memory_rows, asked):
    with memory_rows_of(memory_rows):
        on_disk, in_memory = SeenRows(), FirstRows()
        try:
            row = 0
            for keys in chunks:
                rows = list(range(row + 1, row + 1 + len(keys)))
                row += len(keys)
                expected = on_disk.duplicates(
                    [(h, h2, r) for (h, h2), r in zip(keys, rows, strict=True)]
                )
                got = in_memory.duplicates([h for h, _ in keys], [h2 for _, h2 in keys], rows)
                assert got == expected
                assert in_memory.find(asked) == on_disk.find(asked)
        finally:
            on_disk.close()
            in_memory.close()


@memory_rows_of(2)
def test_an_identity_held_in_memory_is_found_after_the_rest_went_to_disk():
    seen = FirstRows()
    try:
        assert seen.duplicates([5, 6], [1, 1], [1, 2]) == {}
        # Full now: row 4 goes to disk, row 3 and row 5 name the rows held in memory.
        assert seen.duplicates([5, 7, 7, 5], [1, 1, 1, 2], [3, 4, 5, 6]) == {3: 1, 5: 4}
        assert seen.find([(5, 1), (7, 1), (5, 2), (9, 9)]) == [1, 4, 6, None]
    finally:
        seen.close()


# Rows of a few badges and customers, each spelled several ways (zeros, spaces, case of the
# identifier type), so the same request turns up often and in other spellings.
ROWS = st.tuples(
    st.sampled_from(["B1", "B2", " B1"]),
    st.sampled_from(["7", "007", "8", " 8", "919900000013", "+91 99000 00013"]),
    st.sampled_from(["", "", "I1", "I2"]),
    st.sampled_from(["", "", "", "E1"]),
    st.sampled_from(["", "", "mobile", "Mobile", "id", "email"]),
)


def verdicts(chunks: list[list[Record]]) -> list[object]:
    found: list[object] = []
    planner = Planner(Validator(FIELDS))
    try:
        for chunk in chunks:
            decided = planner.classify(chunk)
            rows = [v for v in decided if isinstance(v, Row)]
            found += [*decided, planner.covering(rows), planner.later_customers_rows(rows)]
    finally:
        planner.close()
    return found


@settings(max_examples=150, deadline=None)
@given(st.lists(ROWS, max_size=60), st.lists(st.integers(1, 25), min_size=1, max_size=8))
def test_a_file_gets_the_same_verdicts_in_memory_and_on_disk(values, sizes):
    records = [Record(n, v) for n, v in enumerate(values, start=1)]
    chunks, start = [], 0
    for size in sizes * (len(records) // sum(sizes) + 1):
        if start >= len(records):
            break
        chunks.append(records[start : start + size])
        start += size
    with memory_rows_of(0):
        expected = verdicts(chunks)  # every row on disk
    for memory_rows in MEMORY_SIZES[1:]:
        with memory_rows_of(memory_rows):
            assert verdicts(chunks) == expected
    # And each duplicate names the earliest row of the same request.
    validate = Validator(FIELDS)
    first: dict[tuple[object, ...], int] = {}
    decided = [v for v in expected if isinstance(v, (Row, RowOutcome))]
    for record, verdict in zip(records, decided, strict=True):
        row = validate(record)
        if not isinstance(row, Row):
            continue
        # An earned badge is one earn of its badge, whoever the row names as its customer.
        key = (
            (row.badge_meta_id, row.earned_badge_id)
            if row.earned_badge_id
            else (
                row.badge_meta_id,
                row.customer_key,
                row.issue_id,
                row.earned_badge_id,
                row.identifier_type,
            )
        )
        if isinstance(verdict, Row):
            assert key not in first
            first[key] = verdict.row
        else:
            assert verdict.status is Status.DUPLICATE
            assert verdict.duplicate_of == first[key]
