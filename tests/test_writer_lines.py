"""Result lines joined without csv.writer are byte for byte what csv.writer writes, whatever
the fields hold (commas, quotes, line breaks, a bare CR, NUL, spaces)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_revoke.model import Chunk, Record
from batch_revoke.writer import _inert, result_header, write_results

FIELD = st.one_of(
    st.sampled_from(["", "B1", "100200300", "T7", " padded ", "-1", "=SUM(A1)"]),
    st.text(alphabet=st.sampled_from(list('ab ,"\r\n\x00\t;=é')), max_size=6),
)


def by_csv_writer(columns: tuple[str, ...], rows: list[tuple[Record, list[str]]], excel: bool):
    """The result file as csv.writer writes it, line by line (how it was written before)."""
    handle = io.StringIO(newline="")
    out = csv.writer(handle, lineterminator="\n")
    guarded = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if excel:
        handle.write("\ufeff")
    out.writerow([_inert(name) if excel else name for name in result_header(columns)])
    for record, cells in rows:
        line = [*record.values, str(record.row), *cells]
        if excel:
            line = [_inert(value) for value in line]
        (guarded if "\r" in "".join(line) else out).writerow(line)
    return handle.getvalue()


# Lines of three input fields and seven result cells.
LINES = st.lists(
    st.tuples(st.lists(FIELD, min_size=3, max_size=3), st.lists(FIELD, min_size=7, max_size=7)),
    max_size=30,
)
COLUMNS = ("badgeMetaId", "customerId", "note")


@settings(max_examples=300, deadline=None)
@given(
    LINES,
    st.booleans(),
    st.sampled_from([1, 2, 7, 4096]),
)
def test_result_lines_are_what_csv_writes(tmp_path_factory, lines, excel, part):
    rows = [(Record(n, tuple(values)), cells) for n, (values, cells) in enumerate(lines, 1)]
    path = Path(tmp_path_factory.mktemp("out")) / "result.csv"
    # Parts of any size, so that a part mixes lines that need quotes with lines that do not.
    slices = [rows[at : at + part] for at in range(0, len(rows), part)]
    parts = [([record for record, _ in piece], [cells for _, cells in piece]) for piece in slices]
    write_results(path, COLUMNS, parts, excel=excel)
    assert path.read_bytes().decode("utf-8") == by_csv_writer(COLUMNS, rows, excel)


@settings(max_examples=100, deadline=None)
@given(
    LINES,
    st.booleans(),
)
def test_a_chunk_held_as_columns_writes_the_same_lines(tmp_path_factory, lines, excel):
    """A dry run hands the writer the reader's chunks, whose records are columns."""
    rows = [(Record(n, tuple(values)), cells) for n, (values, cells) in enumerate(lines, 1)]
    chunk = Chunk([list(values) for values, _ in lines], list(range(1, len(lines) + 1)))
    path = Path(tmp_path_factory.mktemp("out")) / "result.csv"
    write_results(path, COLUMNS, [(chunk, [cells for _, cells in lines])], excel=excel)
    assert path.read_bytes().decode("utf-8") == by_csv_writer(COLUMNS, rows, excel)
