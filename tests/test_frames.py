"""A DataFrame in, a DataFrame out (batch_revoke.frames), with real pandas: against the
sandbox in process, a mock API for a stopped run, and the Python page's example as printed."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from batch_revoke import (
    BasicCredentials,
    ConfigError,
    InputError,
    RunConfig,
    read_result,
    revoke_frame,
    revoke_frame_async,
    run_job,
)
from batch_revoke.sandbox import FaultPlan, SandboxConfig, SandboxState
from tests.conftest import ROOT, SAMPLE, SAMPLE_STATE, read_rows

ISSUE = "670371e39235f02fd5d71cbd"  # a badge of the sample state, enrolled by 387403362
WELCOME = "654bb48766a87827bb61e631"


def sample_sandbox() -> SandboxConfig:
    return SandboxConfig(state=SandboxState.load(SAMPLE_STATE), faults=FaultPlan(()))


def test_a_frame_comes_back_with_its_index_text_as_written_and_every_row(tmp_path):
    frame = pd.DataFrame(
        {
            "badgeMetaId": [ISSUE, WELCOME, None, WELCOME, pd.NA],
            "customerId": ["387403362", "000777", "62090014", "62090013", None],
            "issueId": ["6703724a9235f02fd5d71cc1", None, float("nan"), "", None],
            "note": ["a", "b", "c", 4.5, None],
        },
        index=pd.Index(["x", "y", "z", "x", "w"], name="ticket"),  # labels repeat: kept
    )
    config = RunConfig(tmp_path / "in.csv", tmp_path / "out.csv")
    out = revoke_frame(frame, config, sandbox=sample_sandbox())

    assert list(out.index) == ["x", "y", "z", "x", "w"]
    assert out.index.name == "ticket"
    assert list(out.columns[:4]) == ["badgeMetaId", "customerId", "issueId", "note"]
    assert list(out["customerId"]) == ["387403362", "000777", "62090014", "62090013", ""]
    assert list(out["status"]) == ["revoked", "revoked", "invalid", "revoked", ""]
    assert out.loc["z", "error_code"] == "missing_value"  # an invalid row comes back too
    assert list(out["note"]) == ["a", "b", "c", "4.5", ""]
    assert list(out["row"]) == ["1", "2", "3", "4", ""]  # a blank row is no record, as in a CSV
    assert not out.isna().any().any()
    # The run is a run: its input CSV, result file and report are where the config says.
    written = (tmp_path / "in.csv").read_text().splitlines()
    assert written[2:] == [
        f"{WELCOME},000777,,b",
        ",62090014,,c",
        f"{WELCOME},62090013,,4.5",
        ",,,",
    ]
    assert [row["status"] for row in read_rows(tmp_path / "out.csv")] == list(out["status"])[:4]
    assert out.attrs["report"]["rows"]["revoked"] == 3
    assert out.attrs["report"]["output"] == str(tmp_path / "out.csv")


@pytest.mark.parametrize(
    "customers",
    [
        pytest.param(pd.Series([387403362.0, None]), id="float-column"),
        pytest.param(pd.Series(["387403362.0", "nan"]), id="floats-made-text"),
        pytest.param(pd.Series(["387403362", 6.209e07], dtype=object), id="a-float-among-text"),
        pytest.param(pd.Series(["387403362", "6.209e+07"]), id="scientific-text"),
    ],
)
def test_ids_pandas_read_as_floats_are_refused_before_any_file_is_written(tmp_path, customers):
    frame = pd.DataFrame({"badgeMetaId": [ISSUE, ISSUE], "customer_id": customers})
    with pytest.raises(ConfigError, match=r"column 'customer_id' holds ids that pandas read"):
        revoke_frame(frame, RunConfig(tmp_path / "in.csv", tmp_path / "out.csv"))
    assert list(tmp_path.iterdir()) == []


def test_ids_as_excel_or_integers_write_them_are_not_floats(tmp_path):
    """6.209E+07 is what a spreadsheet wrote, and the run reports that row as a CSV's; an int
    column has no float in it."""
    frame = pd.DataFrame({"badgeMetaId": [WELCOME, WELCOME], "customerId": ["6.209E+07", "123"]})
    frame["n"] = [1, 2]
    out = revoke_frame(frame, RunConfig(tmp_path / "in.csv", dry_run=True, output_dir=tmp_path))
    assert list(out["status"]) == ["invalid", "planned"]
    assert list(out["n"]) == ["1", "2"]


def mock_api(answer_401: bool):
    sent: list[dict] = []

    def api(request: httpx.Request) -> httpx.Response:
        if answer_401:
            return httpx.Response(401, json={"data": None, "errors": [{"code": 401}]})
        body = json.loads(request.content)
        sent.append(body)
        entries = [
            {"customerId": int(c), "issuedId": f"I{c}", "error": None} for c in body["customers"]
        ]
        return httpx.Response(200, json={"data": {"revokedIssuedBadges": entries}, "errors": []})

    return httpx.MockTransport(api), sent


def test_a_stopped_run_is_finished_by_calling_again_with_the_same_frame_and_config(
    tmp_path, caplog
):
    frame = pd.DataFrame({"badgeMetaId": ["B1", "B2"], "customerId": ["007", "8"]})
    config = RunConfig(
        tmp_path / "in.csv",
        tmp_path / "out.csv",
        "https://api.invalid",
        BasicCredentials("u", "p"),
        concurrency=1,
    )
    refused, _ = mock_api(answer_401=True)
    stopped = revoke_frame(frame, config, transport=refused)
    assert list(stopped["status"]) == ["not_attempted"] * 2
    assert stopped.attrs["report"]["exit_meaning"] == "aborted"
    assert "call revoke_frame again with the same frame and config" in caplog.text

    granted, sent = mock_api(answer_401=False)
    done = revoke_frame(frame, config, transport=granted)
    assert list(done["status"]) == ["revoked"] * 2
    assert list(done["issued_ids"]) == ["I007", "I8"]
    assert done.attrs["report"]["output"] == str(tmp_path / "out.csv")  # the same run
    caplog.clear()
    again = revoke_frame(frame, config, transport=granted)  # finished: nothing sent again
    assert "nothing was sent, and its result file was written again" in caplog.text
    assert len(sent) == 2
    assert list(again["status"]) == ["revoked"] * 2


def test_read_result_reads_a_result_file_as_text_and_refuses_an_incomplete_one(tmp_path):
    run_job(RunConfig(SAMPLE, tmp_path / "out.csv"), sandbox=sample_sandbox())
    result = read_result(tmp_path / "out.csv")
    assert len(result) == 17
    assert result.loc[15, "customerId"] == "000777"
    assert result.loc[15, "issueId"] == ""
    assert result.loc[10, "status"] == "invalid"  # badgeMetaId missing
    assert not result.isna().any().any()

    (tmp_path / "stopped.csv").write_text(
        "INCOMPLETE: this run has not finished writing its results (it is still going, or it "
        "was interrupted); to finish it: batch-revoke run in.csv -o stopped.csv --resume\n"
    )
    with pytest.raises(InputError, match=r"finish it: batch-revoke run in\.csv -o stopped\.csv"):
        read_result(tmp_path / "stopped.csv")


async def test_inside_an_event_loop_it_is_awaited_as_run_job_async_is(tmp_path):
    frame = pd.DataFrame({"badgeMetaId": [WELCOME], "customerId": ["000777"]})
    config = RunConfig(tmp_path / "in.csv", tmp_path / "out.csv")
    with pytest.raises(ConfigError, match=r"await revoke_frame_async\(frame, config\)"):
        revoke_frame(frame, config, sandbox=sample_sandbox())
    assert list(tmp_path.iterdir()) == []
    out = await revoke_frame_async(frame, config, sandbox=sample_sandbox())
    assert list(out["status"]) == ["revoked"]


def test_without_pandas_the_error_says_what_to_install():
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import batch_revoke\n"
        "try:\n"
        "    batch_revoke.read_result('x.csv')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert "pip install 'batch-revoke[pandas]'" in done.stdout, done.stderr


def test_the_python_pages_notebook_cell_prints_what_the_page_shows(tmp_path, monkeypatch):
    """The DataFrames example of docs/python.md, run as a Jupyter cell runs it (top-level
    await, inside an event loop), in an empty folder."""
    page = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    cell, shown = re.search(
        r"```python\n([^`]*revoke_frame_async[^`]*)```\n\nprints\n\n```text\n([^`]*)```", page
    ).groups()
    monkeypatch.chdir(tmp_path)
    code = compile(cell, "python.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    printed: list[str] = []
    namespace = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
    asyncio.run(eval(code, namespace))
    lines = "\n".join(printed).splitlines()
    assert [line.rstrip() for line in lines] == shown.splitlines()
    assert (tmp_path / "revoke-results.csv").is_file()
