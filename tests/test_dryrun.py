"""A dry run counts the requests a run would make without making its batches."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_revoke.chunker import Planner
from batch_revoke.dryrun import Requests
from batch_revoke.model import Endpoint, Row

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["B1", "B2", "B3"]), st.sampled_from(["", "I", "E"])),
        max_size=90,
    ),
    st.integers(1, 20),
    st.lists(st.integers(0, 90), max_size=4),
)
def test_the_requests_counted_are_the_batches_the_planner_makes(rows, size, cuts):
    made = [
        Row(n, badge, str(n), f"I{n}" if kind == "I" else "", f"E{n}" if kind == "E" else "")
        for n, (badge, kind) in enumerate(rows, start=1)
    ]
    planner, counted = Planner(FIELDS, batch_size=size), Requests(size)
    batches = []
    edges = [0, *sorted(cuts), len(made)]
    for start, end in itertools.pairwise(edges):  # chunks of any size, some empty
        part = made[start:end]
        batches += [batch for row in part if (batch := planner.place(row)) is not None]
        counted.add(part)
    batches += planner.finish()
    planner.close()
    expected = {endpoint: 0 for endpoint in Endpoint}
    for batch in batches:
        expected[batch.endpoint] += 1
    assert counted.finish() == expected
