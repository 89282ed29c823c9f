"""What a run left behind, read back for its report: the result file's counts and the rows
that need a person, and the journal's sessions (the run over time)."""

from __future__ import annotations

import bisect
import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from batch_revoke.errors import InputError
from batch_revoke.journal import Point, options_of, read_run
from batch_revoke.model import CALLS, Counts, ErrorCode, Status
from batch_revoke.source import canonical
from batch_revoke.writer import INCOMPLETE, RESULT_COLUMNS, result_columns_at

ROWS_PER_GROUP = 200  # rows listed per reason: the result file has them all
MAX_GROUPS = 40  # reasons listed with their rows; more are counted in the table only
MAX_MESSAGE = 300  # characters of an error message shown per row
MAX_BUCKETS = 90  # columns of a chart of the run over time
BUCKET_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)

# What the report lists row by row: the rows a person must look at.
NEED_A_PERSON = (Status.FAILED, Status.UNCONFIRMED, Status.INVALID, Status.NOT_ATTEMPTED)
_AS_ROW = re.compile(r"\bas row (\d+)\b")
_SHOWN_FIELDS = ("badgemetaid", "customerid", "issueid", "earnedbadgeid")  # as reader names them

# --- the data --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownRow:
    row: int
    badge: str
    customer: str
    ids: str  # issueId or earnedBadgeId
    message: str
    request_id: str = ""  # of the answer that decided the row ("" when none did)
    resolved: str = ""  # resolved_customer_id: the id a lookup found for the customer


@dataclass(slots=True)
class Group:
    """Rows that need a person for one reason (a status and an error code)."""

    status: Status
    code: str
    rows: int = 0
    shown: list[ShownRow] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.rows - len(self.shown)


@dataclass(frozen=True, slots=True)
class Results:
    path: Path
    total: int  # its rows, one whose status or number does not read included
    counts: Counts
    groups: list[Group]  # most rows first, at most MAX_GROUPS
    stopped_reason: str  # from rows the run never sent
    stopped_in_flight: int
    # A run of an earlier result file (`retry`): per earlier (status, code), its rows now.
    lineage: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    @property
    def by_code(self) -> list[tuple[Status, str, int]]:
        """Rows per status and error code, most rows first; one code's statuses in status
        order (the summary, whose text must not change, keeps them in the order first met)."""
        ranked = sorted(self.counts.by_error.items(), key=lambda i: (-i[1], i[0][1], i[0][0]))
        return [(status, code, rows) for (status, code), rows in ranked]

    @property
    def dry_run(self) -> bool:
        return Status.PLANNED in self.counts.by_status

    @property
    def not_revoked(self) -> int:
        return sum(self.counts.by_status.get(status, 0) for status in NEED_A_PERSON)

    @property
    def shows_resolved(self) -> bool:
        return any(row.resolved for group in self.groups for row in group.shown)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One column of the run over time: what happened from `start` seconds of running time."""

    start: float
    counts: Counts
    pace: float | None  # calls per column the run kept to at the column's end
    session: int  # the session the column begins in


def _total(counts: Iterable[Counts], name: str) -> float:
    return float(getattr(sum(counts, Counts()), "http_calls" if name == "calls" else name))


@dataclass(frozen=True, slots=True)
class Session:
    number: int
    started: float  # wall-clock seconds
    ended: float
    steps: tuple[Point, ...]  # `at` seconds after it began: rows, and calls since the step before
    at: float = 0.0  # on the run's axis (Timeline.marks): the running time drawn before it

    @property
    def seconds(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def sent_nothing(self) -> bool:
        """No call made and no row settled: a resume of a finished run, say."""
        return not any(self.total(name) for name in ("calls", "revoked", "not_revoked"))

    def total(self, name: str) -> float:
        return _total((counts for _, counts, _ in self.steps), name)


@dataclass(frozen=True, slots=True)
class Timeline:
    """The run over time: the sessions that sent something one after another on one axis of
    running time (the time between them left out), so a run resumed many times reads as one."""

    sessions: tuple[Session, ...]
    width: int = 1  # seconds per column
    buckets: tuple[Bucket, ...] = ()
    marks: tuple[Session, ...] = ()  # the sessions drawn, each `at` where it begins

    @classmethod
    def of(cls, sessions: Sequence[Session]) -> Timeline:
        marks: list[Session] = []
        steps: list[Point] = []
        at = 0.0
        for session in sessions:
            if session.sent_nothing:
                continue  # listed with the sessions, not drawn: it would be an empty stretch
            marks.append(replace(session, at=at))
            steps += [(at + began, counts, pace) for began, counts, pace in session.steps]
            at += session.seconds
        if not marks:
            return cls(tuple(sessions))
        width = bucket_seconds(at)
        return cls(tuple(sessions), width, _columns(steps, at, width, marks), tuple(marks))

    @property
    def seconds(self) -> float:
        return sum(mark.seconds for mark in self.marks)

    def total(self, name: str) -> float:
        return _total((bucket.counts for bucket in self.buckets), name)


@dataclass(frozen=True, slots=True)
class JournalFacts:
    path: Path
    input: str
    options: dict[str, str]
    created: float | None
    finished: bool
    counts: Counts  # the whole run's calls, as last recorded, and its requests
    timeline: Timeline
    retry_of: str = ""  # `retry`: the earlier result file its rows come from


# --- reading the result file -----------------------------------------------------------


def read_results(path: Path) -> Results:
    """Counts per status and per code, and the first rows of each reason that needs a person,
    streamed: memory grows by one byte a row (was a duplicate's original row revoked?)."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(
            path, exc.strerror or str(exc), "pass a result file of batch-revoke"
        ) from exc
    with handle:
        first = handle.readline()
        if first.startswith(f"{INCOMPLETE}:"):
            raise InputError(
                path,
                "the result file is marked INCOMPLETE: its run has not finished writing it",
                first.partition("to finish it: ")[2].strip() or "resume the run first",
            )
        handle.seek(0)
        reader = csv.reader(handle, strict=True)
        header = next(reader, None)
        base = None if header is None else result_columns_at(path, header)
        if header is None or base is None:
            raise InputError(
                path,
                "not a batch-revoke result file (its last columns are not "
                f"{', '.join(RESULT_COLUMNS)})",
                "pass the result CSV a run wrote",
            )
        return _tally(path, reader, header, base)


def _tally(path: Path, reader: Iterable[list[str]], header: list[str], base: int) -> Results:
    fields = {canonical(name): i for i, name in enumerate(header[:base])}
    at = {name: base + i for i, name in enumerate(RESULT_COLUMNS)}
    width, message_at = base + len(RESULT_COLUMNS), at["error_message"]
    by_status: dict[Status, int] = {}
    by_code: dict[tuple[Status, str], int] = {}
    groups: dict[tuple[Status, str], Group] = {}
    revoked = bytearray()  # revoked[row]: 1 when that row was revoked
    duplicates: list[int] = []  # the rows duplicates repeat, whose originals are not yet seen
    stopped_reason, in_flight, total = "", 0, 0
    lineage: dict[tuple[str, str], dict[str, int]] = {}
    was_status, was_code = fields.get("inputstatus"), fields.get("inputerrorcode")

    try:
        for cells in reader:
            if len(cells) != width:
                continue  # not one of ours: the writer writes every line whole
            total += 1
            try:
                status = Status(cells[at["status"]])
                row = int(cells[at["row"]])
            except ValueError:
                continue
            by_status[status] = by_status.get(status, 0) + 1
            code = cells[at["error_code"]]
            if was_status is not None and was_code is not None:
                now = lineage.setdefault((cells[was_status], cells[was_code]), {})
                now[status.value] = now.get(status.value, 0) + 1
            if status is Status.REVOKED:
                if row >= len(revoked):
                    revoked.extend(bytes(row + 1 - len(revoked)))
                revoked[row] = 1
            elif status is Status.DUPLICATE and (found := _AS_ROW.search(cells[message_at])):
                duplicates.append(int(found.group(1)))
            if code == ErrorCode.RUN_ABORTED:
                if status is Status.NOT_ATTEMPTED and not stopped_reason:
                    stopped_reason = cells[message_at].removeprefix("not sent: ")
                elif status is Status.UNCONFIRMED:
                    in_flight += 1
            if not code:
                continue
            by_code[(status, code)] = by_code.get((status, code), 0) + 1
            if status not in NEED_A_PERSON:
                continue
            group = groups.setdefault((status, code), Group(status, code))
            group.rows += 1
            if len(group.shown) < ROWS_PER_GROUP:
                badge, customer, issue, earned = (
                    cells[fields[name]] if name in fields else "" for name in _SHOWN_FIELDS
                )
                request, resolved = cells[at["request_id"]], cells[at["resolved_customer_id"]]
                message = cells[message_at]
                if len(message) > MAX_MESSAGE:
                    message = message[: MAX_MESSAGE - 1] + "…"
                shown = ShownRow(row, badge, customer, issue or earned, message, request, resolved)
                group.shown.append(shown)
    except csv.Error as exc:
        raise InputError(
            path, f"not a readable CSV ({exc})", "pass the result CSV a run wrote"
        ) from exc
    pending = sum(1 for row in duplicates if row >= len(revoked) or not revoked[row])
    return Results(
        path,
        total,
        Counts(
            {status: by_status[status] for status in Status if status in by_status},
            by_code,
            duplicates_pending=pending,
        ),
        sorted(groups.values(), key=lambda g: (-g.rows, g.status.value, g.code))[:MAX_GROUPS],
        stopped_reason,
        in_flight,
        lineage,
    )


# --- reading the journal ---------------------------------------------------------------


def read_journal(path: Path, result_mtime: float | None = None) -> JournalFacts:
    """The run as its journal tells it; ValueError (or OSError) for a file that is not one."""
    record = read_run(path)
    meta = record.meta
    last = len(record.sessions) - 1
    sessions = [
        _session(position + 1, started, points, result_mtime if position == last else None)
        for position, (started, points) in enumerate(record.sessions)
    ]
    return JournalFacts(
        path,
        meta.get("input", ""),
        options_of(meta),
        float(meta["created"]) if meta.get("created") else None,
        meta.get("state") == "finished",
        record.counts,
        Timeline.of(sessions),
        meta.get("retry_of", ""),
    )


def _session(number: int, started: float, points: list[Point], end_hint: float | None) -> Session:
    """A session from its points, whose call counts are the session's so far."""
    ended = max([started, *(at for at, _, _ in points)])
    if end_hint is not None and started <= end_hint <= ended + 3600:
        ended = max(ended, end_hint)  # the result file is written last; a copy may be later
    steps: list[Point] = []
    previous = Counts()
    for at, counts, pace in points:
        calls = {name: max(0, getattr(counts, name) - getattr(previous, name)) for name in CALLS}
        steps.append((at - started, replace(counts, **calls), pace))
        previous = counts
    return Session(number, started, ended, tuple(steps))


def _columns(
    steps: Sequence[Point], span: float, width: int, marks: Sequence[Session]
) -> tuple[Bucket, ...]:
    """Steps (`at` on one axis, `span` seconds long) summed in columns `width` seconds wide."""
    count = max(1, math.ceil(span / width))
    sums: list[Counts | None] = [None] * count
    paces: list[float | None] = [None] * count
    for at, counts, pace in steps:
        index = min(count - 1, max(0, int(at // width)))
        into = sums[index]
        sums[index] = counts if into is None else into + counts
        paces[index] = pace * width if pace else None
    # A bucket without points keeps the pace of the one before it.
    for index in range(1, count):
        if sums[index] is None and paces[index] is None:
            paces[index] = paces[index - 1]
    begins = [mark.at for mark in marks]
    return tuple(
        Bucket(
            index * width,
            into or Counts(),
            paces[index],
            marks[max(0, bisect.bisect_right(begins, index * width) - 1)].number,
        )
        for index, into in enumerate(sums)
    )


def bucket_seconds(span: float) -> int:
    """The narrowest readable column width that draws `span` in MAX_BUCKETS; at least a
    minute once the span is 10 minutes, so rates read per minute, as limits are."""
    for width in BUCKET_SECONDS:
        if span <= width * MAX_BUCKETS and (width >= 60 or span < 600):
            return width
    return math.ceil(span / MAX_BUCKETS / 86400) * 86400
