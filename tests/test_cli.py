"""The command line through CliRunner: bad input, dry runs, exit statuses, help and docs."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from batch_revoke.cli import cli
from batch_revoke.config import RetryPolicy, resume_options
from batch_revoke.job import RunConfig
from batch_revoke.model import ExitStatus, IdentifierType
from batch_revoke.writer import RESULT_COLUMNS
from tests.conftest import ROOT, invoke, read_rows


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(None, "no such file", id="missing"),
        pytest.param("", "the file is empty", id="empty"),
        pytest.param("badgeMetaId,customerId\n", "header but no records", id="header-only"),
        pytest.param(
            "badge,customerId\nB1,1\n", "required column badgeMetaId", id="no-badge-column"
        ),
        pytest.param(b"PK\x03\x04xlsx", "Excel workbook", id="not-csv"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_2(write_csv, tmp_path, content, fragment):
    path = tmp_path / "none.csv" if content is None else write_csv(content)
    result = invoke("run", str(path), "--dry-run")
    assert result.exit_code == ExitStatus.USAGE
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_missing_credentials_exit_2_before_anything(write_csv):
    result = invoke("run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--cluster", "eu")
    assert result.exit_code == ExitStatus.USAGE
    assert "no credentials" in result.output
    assert "CAP_USERNAME" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--batch-size", "21"],
        ["--concurrency", "0"],
        ["--rate-limit", "lots"],
        ["--identifier-type", "phone"],
        ["--base-url", "https://x", "--cluster", "eu"],
        ["--fault", "429"],  # a sandbox option without --sandbox would silently do nothing
        ["--sandbox-state", "x.json"],
    ],
)
def test_bad_options_exit_2(write_csv, args):
    result = invoke("run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--dry-run", *args)
    assert result.exit_code == ExitStatus.USAGE
    assert "Traceback" not in result.output


def test_dry_run_plans_without_sending(write_csv, tmp_path):
    path = write_csv(
        "badgeMetaId,customerId,issueId,earnedBadgeId,note\n"
        "B1,1,,,a\nB1,2,I2,,b\nB2,3,,E3,c\n,4,,,d\nB1,1,,,e\n"
    )
    out = tmp_path / "out.csv"
    result = invoke("run", str(path), "--dry-run", "-o", str(out))
    assert result.exit_code == ExitStatus.NOT_ALL_REVOKED  # one invalid row
    rows = read_rows(out)
    assert [(r["row"], r["status"], r["note"]) for r in rows] == [
        ("1", "planned", "a"),
        ("2", "planned", "b"),
        ("3", "planned", "c"),
        ("4", "invalid", "d"),
        ("5", "duplicate", "e"),
    ]
    assert "would send: revokeIssue 2, revokeEarn 1" in result.output


def test_dry_run_of_a_clean_file_exits_0_and_names_the_default_output(
    write_csv, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = invoke(
        "run", str(write_csv("badgeMetaId,customerId\nB1,1\n", "clean.csv")), "--dry-run"
    )
    assert result.exit_code == ExitStatus.OK
    produced = list((tmp_path / "output").glob("clean-results-*.csv"))
    assert len(produced) == 1
    assert re.search(r"clean-results-\d{8}-\d{6}\.csv", result.output)


def test_result_columns_follow_the_input_verbatim_and_clashes_are_kept(write_csv, tmp_path):
    path = write_csv("status,badgeMetaId,customerId,Extra Col\nold,B1,000777, x \n")
    out = tmp_path / "out.csv"
    invoke("run", str(path), "--dry-run", "-o", str(out))
    with out.open(newline="") as handle:
        header, row = list(csv.reader(handle))
    assert header == ["input_status", "badgeMetaId", "customerId", "Extra Col", *RESULT_COLUMNS]
    assert row[:4] == ["old", "B1", "000777", " x "]


def test_input_columns_of_one_name_stay_distinguishable(write_csv, tmp_path):
    path = write_csv("badgeMetaId,customerId,note,note,note_2,note\nB1,1,a,b,c,d\n")
    out = tmp_path / "out.csv"
    invoke("run", str(path), "--dry-run", "-o", str(out))
    with out.open(newline="") as handle:
        header, row = list(csv.reader(handle))
    assert header[:6] == ["badgeMetaId", "customerId", "note", "note_2", "note_2_2", "note_3"]
    assert len(set(header)) == len(header)
    assert row[2:6] == ["a", "b", "c", "d"]


def test_output_may_not_overwrite_the_input(write_csv):
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    result = invoke("run", str(path), "--dry-run", "-o", str(path))
    assert result.exit_code == ExitStatus.USAGE


def every_command(
    command: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """The group itself and every command under it, however deep, as (words, command)."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from every_command(sub, (*path, name))


COMMANDS = [
    pytest.param(path, command, id=" ".join(path) or "cli") for path, command in every_command()
]


def long_options(command: click.Command) -> list[str]:
    """The command's own --options (and --no- forms), --help left out."""
    return [
        option
        for param in command.params
        if isinstance(param, click.Option)
        for option in (*param.opts, *param.secondary_opts)
        if option.startswith("--")
    ]


def test_the_command_list_is_read_from_the_group():
    found = {path for path, _ in every_command()}
    assert {(), ("run",), ("verify",), ("sandbox",)} <= found


@pytest.mark.parametrize(("path", "command"), COMMANDS)
def test_every_command_has_help(path, command):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    usage = result.output.splitlines()[0]
    assert usage.startswith("Usage: ")
    assert " ".join(("cli", *path)) in usage
    shown = [param for param in command.params if not getattr(param, "hidden", False)]
    for option in long_options(command):
        if any(option in getattr(param, "opts", ()) for param in shown):
            assert option in result.output, f"{' '.join(path)} --help does not list {option}"


def test_python_dash_m_runs():
    done = subprocess.run(
        [sys.executable, "-m", "batch_revoke", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "run" in done.stdout


# What only a run that sends needs: HTTP above all (httpx also loads its own CLI, with rich),
# retries, the event loop, the journal; and what a file of customer ids never needs.
ONLY_WHEN_SENDING = (
    "httpx",
    "tenacity",
    "asyncio",
    "batch_revoke.client",
    "batch_revoke.sender",
    "batch_revoke.journal",
    "phonenumbers",
    "rich",
    "jinja2",
    "openpyxl",
)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ("-q", "run", "{csv}", "--dry-run", "-o", "{out}", "--overwrite"), id="dry-run"
        ),
        pytest.param(("--help",), id="help"),
        pytest.param(("--version",), id="version"),
    ],
)
def test_a_dry_run_and_help_import_nothing_only_a_sending_run_needs(args, write_csv, tmp_path):
    """Their start-up stays small: the command's main runs in a fresh interpreter, which then
    says which of those modules it loaded."""
    path = write_csv("badgeMetaId,customerId\nB1,1\nB1,2\n")
    argv = ["batch-revoke", *(arg.format(csv=path, out=tmp_path / "out.csv") for arg in args)]
    code = (
        "import sys\n"
        "from batch_revoke.__main__ import main\n"
        f"sys.argv = {argv!r}\n"
        "status = main()\n"
        f"print('loaded:', [name for name in {ONLY_WHEN_SENDING!r} if name in sys.modules])\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "loaded: []"
    if "--dry-run" in args:
        assert [row["status"] for row in read_rows(tmp_path / "out.csv")] == ["planned"] * 2


def test_the_packages_names_complete_in_a_notebook_and_import_nothing():
    """dir(batch_revoke) lists the public API (what a notebook completes) without importing
    it: the names load on first use."""
    code = (
        "import sys\n"
        "import batch_revoke\n"
        "names = dir(batch_revoke)\n"
        "print(names == sorted(batch_revoke.__all__), 'RunConfig' in names)\n"
        "print([name for name in sys.modules if name.startswith('batch_revoke.')])\n"
        f"print([name for name in {ONLY_WHEN_SENDING!r} if name in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.stdout.splitlines() == ["True True", "[]", "[]"], done.stderr


def test_every_public_name_resolves_and_the_api_a_caller_needs_is_public():
    import batch_revoke

    for name in batch_revoke.__all__:
        assert getattr(batch_revoke, name) is not None
    # What RunConfig's fields and the Python page's example (docs/python.md) take, from one import.
    needed = {"RunConfig", "run_job", "RateLimit", "ErrorLimit", "RetryPolicy", "IdentifierType"}
    needed |= {"BasicCredentials", "OAuthCredentials", "credentials_from_env", "Progress"}
    assert needed <= set(batch_revoke.__all__)
    from batch_revoke import errors

    raised = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.BatchRevokeError)
    }
    assert raised <= set(batch_revoke.__all__)  # every error a caller may catch


# The pages a person writes (docs/reference/ is generated from the code, so it names every
# option whatever the guides say).
GUIDES = sorted((ROOT / "docs").glob("*.md"))


def guide_pages() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in GUIDES)


@pytest.mark.parametrize(("path", "command"), COMMANDS)
def test_every_option_is_explained_in_a_guide_page(path, command):
    """Every option of every command, the group's own (--verbose, --log-format, …) included,
    is named in a guide page (docs/*.md) as a whole word (--state is not found inside
    --sandbox-state): not only in the generated reference."""
    assert len(GUIDES) >= 5
    guides = guide_pages()
    if path:
        assert f"batch-revoke {' '.join(path)}" in guides, f"{' '.join(path)} is not documented"
    options = long_options(command)
    assert options or not [param for param in command.params if isinstance(param, click.Option)]
    for option in options:
        named = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", guides)
        assert named, f"{' '.join(('batch-revoke', *path))} {option} is in no page of docs/"


def test_every_status_and_exit_code_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    from batch_revoke.model import Status

    for status in Status:
        assert f"`{status.value}`" in readme
    for exit_status in ExitStatus:
        assert f"| {exit_status.value} |" in readme


def test_sandbox_with_an_explicit_host_is_refused(write_csv):
    result = invoke(
        "run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--sandbox", "--cluster", "eu"
    )
    assert result.exit_code == ExitStatus.USAGE
    assert "--sandbox and --cluster" in result.output


def test_sandbox_ignores_a_host_from_the_environment(write_csv, tmp_path):
    path = write_csv("badgeMetaId,customerId\n654bb48766a87827bb61e631,123\n")
    result = invoke(
        "run",
        str(path),
        "--sandbox",
        "-o",
        str(tmp_path / "o.csv"),
        env={"CAP_BASE_URL": "https://x"},
    )
    assert result.exit_code == ExitStatus.OK, result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--max-errors", "0"], "below 1 row"),
        (["--max-errors", "150%"], "above 100%"),
        (["-o", "x.csv.journal", "--dry-run"], "is a journal"),
        (["--resume", "--overwrite", "-o", "x.csv"], "--resume and --overwrite"),
    ],
)
def test_more_bad_options_say_what_to_do(write_csv, tmp_path, args, fragment):
    path = write_csv("badgeMetaId,customerId\nB,1\n")
    done = CliRunner().invoke(cli, ["run", str(path), *args], catch_exceptions=False)
    assert done.exit_code == 2, done.output
    assert fragment in done.output


def test_dry_run_prints_the_calls_and_how_long_they_take(write_csv, tmp_path):
    rows = "".join(f"B1,{n},,E{n}\n" for n in range(250))  # 250 revokeEarn calls
    path = write_csv("badgeMetaId,customerId,issueId,earnedBadgeId\n" + rows)
    out = str(tmp_path / "out.csv")
    args = ["run", str(path), "--dry-run", "-o", out, "--overwrite"]
    unknown = CliRunner().invoke(cli, args)
    known = CliRunner().invoke(cli, [*args, "--rate-limit", "100/min"])
    assert "plan: 250 calls (pass --rate-limit for how long they take)" in unknown.output
    assert "plan: 250 calls: about 3 min at 100/min" in known.output


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--timeout", "nan"], {}, "--timeout nan is not positive"),
        (
            ["--base-url", "https://eu.api.capillarytech.com/api_gateway/v1"],
            {},
            "pass the host root only: --base-url https://eu.api.capillarytech.com",
        ),
        (
            [],
            {"CAP_BASE_URL": "https://eu.example", "CAP_CLUSTER": "eu"},
            "both given in the environment",
        ),
        (["--base-url", "https://eu.example", "--cluster", "eu"], {}, "on the command line"),
    ],
)
def test_bad_connection_options_are_one_line_and_exit_2(write_csv, args, env, fragment):
    path = write_csv("badgeMetaId,customerId\nB,1\n")
    done = invoke("run", str(path), *args, env={"CAP_USERNAME": "u", "CAP_PASSWORD": "p", **env})
    assert done.exit_code == ExitStatus.USAGE, done.output
    assert fragment in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_an_output_hard_linked_to_the_input_is_refused(write_csv, tmp_path):
    path = write_csv("badgeMetaId,customerId\nB,1\n")
    (tmp_path / "linked.csv").hardlink_to(path)
    done = invoke("run", str(path), "--dry-run", "-o", str(tmp_path / "linked.csv"))
    assert done.exit_code == ExitStatus.USAGE, done.output
    assert "--output is the input file" in done.output
    assert path.read_text() == "badgeMetaId,customerId\nB,1\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--fault", "429:#0"], "numbered from #1"),
        (["--sandbox-rate-limit", "0/s"], "would refuse every call"),
    ],
)
def test_bad_sandbox_options_say_what_to_do(args, fragment):
    done = invoke("sandbox", "--port", "0", *args)
    assert done.exit_code == ExitStatus.USAGE, done.output
    assert fragment in done.output


def test_a_sandbox_port_already_taken_is_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = invoke("sandbox", "--port", str(port))
    assert done.exit_code == ExitStatus.USAGE, done.output
    assert f"cannot listen on 127.0.0.1:{port}" in done.output
    assert "Traceback" not in done.output


def test_summary_json_matches_the_result_file(write_csv, tmp_path):
    import json

    path = write_csv("badgeMetaId,customerId,issueId\nB1,1,\nB1,1,\nB1,x,\nB2,2,I2\n")
    out, summary = tmp_path / "out.csv", tmp_path / "summary.json"
    done = invoke("run", str(path), "--dry-run", "-o", str(out), "--summary-json", str(summary))
    data = json.loads(summary.read_text())
    statuses = [row["status"] for row in read_rows(out)]
    assert data["schema"] == "batch-revoke/summary/1"
    assert data["exit_status"] == done.exit_code == ExitStatus.NOT_ALL_REVOKED
    assert data["rows"]["total"] == len(statuses) == 4
    assert {k: v for k, v in data["rows"].items() if v and k != "total"} == {
        s: statuses.count(s) for s in set(statuses)
    }
    assert data["errors"] == [
        {"status": "invalid", "error_code": "bad_customer_id", "rows": 1},
        {"status": "duplicate", "error_code": "duplicate_row", "rows": 1},
    ]
    assert "duplicate_row (duplicate)" in done.output  # the text summary's "by error code"
    assert data["requests"] == {"revokeIssue": 2}
    assert data["output"] == str(out)
    assert data["journal"] is None


def test_summary_json_to_stdout_leaves_stdout_for_it_alone(write_csv, tmp_path):
    import json

    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "batch_revoke", "run", str(path), "--dry-run"),
            *("-o", str(tmp_path / "o.csv"), "--summary-json", "-"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["planned"] == 1
    assert "planned 1 rows" in done.stderr


FULL = "/dev/full"  # every write to it fails with "No space left on device"
needs_dev_full = pytest.mark.skipif(
    not (os.path.exists(FULL) and stat.S_ISCHR(os.stat(FULL).st_mode)), reason="no /dev/full"
)


@needs_dev_full
def test_a_summary_json_that_cannot_be_written_says_so_and_is_a_failed_output(write_csv, tmp_path):
    """Through a link of our own: the file is never put in place of /dev/full itself (which,
    as root, was what happened), and the disk-full answer reaches the person."""
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    summary = tmp_path / "summary.json"
    summary.symlink_to(FULL)
    done = invoke(
        "run", str(path), "--dry-run", "-o", str(tmp_path / "o.csv"), "--summary-json", str(summary)
    )
    assert done.exit_code == ExitStatus.ABORTED, done.output
    assert done.stderr.splitlines()[-1] == (
        f"batch-revoke: error: cannot write {summary}: No space left on device"
    )
    assert "planned 1 rows" in done.stderr  # the run's own summary is told first
    assert summary.is_symlink()
    assert stat.S_ISCHR(os.stat(FULL).st_mode)


@needs_dev_full
def test_a_summary_json_to_a_full_stdout_says_so_and_is_a_failed_output(write_csv, tmp_path):
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    with open(FULL, "w") as full:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "batch_revoke", "run", str(path), "--dry-run"),
                *("-o", str(tmp_path / "o.csv"), "--summary-json", "-"),
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == ExitStatus.ABORTED, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "batch-revoke: error: cannot write standard output: No space left on device"
    )


def test_excel_output_has_a_bom_and_no_cell_runs_as_a_formula(write_csv, tmp_path):
    path = write_csv("badgeMetaId,customerId,,note\nB1,=1+1,x,@SUM(A1)\nB1,2,y,-caf\u00e9\n")
    out = tmp_path / "out.csv"
    done = invoke("run", str(path), "--dry-run", "-o", str(out), "--excel")
    assert done.exit_code == ExitStatus.NOT_ALL_REVOKED, done.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["badgeMetaId", "customerId", "column_3", "note"]
    assert rows[1][:4] == ["B1", "'=1+1", "x", "'@SUM(A1)"]
    assert rows[2][3] == "'-caf\u00e9"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    plain = tmp_path / "plain.csv"
    invoke("run", str(path), "--dry-run", "-o", str(plain))
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "=1+1" in plain.read_text(encoding="utf-8")  # the plain file keeps values as written


def test_a_bare_carriage_return_in_a_field_stays_inside_its_row(write_csv, tmp_path):
    path = write_csv('badgeMetaId,customerId,note\nB1,1,"a\rb"\nB1,2,c\n')
    out = tmp_path / "out.csv"
    invoke("run", str(path), "--dry-run", "-o", str(out))
    rows = read_rows(out)
    assert [r["note"] for r in rows] == ["a\rb", "c"]
    assert [r["row"] for r in rows] == ["1", "2"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["run", "missing.csv"], "missing.csv: no such file", id="missing-input"),
        pytest.param(["run", "x.csv", "--bogus"], "No such option '--bogus'", id="unknown-option"),
        pytest.param(["run"], "Missing argument 'INPUT.csv'", id="missing-argument"),
        pytest.param(["run", "x.csv", "--concurrency", "0"], "--concurrency", id="bad-value"),
        pytest.param(["run", "x.csv", "--max-errors", "lots"], "--max-errors", id="refused-value"),
        pytest.param(["revoke"], "No such command 'revoke'", id="unknown-command"),
    ],
)
def test_json_log_format_gives_refusals_and_usage_errors_as_json(tmp_path, args, fragment):
    import json

    result = invoke("--log-format", "json", *args)
    assert result.exit_code == ExitStatus.USAGE
    (line,) = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["level"] == "error"
    assert line["event"] == "error"
    assert line["exit_status"] == ExitStatus.USAGE
    assert fragment in line["message"]
    assert set(line) >= {"time", "run_id"}


def test_text_log_format_keeps_clicks_usage_errors_as_they_are():
    result = invoke("run", "x.csv", "--bogus")
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith("Usage: ")
    assert "Error: No such option" in result.stderr


# Each option that becomes a RunConfig field (or RunConfig.retry's), and how the command turns
# its value into the field's. Options absent here and from NOT_CONFIG must be added to one of them.
AS_CONFIG = {
    "base_url": ("base_url", lambda value: value or ""),
    "batch_size": ("batch_size", None),
    "concurrency": ("concurrency", None),
    "rate_limit": ("rate_limit", None),
    "rate_window": ("rate_window", None),
    "max_throttle_wait": ("max_throttle_wait", None),
    "timeout": ("timeout", None),
    "max_attempts": ("max_attempts", None),
    "max_unanswered": ("max_unanswered", None),
    "grace": ("grace", None),
    "identifier_type": ("identifier_type", IdentifierType.parse),
    "output_path": ("output_path", None),
    "resume": ("resume", None),
    "report": ("report", None),
    "overwrite": ("overwrite", None),
    "sheet": ("sheet", None),
    "excel": ("excel", None),
    "dry_run": ("dry_run", None),
    "no_verify": ("verify", lambda value: not value),
    "progress_every": ("progress_every", None),
    "max_errors": ("max_errors", None),
    "auto_resume": ("auto_resume", None),
    "output_dir": ("output_dir", None),
    "default_region": ("default_region", None),
}
NOT_CONFIG = {
    "input_path",
    "cluster",  # a name for a base_url
    "profile",  # settings read from profiles.toml, and credentials
    "summary_json",
    "sandbox",
    "sandbox_state",
    *("latency_ms", "faults", "seed", "sandbox_rate_limit", "retry_after", "slow_seconds"),
    "token_ttl",
}


@pytest.mark.parametrize("command", ["run", "verify"])
def test_every_option_default_is_the_librarys(command, monkeypatch):
    """One definition: `batch-revoke run` with no options runs as RunConfig does."""
    for name in [n for n in os.environ if n.startswith(("CAP_", "BATCH_REVOKE_"))]:
        monkeypatch.delenv(name)
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    defaults |= dataclasses.asdict(RetryPolicy())  # --max-attempts, --max-throttle-wait
    ctx = cli.commands[command].make_context(command, ["input.csv"])
    unmapped = set(ctx.params) - set(AS_CONFIG) - NOT_CONFIG
    assert not unmapped, f"add {unmapped} to AS_CONFIG or NOT_CONFIG"
    compared = set()
    for name, value in ctx.params.items():
        if name in AS_CONFIG:
            field, convert = AS_CONFIG[name]
            assert (convert or (lambda v: v))(value) == defaults[field], f"--{name}"
            compared.add(name)
    assert {"batch_size", "concurrency", "timeout", "identifier_type"} <= compared


@pytest.mark.parametrize("command", ["run", "verify"])
def test_a_command_without_options_runs_the_librarys_config(command, write_csv, monkeypatch):
    """What reaches run_job, not only what --help shows: each option lands in its own field."""
    import batch_revoke.job

    seen: list[RunConfig] = []

    def captured(config: RunConfig, *_: object, **__: object):
        seen.append(config)
        raise SystemExit(0)

    for name in [n for n in os.environ if n.startswith(("CAP_", "BATCH_REVOKE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(batch_revoke.job, "run_job", captured)
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    base = "https://eu.api.capillarytech.com"
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p", "CAP_BASE_URL": base}
    done = invoke(command, str(path), env=env)
    assert done.exit_code == 0, done.output
    (config,) = seen
    library = RunConfig(path, base_url=base, credentials=config.credentials)
    if command == "verify":
        library = dataclasses.replace(library, input_is_result=True)
    assert config == library


# --- the whole command line's options, before the command or after it ----------------------

SUBCOMMANDS = [param for param in COMMANDS if param.values[0]]
GROUP_OPTIONS = (
    ["-q"],
    ["--quiet"],
    ["-v"],
    ["--verbose"],
    ["--log-format", "json"],
    ["--traceback"],
)


@pytest.mark.parametrize(("path", "command"), SUBCOMMANDS)
@pytest.mark.parametrize("option", GROUP_OPTIONS, ids=lambda option: option[0])
def test_the_whole_command_lines_options_are_taken_after_the_command(path, command, option):
    """`batch-revoke run f.csv -q`, not only `batch-revoke -q run f.csv`: one definition."""
    done = invoke(*path, *option, "--help")
    assert done.exit_code == 0, done.output
    assert option[0] in done.output


def sandbox_run(tmp_path, *options: str):
    path = tmp_path / "in.csv"
    path.write_text("badgeMetaId,customerId\nB1,1\n", encoding="utf-8")
    return invoke("run", str(path), "--sandbox", "-o", str(tmp_path / "out.csv"), *options)


def test_quiet_and_verbose_after_the_command_work_as_before_it(tmp_path):
    plain = sandbox_run(tmp_path, "--overwrite")
    assert "sending 1 rows to" in plain.stderr
    assert "request 1 (revokeIssue" not in plain.stderr
    quiet = sandbox_run(tmp_path, "--overwrite", "-q")
    assert "sending" not in quiet.stderr
    assert "results: " in quiet.stderr  # the summary stays
    verbose = sandbox_run(tmp_path, "--overwrite", "--verbose")
    assert "request 1 (revokeIssue, 1 rows): HTTP " in verbose.stderr


def test_log_format_after_the_command_makes_every_line_json(tmp_path):
    import json

    done = sandbox_run(tmp_path, "--log-format", "json")
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines[-1]["event"] == "summary"
    assert lines[-1]["summary"]["rows"]["total"] == 1
    # After the command, it wins over the one before it, as options do.
    again = invoke("--log-format", "json", "run", "x.csv", "--log-format", "text")
    assert again.stderr.startswith("batch-revoke: error: x.csv: no such file"), again.stderr


def test_verify_and_sandbox_take_log_format_after_the_command(tmp_path):
    import json
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = invoke("sandbox", "--port", str(port), "--log-format", "json")
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert f"cannot listen on 127.0.0.1:{port}" in line["message"]
    ran = sandbox_run(tmp_path)
    assert ran.exit_code == ExitStatus.NOT_ALL_REVOKED, ran.output
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p", "CAP_BASE_URL": "http://127.0.0.1:9"}
    # A --sandbox run's journal would refuse any host: without it, the host is the command's.
    (tmp_path / "out.csv.journal").unlink()
    out = tmp_path / "verified.csv"
    verified = invoke(
        "verify", str(tmp_path / "out.csv"), "-o", str(out), "--log-format", "json", env=env
    )
    assert verified.exit_code == ExitStatus.NOT_ALL_REVOKED, verified.output
    summary = json.loads(verified.stderr.splitlines()[-1])
    assert summary["event"] == "summary"
    assert summary["summary"]["output"] == str(out)


def test_traceback_after_the_command_shows_the_stack(tmp_path):
    missing = str(tmp_path / "missing.csv")
    plain = invoke("report", missing)
    assert plain.exit_code == ExitStatus.USAGE
    assert plain.exception is None or isinstance(plain.exception, SystemExit)
    shown = invoke("report", missing, "--traceback")
    assert type(shown.exception).__name__ == "InputError", shown.output


# The names the vendor's pages also give the clusters: "in (India)", "apac2 (Asia, South-East
# Asia)" (../shared/api-docs/README.md).
CLUSTER_ALIASES = {
    "india": "https://apac.api.capillarytech.com",
    "asia": "https://apac2.api.capillarytech.com",
    "sea": "https://apac2.api.capillarytech.com",
}


@pytest.mark.parametrize(("alias", "host"), CLUSTER_ALIASES.items())
@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_cluster_by_the_vendors_other_name_is_that_cluster(
    write_csv, monkeypatch, alias, host, given
):
    import batch_revoke.job

    seen: list[RunConfig] = []

    def captured(config: RunConfig, *_: object, **__: object):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(batch_revoke.job, "run_job", captured)
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p"}
    args = ["--cluster", alias] if given == "option" else []
    if given == "environment":
        env["CAP_CLUSTER"] = alias
    done = invoke("run", str(path), *args, env=env)
    assert done.exit_code == 0, done.output
    (config,) = seen
    assert config.base_url == host
    # The cluster by its name in the vendor's host list, as a resume command repeats it.
    finish = resume_options(config.identity_options())
    assert finish[:2] == ["--cluster", {"india": "in"}.get(alias, "apac2")]


def test_the_clusters_other_names_are_in_help_and_the_docs():
    shown = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    reference = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    rows = [line for line in reference.splitlines() if line.startswith("| `--cluster")]
    assert len(rows) == 3  # run, retry and verify
    support = (ROOT / "docs" / "support.md").read_text(encoding="utf-8")
    (item,) = [part for part in support.split("\n- ") if part.startswith("`--base-url")]
    for alias in CLUSTER_ALIASES:
        assert re.search(rf"\b{alias}\b", shown), alias
        assert re.search(rf"\b{alias}\b", item), alias
        for row in rows:
            assert re.search(rf"\b{alias}\b", row), alias
    assert RunConfig(ROOT / "x.csv", cluster="sea").base_url == CLUSTER_ALIASES["sea"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run", "x.csv", "--log-format", "json", "--bogus"], id="unknown-after-it"),
        pytest.param(
            ["run", "x.csv", "--concurrency", "0", "--log-format", "json"], id="bad-before"
        ),
        pytest.param(["--log-format", "json", "run", "x.csv", "--bogus"], id="before-the-command"),
    ],
)
def test_a_usage_error_comes_as_json_wherever_log_format_json_stands(args):
    import json

    done = invoke(*args)
    assert done.exit_code == ExitStatus.USAGE
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert (line["event"], line["exit_status"]) == ("error", 2)
    assert "--help" in line["message"]


# --- files an earlier batch-revoke wrote: refused in one line --------------------------------


def old_journal(path, meta: dict[str, str]) -> None:
    """A journal as an earlier batch-revoke left it: its meta, the only part a refusal reads."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    db.commit()
    db.close()


def old_meta(path) -> dict[str, str]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()


@pytest.mark.parametrize(
    ("meta", "writer"),
    [
        pytest.param({"format": "3"}, "an earlier batch-revoke (journal format 3)", id="format-3"),
        pytest.param(
            {"format": "5", "version": "0.2.0"},
            "batch-revoke 0.2.0 (journal format 5)",
            id="named-version",
        ),
    ],
)
def test_a_journal_of_another_format_is_refused_in_one_line_and_left_as_it_is(
    tmp_path, meta, writer
):
    path = tmp_path / "in.csv"
    path.write_text("badgeMetaId,customerId\nB1,1\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    journal = tmp_path / "out.csv.journal"
    old_journal(journal, {**meta, "input_sha256": "0" * 64, "options": "{}", "state": "running"})
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p", "CAP_BASE_URL": "http://127.0.0.1:9"}
    done = invoke("run", str(path), "-o", str(out), "--resume", env=env)
    assert done.exit_code == ExitStatus.USAGE, done.output
    (line,) = done.stderr.splitlines()
    assert line == (
        f"batch-revoke: error: {journal} was written by {writer}; finish that run with the "
        "version that wrote it, or start again with --overwrite"
    )
    assert old_meta(journal) == {
        **meta,
        "input_sha256": "0" * 64,
        "options": "{}",
        "state": "running",
    }


def test_a_new_journal_names_the_version_that_wrote_it(tmp_path):
    from importlib.metadata import version

    from batch_revoke.journal import Journal, JournalIdentity

    journal = Journal.create(tmp_path / "out.csv.journal", JournalIdentity("0" * 64, {}))
    assert journal.meta()["version"] == version("batch-revoke")
    journal.close()


@pytest.mark.parametrize(
    ("layout", "missing"),
    [
        pytest.param(RESULT_COLUMNS[:-1], "request_id", id="before-request_id"),
        pytest.param(
            RESULT_COLUMNS[:-2], "resolved_customer_id or request_id", id="before-resolved"
        ),
    ],
)
@pytest.mark.parametrize("command", ["verify", "report", "run"])
def test_a_result_file_of_an_earlier_layout_is_refused_in_one_line(
    tmp_path, layout, missing, command
):
    cells = ["B1", "1", "1", "revokeIssue", "unconfirmed", "timeout", "lost", "", "", "1", "", ""]
    path = tmp_path / "old.csv"
    path.write_text(
        ",".join(["badgeMetaId", "customerId", *layout])
        + "\n"
        + ",".join(cells[: 2 + len(layout)])
        + "\n",
        encoding="utf-8",
    )
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p", "CAP_BASE_URL": "http://127.0.0.1:9"}
    done = invoke(command, str(path), "-o", str(tmp_path / "new.csv"), env=env)
    assert done.exit_code == ExitStatus.USAGE, done.output
    (line,) = done.stderr.splitlines()
    assert line == (
        f"batch-revoke: error: {path}: a result file of an earlier batch-revoke (no {missing} "
        "column); read it with the version that wrote it"
    )
