"""A dry run counts the requests a run would make without making its batches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_revoke.chunker import Planner
from batch_revoke.dryrun import Requests
from batch_revoke.model import Endpoint, Row

FIELDS = {"badgemetaid": 0, "customerid": 1, "issueid": 2, "earnedbadgeid": 3}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["B1", "B2", "B3"]), st.sampled_from(["", "I", "E"])),
        max_size=90,
    ),
    st.integers(1, 20),
    st.integers(1, 30),
)
def test_the_requests_counted_are_the_batches_the_planner_makes(rows, size, chunk):
    """Over chunks of any length: a badge's batch fills across chunks as it does in a run."""
    made = [
        Row(n, badge, str(n), f"I{n}" if kind == "I" else "", f"E{n}" if kind == "E" else "")
        for n, (badge, kind) in enumerate(rows, start=1)
    ]
    planner, counted = Planner(FIELDS, batch_size=size), Requests(size)
    batches = []
    for start in range(0, len(made), chunk):
        part = made[start : start + chunk]
        batches += [batch for row in part if (batch := planner.place(row)) is not None]
        counted.add(part)
    batches += planner.finish()
    planner.close()
    expected = dict.fromkeys(Endpoint, 0)
    for batch in batches:
        expected[batch.endpoint] += 1
    assert counted.finish() == expected
