"""The HTML report of a run: one self-contained file gathered from its result CSV (the counts,
the rows that need a person) and its journal when there is one (the run over time), drawn by
the Jinja2 template `templates/report.html.j2`. Gathering is plain data (`gather`), drawing
is the template's (`render`); `write_report` does both."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from batch_revoke.codes import STATUS_MEANINGS, Explanation, explain, nothing_done
from batch_revoke.errors import InputError, StorageError
from batch_revoke.journal import input_copy_path, journal_path
from batch_revoke.model import ErrorCode, ExitStatus, Status
from batch_revoke.reader import KNOWN_FIELDS, canonical
from batch_revoke.report import RunReport
from batch_revoke.writer import INCOMPLETE, RESULT_COLUMNS, write_text_atomically

ROWS_PER_GROUP = 200  # rows listed per reason: the result file has them all
MAX_GROUPS = 40  # reasons listed with their rows; more are counted in the table only
MAX_MESSAGE = 300  # characters of an error message shown per row
MAX_BUCKETS = 90  # columns of a chart of the run over time
BUCKET_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
SHOWN_SESSIONS = 6  # sessions charted; the others are listed only

_NEED_A_PERSON = (Status.FAILED, Status.UNCONFIRMED, Status.INVALID, Status.NOT_ATTEMPTED)
_AS_ROW = re.compile(r"\bas row (\d+)\b")
_SELECT = (
    'import csv,sys;f=open(sys.argv[1],newline="",encoding="utf-8-sig");'
    'r=csv.DictReader(f);w=csv.DictWriter(sys.stdout,r.fieldnames,lineterminator="\\n");'
    'w.writeheader();w.writerows(x for x in r if [x["status"],x["error_code"]]==sys.argv[2:])'
)

# --- the data --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownRow:
    row: int
    badge: str
    customer: str
    ids: str  # issueId or earnedBadgeId
    message: str


@dataclass(slots=True)
class Group:
    """Rows that need a person, for one reason: a status and an error code."""

    status: Status
    code: str
    explanation: Explanation
    rows: int = 0
    shown: list[ShownRow] = field(default_factory=list)
    select: str = ""  # the command that writes these rows to a CSV of their own
    retry: str = ""  # the command that sends them again, when that can help

    @property
    def more(self) -> int:
        return self.rows - len(self.shown)


@dataclass(frozen=True, slots=True)
class CodeCount:
    status: Status
    code: str
    rows: int
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class Results:
    """What the result file says: counts, and the first rows of each reason."""

    path: Path
    total: int
    by_status: dict[Status, int]
    by_code: list[CodeCount]  # most rows first
    groups: list[Group]  # most rows first, at most MAX_GROUPS
    stopped_reason: str  # from rows the run never sent ("" when none)
    stopped_in_flight: int  # rows in flight when the run stopped
    duplicates_pending: int  # duplicates whose original row is not revoked

    @property
    def revoked(self) -> int:
        return self.by_status.get(Status.REVOKED, 0)

    @property
    def stopped(self) -> bool:
        return bool(self.stopped_reason or self.stopped_in_flight)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One column of the run over time: what happened in [start, start + width) seconds."""

    start: float  # seconds after the session began
    revoked: int = 0
    not_revoked: int = 0
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    read_backs: int = 0
    pauses: int = 0
    paused_seconds: float = 0.0
    pace: float | None = None  # calls per bucket the run kept to at the bucket's end


@dataclass(frozen=True, slots=True)
class Session:
    number: int
    started: float  # wall-clock seconds
    ended: float
    width: int  # seconds per bucket
    buckets: tuple[Bucket, ...]
    exact: bool  # False: an older journal; rows are placed by when their request left

    @property
    def seconds(self) -> float:
        return max(0.0, self.ended - self.started)

    def total(self, name: str) -> float:
        return float(sum(getattr(bucket, name) for bucket in self.buckets))


@dataclass(frozen=True, slots=True)
class Timeline:
    sessions: tuple[Session, ...]
    note: str = ""  # what is missing, when something is


@dataclass(frozen=True, slots=True)
class JournalFacts:
    """What the journal says of the run as a whole."""

    path: Path
    input: str
    options: dict[str, str]
    created: float | None
    finished: bool
    counts: dict[str, int]
    requests: dict[str, int]
    timeline: Timeline


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the template draws, and nothing it must compute beyond scaling."""

    title: str
    generated: str
    results: Results
    journal: JournalFacts | None
    journal_note: str  # why the journal's parts are missing, when they are
    exit_status: ExitStatus
    exit_words: str
    stopped: bool
    stopped_reason: str
    finish_command: str
    settings: list[tuple[str, str]]
    started: str
    ended: str
    duration: str
    pace: str
    calls: dict[str, int]
    earlier_sessions: int  # resumes the run went through

    @property
    def not_revoked(self) -> int:
        by = self.results.by_status
        return sum(by.get(status, 0) for status in _NEED_A_PERSON)


# --- reading the result file -----------------------------------------------------------


def read_results(path: Path, per_group: int = ROWS_PER_GROUP) -> Results:
    """Counts per status and per code, and the first `per_group` rows of each reason that
    needs a person, streamed: memory does not grow with the file (but for one byte a row,
    to tell whether a duplicate's original row was revoked)."""
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
        if header is None or tuple(header[-len(RESULT_COLUMNS) :]) != RESULT_COLUMNS:
            raise InputError(
                path,
                "not a batch-revoke result file (its last columns are not "
                f"{', '.join(RESULT_COLUMNS)})",
                "pass the result CSV a run wrote",
            )
        fields = {
            canonical(name): index
            for index, name in enumerate(header[: -len(RESULT_COLUMNS)])
            if canonical(name) in KNOWN_FIELDS
        }
        return _tally(path, reader, len(header), fields, per_group)


def _tally(
    path: Path,
    reader: Iterable[list[str]],
    width: int,
    fields: dict[str, int],
    per_group: int,
) -> Results:
    base = width - len(RESULT_COLUMNS)
    row_at, status_at, code_at, message_at = base, base + 2, base + 3, base + 4
    by_status: dict[Status, int] = {}
    by_code: dict[tuple[Status, str], int] = {}
    groups: dict[tuple[Status, str], Group] = {}
    revoked = bytearray()  # revoked[row]: 1 when that row was revoked
    duplicates: list[int] = []  # the rows duplicates repeat, whose originals are not yet seen
    stopped_reason, in_flight, total = "", 0, 0

    def value(cells: list[str], name: str) -> str:
        index = fields.get(name)
        return cells[index] if index is not None and index < len(cells) else ""

    try:
        for cells in reader:
            if len(cells) != width:
                continue  # not one of ours: the writer writes every line whole
            total += 1
            try:
                status = Status(cells[status_at])
                row = int(cells[row_at])
            except ValueError:
                continue
            by_status[status] = by_status.get(status, 0) + 1
            code = cells[code_at]
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
            if status not in _NEED_A_PERSON:
                continue
            group = groups.get((status, code))
            if group is None:
                group = groups[(status, code)] = Group(status, code, explain(code))
            group.rows += 1
            if len(group.shown) < per_group:
                ids = value(cells, "issueid") or value(cells, "earnedbadgeid")
                message = cells[message_at]
                if len(message) > MAX_MESSAGE:
                    message = message[: MAX_MESSAGE - 1] + "…"
                group.shown.append(
                    ShownRow(
                        row, value(cells, "badgemetaid"), value(cells, "customerid"), ids, message
                    )
                )
    except csv.Error as exc:
        raise InputError(
            path, f"not a readable CSV ({exc})", "pass the result CSV a run wrote"
        ) from exc
    pending = sum(1 for row in duplicates if row >= len(revoked) or not revoked[row])
    ranked = sorted(by_code.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))
    return Results(
        path,
        total,
        {status: by_status[status] for status in Status if status in by_status},
        [CodeCount(status, code, rows, explain(code)) for (status, code), rows in ranked],
        sorted(groups.values(), key=lambda g: (-g.rows, g.status.value, g.code))[:MAX_GROUPS],
        stopped_reason,
        in_flight,
        pending,
    )


# --- reading the journal ---------------------------------------------------------------


def read_journal(path: Path, result_mtime: float | None = None) -> JournalFacts:
    """The run as its journal tells it, read-only. Raises sqlite3.Error or ValueError when
    the file is not a journal."""
    try:
        # Read-write though it only reads: the last connection to close removes the -wal and
        # -shm files, which a read-only one would leave beside the journal.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
    except sqlite3.OperationalError:  # a read-only folder or file
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if "input_sha256" not in meta:
            raise ValueError("no run recorded in it")
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        requests = dict(db.execute("SELECT endpoint, COUNT(*) FROM requests GROUP BY endpoint"))
        created = float(meta["created"]) if meta.get("created") else None
        if {"sessions", "timeline"} <= tables:
            timeline = _timeline(db, result_mtime)
        else:
            timeline = _timeline_from_requests(db, created, result_mtime)
        return JournalFacts(
            path,
            meta.get("input", ""),
            json.loads(meta.get("options") or "{}"),
            created,
            meta.get("state") == "finished",
            {k: int(v) for k, v in json.loads(meta.get("counts") or "{}").items()},
            {str(k): int(v) for k, v in requests.items()},
            timeline,
        )
    finally:
        db.close()


@dataclass(frozen=True, slots=True)
class Point:
    """A row of the journal's timeline: the session's totals at `at`, and the rows settled."""

    at: float
    revoked: int = 0
    not_revoked: int = 0
    http_calls: int = 0
    retries: int = 0
    throttled: int = 0
    read_backs: int = 0
    pauses: int = 0
    paused_seconds: float = 0.0
    pace: int | None = None
    window: float | None = None


def _timeline(db: sqlite3.Connection, result_mtime: float | None) -> Timeline:
    started = db.execute("SELECT id, started FROM sessions ORDER BY id").fetchall()
    sessions = []
    for position, (number, start) in enumerate(started):
        points = [
            Point(*values)
            for values in db.execute(
                "SELECT at, revoked, not_revoked, http_calls, retries, throttled, read_backs, "
                "pauses, paused_seconds, pace, window FROM timeline WHERE session = ? ORDER BY at",
                (number,),
            )
        ]
        last = position == len(started) - 1
        sessions.append(session_of(position + 1, start, points, result_mtime if last else None))
    return Timeline(tuple(sessions))


def _timeline_from_requests(
    db: sqlite3.Connection, created: float | None, result_mtime: float | None
) -> Timeline:
    """A journal written before the timeline: rows revoked and requests sent over time, each
    row placed by when its latest request left; calls, throttling and pace are not known."""
    note = (
        "This journal was written by an earlier version, which kept no timeline: rows are "
        "placed by when their request left, and calls, throttling, pauses and pace over time "
        "are unavailable."
    )
    try:
        found = db.execute(
            "SELECT MAX(r.sent_at), o.status FROM requests AS r, json_each(r.rows) AS j "
            "JOIN outcomes AS o ON o.row = j.value GROUP BY o.row"
        ).fetchall()
        sent = [at for (at,) in db.execute("SELECT sent_at FROM requests ORDER BY sent_at")]
    except sqlite3.Error:
        return Timeline((), note)
    points = [
        Point(
            at,
            revoked=int(status == Status.REVOKED),
            not_revoked=int(status in (Status.FAILED, Status.UNCONFIRMED)),
        )
        for at, status in found
    ]
    points += [Point(at, http_calls=1) for at in sent]  # first sends, one each
    points.sort(key=lambda p: p.at)
    if not points:
        return Timeline((), note)
    start = min(created or points[0].at, points[0].at)
    session = session_of(1, start, points, result_mtime, cumulative=False)
    return Timeline((session,), note)


def session_of(
    number: int,
    started: float,
    points: list[Point],
    end_hint: float | None = None,
    *,
    cumulative: bool = True,
) -> Session:
    """A session's points in buckets. `cumulative`: the points' call counts are the session's
    totals so far (the timeline's), else each point's own (an older journal's requests)."""
    ended = max([started, *(p.at for p in points)])
    if end_hint is not None and started <= end_hint <= ended + 3600:
        ended = max(ended, end_hint)  # the result file is written last; a copy may be later
    width = bucket_seconds(ended - started)
    count = max(1, math.ceil((ended - started) / width)) if points else 0
    sums: list[dict[str, float]] = [{} for _ in range(count)]
    paces: list[float | None] = [None] * count
    previous = Point(started)
    for point in points:
        index = min(count - 1, max(0, int((point.at - started) // width)))
        into = sums[index]
        step = _step(previous, point) if cumulative else _own(point)
        for name, amount in step.items():
            into[name] = into.get(name, 0) + amount
        if cumulative:
            previous = point
            if point.pace and point.window:
                paces[index] = point.pace * width / point.window
            else:
                paces[index] = None
    # A bucket without points keeps the pace of the one before it.
    for index in range(1, count):
        if not sums[index] and paces[index] is None:
            paces[index] = paces[index - 1]
    buckets = tuple(
        Bucket(
            start=index * width,
            revoked=int(into.get("revoked", 0)),
            not_revoked=int(into.get("not_revoked", 0)),
            calls=int(into.get("http_calls", 0)),
            retries=int(into.get("retries", 0)),
            throttled=int(into.get("throttled", 0)),
            read_backs=int(into.get("read_backs", 0)),
            pauses=int(into.get("pauses", 0)),
            paused_seconds=into.get("paused_seconds", 0.0),
            pace=paces[index],
        )
        for index, into in enumerate(sums)
    )
    return Session(number, started, ended, width, buckets, cumulative)


_TOTALS = ("http_calls", "retries", "throttled", "read_backs", "pauses", "paused_seconds")


def _step(previous: Point, point: Point) -> dict[str, float]:
    step: dict[str, float] = {"revoked": point.revoked, "not_revoked": point.not_revoked}
    for name in _TOTALS:
        step[name] = max(0.0, getattr(point, name) - getattr(previous, name))
    return step


def _own(point: Point) -> dict[str, float]:
    return {
        "revoked": point.revoked,
        "not_revoked": point.not_revoked,
        "http_calls": point.http_calls,
    }


def bucket_seconds(span: float) -> int:
    """The narrowest column width (from a readable set) that draws `span` in MAX_BUCKETS; at
    least a minute once the span is 10 minutes, so rates read per minute, as limits are."""
    for width in BUCKET_SECONDS:
        if span <= width * MAX_BUCKETS and (width >= 60 or span < 600):
            return width
    return math.ceil(span / MAX_BUCKETS / 86400) * 86400


# --- the whole report ------------------------------------------------------------------


def gather(
    result_csv: Path,
    *,
    journal: Path | None = None,
    report: RunReport | None = None,
    resume_command: str | None = None,
    settings: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ReportData:
    """What the report shows. `journal`: the run's journal (None: the one beside the result
    file, if any); `report`, `resume_command`, `settings`: what the run that just ended knows
    and the files do not (why it stopped, its pace, the options it ran with)."""
    results = read_results(result_csv)
    try:
        result_mtime: float | None = result_csv.stat().st_mtime
    except OSError:
        result_mtime = None
    path = journal if journal is not None else journal_path(result_csv)
    facts: JournalFacts | None = None
    note = ""
    if not path.exists() and Status.PLANNED in results.by_status:
        note = "A dry run sends nothing and keeps no journal: there is no run over time."
    elif not path.exists():
        note = (
            f"No journal beside the result file (looked for {path.name}): the run over time, "
            "the start, the duration and the resumes are unavailable."
        )
    else:
        try:
            facts = read_journal(path, result_mtime)
        except (sqlite3.Error, ValueError, OSError) as exc:
            note = (
                f"{path} could not be read as a journal ({exc}): the timing parts are unavailable."
            )

    if report is not None:
        stopped = bool(report.aborted or report.incomplete)
    else:  # a journal says "finished" only of a run that did not stop
        stopped = results.stopped or (facts is not None and not facts.finished)
    reason = (report.aborted if report else "") or results.stopped_reason
    if stopped and not reason:
        reason = (
            f"{results.stopped_in_flight} rows were in flight when it stopped"
            if results.stopped_in_flight
            else "its journal says it did not finish (the reason is in the run's log)"
        )
    if report is not None:
        status = report.exit_status
    elif stopped:
        status = ExitStatus.ABORTED
    else:
        done = Status.PLANNED if Status.PLANNED in results.by_status else Status.REVOKED
        left = set(results.by_status) - {done, Status.DUPLICATE}
        all_done = not left and not (done is Status.REVOKED and results.duplicates_pending)
        status = ExitStatus.OK if all_done else ExitStatus.NOT_ALL_REVOKED
    finish = ""
    if stopped:
        finish = resume_command or finishing_command(result_csv, facts)
    for group in results.groups:
        group.select = select_command(result_csv, group)
        group.retry = retry_command(result_csv, group, facts, finish)

    calls: dict[str, int] = dict(facts.counts) if facts else {}
    if report is not None:
        calls = {
            "http_calls": report.tally.http_calls,
            "retries": report.tally.retries,
            "read_backs": report.read_backs,
            "throttled": report.throttled,
        }
    requests = dict(facts.requests) if facts else {}
    if report is not None and report.tally.requests:
        requests = {endpoint.value: count for endpoint, count in report.tally.requests.items()}
    calls.update({f"requests {endpoint}": count for endpoint, count in sorted(requests.items())})

    sessions = facts.timeline.sessions if facts else ()
    started = facts.created if facts and facts.created else None
    if sessions:
        started = min(started or sessions[0].started, sessions[0].started)
    ended = sessions[-1].ended if sessions else None
    active = sum(session.seconds for session in sessions)
    moment = now or datetime.now().astimezone()
    return ReportData(
        title=f"batch-revoke report: {result_csv.name}",
        generated=moment.isoformat(timespec="seconds"),
        results=results,
        journal=facts,
        journal_note=note,
        exit_status=status,
        exit_words=exit_words(status, results),
        stopped=stopped,
        stopped_reason=reason,
        finish_command=finish,
        settings=_settings(result_csv, facts, settings),
        started=_when(started),
        ended=_when(ended),
        duration=_duration(active) if sessions else "",
        pace=(report.pace if report else "") or _last_pace(sessions),
        calls=calls,
        earlier_sessions=max(0, len(sessions) - 1),
    )


def exit_words(status: ExitStatus, results: Results) -> str:
    if status is ExitStatus.OK:
        if Status.PLANNED in results.by_status:
            return "exit status 0: a dry run; every row would be sent"
        return "exit status 0: every row revoked"
    if status is ExitStatus.NOT_ALL_REVOKED and Status.PLANNED in results.by_status:
        return "exit status 1: a dry run; some rows would not be sent"
    if status is ExitStatus.NOT_ALL_REVOKED:
        return "exit status 1: the run finished, but some rows are not revoked"
    if status is ExitStatus.ABORTED:
        return "exit status 3: the run stopped early; the command below finishes it"
    return f"exit status {int(status)}"


def finishing_command(result_csv: Path, facts: JournalFacts | None) -> str:
    """The command that finishes a stopped run, from what its journal recorded: its input
    (the run's own copy when it kept one) and the options a resume must repeat."""
    copy = input_copy_path(result_csv)
    if copy.exists():
        source = str(copy)
    elif facts is not None and facts.input:
        source = facts.input
    else:
        source = "INPUT.csv"  # not recorded: the reader knows what the run was given
    host = _host_options(facts, "run")
    return shlex.join(["batch-revoke", "run", source, *host, "-o", str(result_csv), "--resume"])


def _host_options(facts: JournalFacts | None, command: str) -> list[str]:
    if facts is None:
        return []
    options = facts.options
    host = options.get("host", "")
    args: list[str] = []
    if host == "the embedded sandbox":
        args += ["--sandbox"] if command == "run" else []
    elif host:
        from batch_revoke.client import CLUSTERS  # httpx: only when a command is shown

        cluster = next((name for name, url in CLUSTERS.items() if url == host), None)
        args += ["--cluster", cluster] if cluster else ["--base-url", host]
    if options.get("identifier_type", "id") != "id":
        args += ["--identifier-type", options["identifier_type"]]
    if options.get("batch_size", "20") != "20" and command == "run":
        args += ["--batch-size", options["batch_size"]]
    return args


def select_command(result_csv: Path, group: Group) -> str:
    """A command that writes the group's rows, as a CSV of their own, beside the result."""
    target = result_csv.with_name(f"{result_csv.stem}-{group.status.value}-{group.code}.csv")
    command = shlex.join(
        ["python3", "-c", _SELECT, str(result_csv), group.status.value, group.code]
    )
    return f"{command} > {shlex.quote(str(target))}"


def retry_command(result_csv: Path, group: Group, facts: JournalFacts | None, finish: str) -> str:
    """The command that settles or sends the group's rows again, when one can help; "" when
    the rows need fixing first (or nothing: the API's answer stands)."""
    status, code = group.status, group.code
    resumable = bool(finish)
    if resumable and (
        status is Status.NOT_ATTEMPTED
        or code == ErrorCode.RUN_ABORTED
        or (status is Status.FAILED and nothing_done(code))
        or status is Status.UNCONFIRMED
    ):
        return finish  # the resume reads back, and sends again, exactly these
    if status is Status.UNCONFIRMED:
        return shlex.join(
            ["batch-revoke", "verify", str(result_csv), *_host_options(facts, "verify")]
        )
    retryable = (
        nothing_done(code)
        or code
        in (
            ErrorCode.TIMEOUT,
            ErrorCode.CONNECTION_ERROR,
            ErrorCode.CLIENT_ERROR,
        )
        or bool(re.fullmatch(r"http_5\d\d", code))
    )
    if status is Status.FAILED and retryable:
        target = result_csv.with_name(f"{result_csv.stem}-{status.value}-{code}.csv")
        return shlex.join(["batch-revoke", "run", str(target), *_host_options(facts, "run")])
    return ""


def _settings(
    result_csv: Path, facts: JournalFacts | None, given: Mapping[str, str] | None
) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    if facts is not None and facts.input:
        shown.append(("input", facts.input))
    shown.append(("result file", str(result_csv)))
    if facts is not None:
        shown.append(("journal", str(facts.path)))
        labels = {"host": "host", "identifier_type": "identifier type", "batch_size": "batch size"}
        shown += [(labels.get(k, k), v) for k, v in sorted(facts.options.items())]
    for key, value in (given or {}).items():
        if value and all(key != name for name, _ in shown):
            shown.append((key, value))
    return shown


def _last_pace(sessions: Iterable[Session]) -> str:
    for session in reversed(list(sessions)):
        for bucket in reversed(session.buckets):
            if bucket.pace:
                per_minute = bucket.pace * 60 / session.width
                return f"about {per_minute:.0f} calls a minute (as the run last kept to)"
    return ""


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} min" if hours else f"{minute} min {second:02d} s"


# --- drawing ---------------------------------------------------------------------------


def render(data: ReportData) -> str:
    """The report as one HTML document, drawn by the package's template."""
    import jinja2  # only the report needs it

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("batch_revoke", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["code_spans"] = _code_spans
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.filters["duration"] = _duration
    environment.filters["nice_max"] = nice_max
    environment.filters["when"] = _when
    template = environment.get_template("report.html.j2")
    return template.render(data=data, Status=Status, STATUS_MEANINGS=STATUS_MEANINGS)


def _code_spans(text: str) -> Any:
    """`a command` as <code>, the rest escaped."""
    from markupsafe import Markup, escape

    parts = str(text).split("`")
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if odd else escape(part)
        for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
    )


def nice_max(value: float) -> float:
    """The top of a chart's axis: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def write_report(
    result_csv: Path,
    out: Path | None = None,
    *,
    journal: Path | None = None,
    report: RunReport | None = None,
    resume_command: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Path:
    """Write the HTML report of a result file (`out`: beside it, `<result>.html`, when None)
    and return its path. The journal beside the result file is read when there is one; a run
    that just ended passes its `report` (and `resume_command`, `settings`) for what only it
    knows. Raises InputError for a file that is not a complete result file, StorageError
    when the report cannot be written."""
    target = out if out is not None else result_csv.with_suffix(".html")
    if target.resolve() == result_csv.resolve():
        raise StorageError(target, "the report would replace the result file")
    data = gather(
        result_csv,
        journal=journal,
        report=report,
        resume_command=resume_command,
        settings=settings,
    )
    write_text_atomically(target, render(data))
    return target
