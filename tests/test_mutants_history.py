"""What `report` reads of a run from its files (batch_revoke/history.py): a journal written by an
earlier version, which kept no timeline, still gives the run over time (each row placed by when
its latest request left, each first send a call), when it began and ended, and says plainly what
it cannot know."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from batch_revoke.history import read_journal
from batch_revoke.journal_db import SCHEMA

OLDER_NOTE = (
    "This journal was written by an earlier version, which kept no timeline: rows are placed by "
    "when their request left, and calls, throttling, pauses and pace over time are unavailable."
)


def older_journal(
    path: Path,
    requests: list[tuple[list[int], float]],
    outcomes: dict[int, str],
    created: float | None = 1000.0,
) -> Path:
    """A journal as a version before the timeline wrote it: no sessions, no timeline; each
    request (its rows, when it left) and each row's outcome."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    meta = {"input_sha256": "ab" * 32, "input": "in.csv", "options": "{}", "state": "finished"}
    if created is not None:
        meta["created"] = str(created)
    db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    db.executemany(
        "INSERT INTO requests (endpoint, badge, rows, sent_at) VALUES ('revokeIssue', 'B', ?, ?)",
        [(json.dumps(rows), at) for rows, at in requests],
    )
    db.executemany(
        "INSERT INTO outcomes (row, status, endpoint, error_code, error_message, issued_ids, "
        "attempts, settled) VALUES (?, ?, 'revokeIssue', '', '', '[]', 1, 1)",
        outcomes.items(),
    )
    db.commit()
    db.close()
    return path


def test_an_older_journal_places_each_row_by_its_latest_request_and_counts_first_sends(tmp_path):
    path = older_journal(
        tmp_path / "older.journal",
        # rows 1 and 2 at 10 s, row 3 at 20 s, row 2 sent again at 30 s
        [([1, 2], 1010.0), ([3], 1020.0), ([2], 1030.0)],
        {1: "revoked", 2: "failed", 3: "unconfirmed", 4: "invalid"},  # row 4 never sent
    )
    facts = read_journal(path, result_mtime=1040.0)
    timeline = facts.timeline
    assert timeline.note == OLDER_NOTE
    assert timeline.exact is False
    (session,) = timeline.sessions
    assert session.number == 1
    assert session.exact is False
    assert (session.started, session.ended) == (1000.0, 1040.0)  # the result file is last
    assert session.width == 1
    by_second = {
        int(bucket.start): (bucket.revoked, bucket.not_revoked, bucket.calls)
        for bucket in session.buckets
        if bucket.revoked or bucket.not_revoked or bucket.calls
    }
    assert by_second == {10: (1, 0, 1), 20: (0, 1, 1), 30: (0, 1, 1)}
    assert (session.total("revoked"), session.total("not_revoked")) == (1, 2)
    assert session.total("calls") == 3
    # What it cannot know stays empty, not guessed.
    assert session.total("throttled") == session.total("retries") == 0
    assert all(bucket.pace is None for bucket in session.buckets)
    assert facts.requests == {"revokeIssue": 3}


@pytest.mark.parametrize(("created", "started"), [(1000.0, 1000.0), (None, 1010.0)])
def test_an_older_journal_of_one_request_begins_when_the_run_was_created_or_else_at_it(
    tmp_path, created, started
):
    path = older_journal(tmp_path / "one.journal", [([1], 1010.0)], {}, created=created)
    (session,) = read_journal(path).timeline.sessions
    assert (session.started, session.ended) == (started, 1010.0)
    assert session.total("calls") == 1
    assert session.total("revoked") == 0


def test_an_older_journal_that_sent_nothing_has_no_sessions_and_says_why(tmp_path):
    path = older_journal(tmp_path / "empty.journal", [], {1: "invalid"})
    timeline = read_journal(path, result_mtime=1040.0).timeline
    assert timeline.sessions == ()
    assert timeline.buckets == ()
    assert timeline.note == OLDER_NOTE


def test_an_older_journal_whose_outcomes_cannot_be_read_still_opens(tmp_path):
    path = older_journal(tmp_path / "odd.journal", [([1], 1010.0)], {1: "revoked"})
    db = sqlite3.connect(path)
    db.execute("DROP TABLE outcomes")
    db.commit()
    db.close()
    facts = read_journal(path)
    assert facts.timeline.sessions == ()
    assert facts.timeline.note == OLDER_NOTE
    assert facts.requests == {"revokeIssue": 1}
