"""The HTML report: its numbers are the result file's, every error code is explained, nothing
outside the file is referenced, it stays small, and it reads right in a real browser."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from batch_revoke.codes import CODES, explain
from batch_revoke.config import ErrorLimit, RunConfig
from batch_revoke.credentials import BasicCredentials
from batch_revoke.history import ROWS_PER_GROUP, bucket_seconds, read_results
from batch_revoke.html_report import gather, write_report
from batch_revoke.job import run_job
from batch_revoke.model import ErrorCode, ExitStatus, Status
from batch_revoke.outputs import journal_path
from batch_revoke.report import RunReport
from batch_revoke.sandbox import RateLimitSpec, SandboxConfig, SandboxState, running_sandbox
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "badges.csv"
SAMPLE_STATE = ROOT / "samples" / "sandbox-state.json"
SANDBOX = "the embedded sandbox"


def sandbox_run(
    path: Path, out: Path, sandbox: SandboxConfig | None = None, **options
) -> RunReport:
    """A real job over HTTP against the sandbox on 127.0.0.1, as `run --sandbox` makes it."""
    config = sandbox or SandboxConfig(state=SandboxState.load(SAMPLE_STATE))
    with running_sandbox(config) as running:
        return run_job(
            RunConfig(
                path,
                out,
                running.base_url,
                BasicCredentials(running.credentials.username, running.credentials.password),
                host_label=SANDBOX,
                **options,
            )
        )


def result_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


class Page(HTMLParser):
    """The report as parsed: elements by id, tables' cells, and every reference outward."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.styles: list[str] = []
        self.text_by_id: dict[str, str] = {}
        self.attrs_by_id: dict[str, dict[str, str]] = {}
        # A table row's cells by its data-code, or its data-status as "status:<status>"
        self.code_rows: dict[str, list[str]] = {}
        self.rows_by_group: dict[str, list[int]] = {}  # group-<status>-<code> -> data-row
        self._open: list[tuple[str, str | None]] = []  # (tag, id)
        self._texts: dict[str, list[str]] = {}
        self._in_style = False
        self._code: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data"):
                self.references.append((tag, name, value))
            if name == "style":
                self.styles.append(value)
        self._in_style = tag == "style"
        if "data-code" in values or "data-status" in values:
            self._code = values.get("data-code") or f"status:{values['data-status']}"
            self.code_rows[self._code] = []
        if tag == "td" and self._code is not None:
            self._cell = []
        if "data-row" in values:
            group = next(i for _, i in reversed(self._open) if i and i.startswith("group-"))
            self.rows_by_group.setdefault(group, []).append(int(values["data-row"]))
        element_id = values.get("id")
        if element_id:
            self.attrs_by_id[element_id] = values
            self._texts[element_id] = []
        if tag not in ("meta", "link", "br", "img", "input", "rect", "line", "path", "circle"):
            self._open.append((tag, element_id))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        if tag == "td" and self._cell is not None and self._code is not None:
            self.code_rows[self._code].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr":
            self._code = None
        while self._open:
            open_tag, element_id = self._open.pop()
            if element_id:
                self.text_by_id[element_id] = " ".join("".join(self._texts[element_id]).split())
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
        if self._cell is not None:
            self._cell.append(data)
        for _, element_id in self._open:
            if element_id:
                self._texts[element_id].append(data)


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, RunReport, Path]:
    """The sample run (every outcome shows), its report and the report's path."""
    folder = tmp_path_factory.mktemp("demo")
    out = folder / "badges-results.csv"
    report = sandbox_run(SAMPLE, out)
    html = write_report(out, folder / "badges-results.html", report=report)
    return out, report, html


# --- structure and numbers -------------------------------------------------------------


def test_the_reports_counts_are_the_result_files(demo):
    out, report, html = demo
    rows = result_rows(out)
    page = Page(html.read_text(encoding="utf-8"))
    by_status = Counter(row["status"] for row in rows)
    assert number(page.text_by_id["rows-total"]) == len(rows) == 17
    assert number(page.text_by_id["rows-revoked"]) == by_status["revoked"]
    not_revoked = sum(by_status[s] for s in ("failed", "unconfirmed", "invalid", "not_attempted"))
    assert number(page.text_by_id["rows-not-revoked"]) == not_revoked
    assert number(page.text_by_id["rows-duplicate"]) == by_status["duplicate"]
    shown = {
        key.removeprefix("status:"): number(cells[1])
        for key, cells in page.code_rows.items()
        if key.startswith("status:")
    }
    assert shown == by_status
    by_code = Counter((row["status"], row["error_code"]) for row in rows if row["error_code"])
    shown = {
        code: number(cells[2])
        for code, cells in page.code_rows.items()
        if not code.startswith("status:")
    }
    assert shown == {code: count for (_, code), count in by_code.items()}
    assert report.exit_status is ExitStatus.NOT_ALL_REVOKED
    assert "exit status 1" in page.text_by_id["verdict"]


def test_every_error_code_present_is_explained(demo):
    out, _, html = demo
    page = Page(html.read_text(encoding="utf-8"))
    codes = {row["error_code"] for row in result_rows(out) if row["error_code"]}
    assert codes >= {"404", "814", "issue_not_of_customer", "malformed_record", "duplicate_row"}
    for code in codes:
        cells = page.code_rows[code]
        meaning, todo = cells[3], cells[4]
        assert meaning == explain(code).meaning.replace("`", "")
        assert todo == explain(code).todo.replace("`", "")
        assert "not one this version knows" not in meaning, code


def test_every_code_the_package_can_write_has_an_explanation():
    known = {entry.code for entry in CODES}
    assert {code.value for code in ErrorCode} <= known
    assert explain("http_502") is explain("http_429")
    assert "not one this version knows" in explain("99999").meaning


def test_the_docs_table_of_error_codes_is_the_packages():
    page = (ROOT / "docs" / "reference" / "codes.md").read_text(encoding="utf-8")
    begin, end = "<!-- error codes: from batch_revoke/codes.py -->\n", "<!-- end of error codes -->"
    assert begin in page, "the reference's table of error codes is marked"
    assert end in page
    table = page.split(begin, 1)[1].split(end, 1)[0]
    rows = [f"| `{entry.code}` | " for entry in CODES]
    assert [
        line[: len(row)] for line, row in zip(table.splitlines()[2:], rows, strict=True)
    ] == rows
    assert all(entry.meaning in table and entry.todo in table for entry in CODES)
    # The input page's table names the same codes for invalid rows.
    files = (ROOT / "docs" / "files.md").read_text(encoding="utf-8")
    invalid = set(re.findall(r"\| `([a-z_]+)` \|\n", files.split("## Output")[0]))
    invalid.discard("error_code")  # its header
    assert invalid == {e.code for e in CODES if e.statuses == (Status.INVALID,)}


def test_nothing_outside_the_file_is_referenced(demo):
    _, _, html = demo
    page = Page(html.read_text(encoding="utf-8"))
    assert not {"script", "link", "img", "iframe", "object", "embed", "base"} & set(page.tags)
    for tag, attribute, value in page.references:
        assert value.startswith("#"), (tag, attribute, value)
    for style in page.styles:
        assert "@import" not in style
        for target in re.findall(r"url\(\s*['\"]?([^'\")\s]*)", style):
            assert target.startswith("#"), target
    assert page.tags["svg"] >= 3  # the charts are drawn in the page
    for element_id, attrs in page.attrs_by_id.items():
        if attrs.get("role") == "img":
            title, desc = attrs["aria-labelledby"].split()
            assert page.text_by_id[title], element_id
            assert page.text_by_id[desc], element_id


def test_rows_that_need_a_person_are_grouped_by_reason_with_their_row_numbers(demo):
    out, _, html = demo
    page = Page(html.read_text(encoding="utf-8"))
    expected: dict[str, list[int]] = {}
    for row in result_rows(out):
        if row["status"] in ("failed", "unconfirmed", "invalid", "not_attempted"):
            group = f"group-{row['status']}-{row['error_code']}"
            expected.setdefault(group, []).append(int(row["row"]))
    assert page.rows_by_group == expected
    failed_404 = page.text_by_id["group-failed-404"]
    # the command that takes the rows out
    assert f"batch-revoke retry {out} --status failed --code 404" in failed_404
    assert "python3" not in html.read_text(encoding="utf-8")


def test_the_command_that_takes_a_groups_rows_out_writes_exactly_them(demo, tmp_path):
    out, _, _ = demo
    data = gather(out)
    (group,) = [g for g in data.results.groups if g.code == "malformed_record"]
    command = data.select_command(group)
    assert command.endswith("--dry-run")
    args = [*shlex.split(command)[2:], "-o", str(tmp_path / "rows.csv")]
    done = run_cli(None, *args, command="retry")
    assert done.returncode == 1, done.stderr  # the rows are invalid still
    assert [row["input_row"] for row in result_rows(tmp_path / "rows.csv")] == ["17"]
    assert not (tmp_path / "rows-input.csv").exists()  # a dry run keeps no input


def test_the_run_over_time_comes_from_the_journal(tmp_path):
    """A run held back by an unknown rate limit: the report shows the 429s and pauses."""
    from tests.test_e2e import earn_file

    path, state = earn_file(tmp_path, 40)
    out = tmp_path / "out.csv"
    limited = SandboxConfig(
        state=SandboxState.from_dict(state), rate_limit=RateLimitSpec.parse("8/s")
    )
    report = sandbox_run(path, out, limited, rate_window=1.0)
    assert report.exit_status is ExitStatus.OK
    assert report.tally.throttled > 0
    data = gather(out, report=report)
    assert data.journal is not None
    (session,) = data.journal.timeline.sessions
    assert session.total("revoked") == 40
    assert session.total("throttled") == report.tally.throttled
    assert session.total("calls") == report.tally.http_calls
    assert session.total("pauses") >= 1
    assert any(bucket.pace for bucket in data.journal.timeline.buckets)  # the learned pace
    page = Page(write_report(out, tmp_path / "r.html", report=report).read_text())
    desc = page.text_by_id["calls-run-desc"]
    assert f"of which {report.tally.throttled} were throttled (429)" in desc
    assert "The rate limit held the run back." in desc


def resumed_many_times(folder: Path) -> tuple[Path, int]:
    """A run of 40 revokeEarn rows, every other one not active (814), stopped by
    --max-errors 1 at each of those and resumed until it finished (21 sessions, the last
    sending nothing), then resumed twice more (a finished run: nothing sent). Its result
    file and the number of sessions."""
    from tests.test_e2e import earn_file

    path, state = earn_file(folder, 40)
    for earn in state["earns"][1::2]:
        earn.update(isActive=False, revokedOn="2026-01-01T00:00:00+00:00")
    out = folder / "out.csv"
    sessions = 0
    with running_sandbox(SandboxConfig(state=SandboxState.from_dict(state))) as running:
        credentials = BasicCredentials(running.credentials.username, running.credentials.password)
        finished = 0
        while finished < 3:
            report = run_job(
                RunConfig(
                    path,
                    out,
                    running.base_url,
                    credentials,
                    host_label=SANDBOX,
                    resume=sessions > 0,
                    concurrency=1,
                    max_errors=ErrorLimit.parse("1"),
                )
            )
            sessions += 1
            finished += report.exit_status is not ExitStatus.ABORTED
    return out, sessions


def test_a_run_resumed_many_times_is_one_timeline_with_its_sessions_marked(tmp_path):
    """One chart of rows and one of calls for the whole run, titled, each session that sent
    something marked on them; the sessions that sent nothing are listed, not drawn."""
    out, sessions = resumed_many_times(tmp_path)
    assert sessions == 23
    rows = result_rows(out)
    assert Counter(r["status"] for r in rows) == {"revoked": 20, "failed": 20}
    data = gather(out)
    assert data.journal is not None
    timeline = data.journal.timeline
    assert len(timeline.sessions) == 23
    # The whole run's columns count every session's rows and calls.
    assert timeline.total("revoked") == 20
    assert timeline.total("not_revoked") == 20
    assert timeline.total("calls") == data.calls["http_calls"]
    html = write_report(out, tmp_path / "r.html")
    text = html.read_text(encoding="utf-8")
    page = Page(text)
    charts = [i for i, a in page.attrs_by_id.items() if a.get("role") == "img"]
    assert sorted(c for c in charts if not c.startswith("chart-")) == ["calls-run", "rows-run"]
    assert "Rows settled per" in page.text_by_id["rows-run-caption"]  # titled on the page
    assert "HTTP calls per" in page.text_by_id["calls-run-caption"]
    marked = sorted({int(m) for m in re.findall(r'data-session="(\d+)"', text)})
    assert marked == list(range(1, 21))  # sessions 21 to 23 sent nothing
    assert "not charted" not in text
    assert "Nothing was sent in this session" not in text
    listed = page.text_by_id["table-sessions"]
    for number in range(1, 24):
        assert f"{number} " in listed
    assert listed.count("sent nothing") == 3
    assert "resumed 22 times" in page.text_by_id["run-facts"]


def test_the_rows_that_need_a_person_show_the_customer_id_a_lookup_found(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(
        "badgeMetaId,customerId,identifierType\n"
        "670371e39235f02fd5d71cbd,919900000088,mobile\n"  # customer 555567088: not enrolled
        "670371e39235f02fd5d71cbd,555567088,\n",  # the same customer by id: a duplicate
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    report = sandbox_run(path, out)
    assert [r["resolved_customer_id"] for r in result_rows(out)] == ["555567088", ""]
    text = write_report(out, tmp_path / "r.html", report=report).read_text()
    page = Page(text)
    assert page.rows_by_group == {"group-failed-404": [1]}
    assert "resolved_customer_id" in page.text_by_id["group-failed-404"]  # a column
    (row,) = re.findall(r'<tr data-row="1">.*?</tr>', text)
    assert "<td>919900000088</td>" in row  # the customer as the row named it
    assert "<td>555567088</td>" in row  # and as the lookup found it


def test_a_stopped_run_says_so_and_gives_the_command_that_finishes_it(tmp_path):
    out = tmp_path / "stopped.csv"
    report = sandbox_run(SAMPLE, out, max_errors=ErrorLimit.parse("1"), concurrency=1)
    assert report.exit_status is ExitStatus.ABORTED
    html = write_report(out, tmp_path / "stopped.html")  # from the files alone, as `report` does
    page = Page(html.read_text(encoding="utf-8"))
    assert "exit status 3" in page.text_by_id["verdict"]
    assert "--max-errors 1 reached" in page.text_by_id["stopped"]
    command = page.text_by_id["finish-command"]
    assert command == shlex.join(
        ["batch-revoke", "run", str(SAMPLE), "--sandbox", "-o", str(out), "--resume"]
    )
    # As printed, it finishes the run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAP_")}
    done = subprocess.run(
        [sys.executable, "-m", "batch_revoke", *shlex.split(command)[1:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # finished; the sample's bad rows stay
    assert "not_attempted" not in {row["status"] for row in result_rows(out)}
    finished = Page(write_report(out, tmp_path / "finished.html").read_text())
    assert "stopped" not in finished.text_by_id
    assert "resumed 1 time" in finished.text_by_id["run-facts"]


def test_a_result_file_without_its_journal_renders_and_says_timings_are_unavailable(demo, tmp_path):
    out, _, _ = demo
    alone = tmp_path / "alone.csv"
    shutil.copy(out, alone)
    page = Page(write_report(alone, tmp_path / "alone.html").read_text(encoding="utf-8"))
    assert number(page.text_by_id["rows-total"]) == 17
    assert "unavailable" in page.text_by_id["timing-unavailable"]
    assert "No journal beside the result file" in page.text_by_id["journal-note"]


def test_a_result_file_that_is_not_one_is_refused_with_the_fix(tmp_path):
    from batch_revoke.errors import InputError

    incomplete = tmp_path / "x.csv"
    incomplete.write_text("INCOMPLETE: this run ...; to finish it: batch-revoke run a.csv\n")
    with pytest.raises(InputError, match=r"INCOMPLETE.*batch-revoke run a\.csv"):
        read_results(incomplete)
    other = tmp_path / "y.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a batch-revoke result file"):
        read_results(other)


def test_a_20000_row_run_makes_a_small_report(tmp_path):
    """Every row needs a person, in many groups: each lists its first few hundred rows."""
    codes = ["6.209E+07", "x" * 300, "phone"]  # bad_customer_id, value_too_long, and ...
    lines = ["badgeMetaId,customerId,issueId,identifierType,note"]
    for n in range(20_000):
        kind = n % 4
        if kind == 0:  # not enrolled: 404, 20 to a request
            lines.append(f"670371e39235f02fd5d71cbd,{900_000_000 + n},,,{'n' * 60}")
        elif kind == 1:
            lines.append(f"670371e39235f02fd5d71cbd,{codes[0]},,,")
        elif kind == 2:
            lines.append(f"670371e39235f02fd5d71cbd,{n}{codes[1]},,,")
        else:
            lines.append(f"670371e39235f02fd5d71cbd,{n},,{codes[2]},")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "big-results.csv"
    report = sandbox_run(path, out, concurrency=8)
    assert report.tally.total == 20_000
    html = write_report(out, tmp_path / "big.html", report=report)
    size = html.stat().st_size
    assert size < 1_000_000, size  # well under 3 MB
    data = gather(out, report=report)
    assert all(len(g.shown) <= ROWS_PER_GROUP for g in data.results.groups)
    assert sum(g.rows for g in data.results.groups) == 20_000
    page = Page(html.read_text(encoding="utf-8"))
    assert number(page.text_by_id["rows-total"]) == 20_000


def test_bucket_widths_keep_a_chart_readable():
    assert bucket_seconds(0.3) == 1
    assert bucket_seconds(30 * 60) == 60
    assert bucket_seconds(10 * 3600) == 600
    assert bucket_seconds(30 * 86400) == 86400


# --- in a real browser -----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = ROOT / "output" / "html-report-1280x800.png"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: apt-get install chromium")
def test_the_report_in_headless_chromium(demo, tmp_path):
    """Loaded in Chromium: no console error, no network request, and the headline numbers
    within the first screen at 1280x800 (the screenshot is kept for a person to look at)."""
    out, _, html = demo
    seen = asyncio.run(_in_chromium(html, tmp_path))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(seen["screenshot"])
    assert seen["errors"] == [], seen["errors"]
    assert seen["requests"] == [html.as_uri()], seen["requests"]
    headline = seen["headline"]
    rows = result_rows(out)
    assert headline["rows-total"]["text"] == str(len(rows))
    assert headline["rows-revoked"]["text"] == str(sum(r["status"] == "revoked" for r in rows))
    for element_id, box in headline.items():
        assert box["top"] >= 0, element_id
        assert box["bottom"] <= 800, element_id  # within the first screen
        assert box["right"] <= 1280, element_id
        assert box["width"] > 0, element_id
        assert box["height"] > 0, element_id
        assert box["visible"], element_id
    assert SCREENSHOT.stat().st_size > 10_000


async def _in_chromium(html: Path, profile: Path) -> dict:
    """Drive Chromium over its DevTools protocol (aiohttp's websocket client)."""
    import aiohttp

    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile / 'chromium'}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        endpoint = ""
        while not endpoint:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "chromium ended before it listened"
            if found := re.search(r"DevTools listening on (ws://\S+)", line):
                endpoint = found.group(1)
        port = re.search(r":(\d+)/", endpoint).group(1)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as listing:
                pages = [t for t in await listing.json() if t["type"] == "page"]
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                return await _look(ws, html)
    finally:
        process.kill()
        await process.wait()


async def _look(ws, html: Path) -> dict:
    counter = iter(range(1, 1_000_000))
    events: list[dict] = []

    async def call(method: str, **params) -> dict:
        number = next(counter)
        await ws.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(ws.receive_json(), 30)
            if message.get("id") == number:
                assert "error" not in message, message
                return message["result"]
            events.append(message)

    for domain in ("Page", "Runtime", "Log", "Network"):
        await call(f"{domain}.enable")
    await call(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=800,
        deviceScaleFactor=1,
        mobile=False,
    )
    await call("Page.navigate", url=html.as_uri())
    while not any(e.get("method") == "Page.loadEventFired" for e in events):
        events.append(await asyncio.wait_for(ws.receive_json(), 30))
    await asyncio.sleep(0.5)  # anything the page might still do after load
    measure = """(() => {
      const found = {};
      for (const dd of document.querySelectorAll('#headline dd')) {
        const r = dd.getBoundingClientRect(), s = getComputedStyle(dd);
        found[dd.id] = {text: dd.textContent.trim(), top: r.top, bottom: r.bottom,
          right: r.right, width: r.width, height: r.height,
          visible: s.visibility === 'visible' && s.display !== 'none' && s.opacity !== '0'};
      }
      return JSON.stringify(found);
    })()"""
    headline = json.loads((await call("Runtime.evaluate", expression=measure))["result"]["value"])
    shot = await call("Page.captureScreenshot", format="png")
    while True:  # whatever arrived meanwhile
        try:
            events.append(await asyncio.wait_for(ws.receive_json(), 0.2))
        except TimeoutError:
            break
    errors = [
        e["params"]
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    requests = [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    return {
        "errors": errors,
        "requests": requests,
        "headline": headline,
        "screenshot": base64.b64decode(shot["data"]),
    }


# --- the command line ---------------------------------------------------------------------


def test_run_dash_dash_report_writes_it_and_every_summary_names_it(tmp_path):
    out, html = tmp_path / "out.csv", tmp_path / "reports" / "run.html"
    done = run_cli(
        None,
        *(str(SAMPLE), "--sandbox", "-o", str(out), "--report", str(html)),
        *("--summary-json", "-"),
    )
    assert done.returncode == 1, done.stderr
    assert f"report: {html}" in done.stderr.splitlines()
    assert json.loads(done.stdout)["report"] == str(html)
    assert f"{out.name}</" in html.read_text(encoding="utf-8")


def test_the_report_command_writes_beside_the_result_and_prints_the_path(demo, tmp_path):
    result = tmp_path / demo[0].name
    shutil.copy(demo[0], result)
    done = run_cli(None, str(result), command="report")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(result.with_suffix(".html"))
    assert "<h1" in result.with_suffix(".html").read_text(encoding="utf-8")


def test_the_report_command_refuses_a_file_that_is_no_result_in_one_line(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html></html>\n", encoding="utf-8")
    done = run_cli(None, str(page), command="report")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "not a batch-revoke result file" in line


@pytest.mark.parametrize("victim", ["input", "result", "journal", "other"])
def test_a_report_is_never_written_over_a_file_that_is_not_a_report(tmp_path, victim):
    """Refused before anything is sent (exit 2), and the file is left as it was."""
    source = tmp_path / "in.csv"
    shutil.copy(SAMPLE, source)
    out = tmp_path / "out.csv"
    first = run_cli(None, str(source), "--sandbox", "-o", str(out))
    assert first.returncode == 1, first.stderr
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n", encoding="utf-8")
    target = {
        "input": source,
        "result": out,
        "journal": journal_path(out),
        "other": other,
    }[victim]
    before = target.read_bytes()
    again = tmp_path / "again.csv"
    done = run_cli(None, str(source), "--sandbox", "-o", str(again), "--report", str(target))
    assert done.returncode == 2, done.stderr
    assert "is not written over it" in done.stderr
    assert not again.exists()  # refused before the run began
    later = run_cli(None, str(out), "-o", str(target), command="report")
    assert later.returncode == 2, later.stderr
    assert target.read_bytes() == before


def test_a_report_replaces_an_earlier_report(demo, tmp_path):
    target = tmp_path / "r.html"
    first = run_cli(None, str(demo[0]), "-o", str(target), command="report")
    assert first.returncode == 0, first.stderr
    target.write_text(target.read_text(encoding="utf-8").replace("<h1", "<h1 data-old"), "utf-8")
    second = run_cli(None, str(demo[0]), "-o", str(target), command="report")
    assert second.returncode == 0, second.stderr
    assert "data-old" not in target.read_text(encoding="utf-8")
