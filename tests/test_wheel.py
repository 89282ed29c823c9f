"""What users install: the wheel, in a fresh virtualenv, run from another folder."""

from __future__ import annotations

import csv
import os
import signal
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel; its dependencies come from this environment (a
    path in a .pth file: no network, and not this checkout, which is never on its path)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(work / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (work / "dist").glob("batch_revoke-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dependencies = [p for p in site.getsitepackages() if "site-packages" in p]
    Path(purelib, "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return env_dir


def test_the_installed_tool_runs_a_file_against_its_own_sandbox(installed, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "mine.csv").write_text(
        "badgeMetaId,customerId,issueId\n670371e39235f02fd5d71cbd,387403362,\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAP_", "PYTHON"))}
    done = subprocess.run(
        [installed / "bin" / "batch-revoke", "run", "mine.csv", "--sandbox", "-o", "out.csv"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with (folder / "out.csv").open(newline="", encoding="utf-8") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["revoked"]
    where = subprocess.run(
        [installed / "bin" / "python", "-c", "import batch_revoke; print(batch_revoke.__file__)"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(installed) in where  # the wheel's copy, not this checkout


def test_the_help_s_first_example_runs_as_printed_in_an_empty_folder(installed, tmp_path):
    """`batch-revoke samples`, then the sample against the sandbox, as --help prints them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAP_", "PYTHON"))}
    command = installed / "bin" / "batch-revoke"
    shown = subprocess.run([command, "--help"], env=env, capture_output=True, text=True).stdout
    assert "batch-revoke samples" in shown
    assert "batch-revoke run samples/badges.csv --sandbox" in shown
    for args in (["samples"], ["run", "samples/badges.csv", "--sandbox", "-o", "out.csv"]):
        done = subprocess.run(
            [command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode in (0, 1), done.stderr  # the sample holds rows that fail
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as handle:
        statuses = {row["status"] for row in csv.DictReader(handle)}
    assert "revoked" in statuses


def test_the_installed_package_is_typed_and_exports_its_api(installed, tmp_path):
    code = (
        "import importlib.resources as r, batch_revoke as b;"
        "assert r.files('batch_revoke').joinpath('py.typed').is_file();"
        "assert r.files('batch_revoke').joinpath('samples/badges.csv').is_file();"
        "assert r.files('batch_revoke').joinpath('templates/report.html.j2').is_file();"
        "print(b.RunConfig.__name__, b.run_job.__name__, b.run_job_async.__name__)"
    )
    done = subprocess.run(
        [installed / "bin" / "python", "-c", code],
        cwd=tmp_path,  # not this checkout, which `python -c` would import first
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["RunConfig", "run_job", "run_job_async"]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_the_installed_command_holds_a_sigterm_that_comes_while_it_starts(installed, tmp_path):
    """The console script guards its first instant too: a SIGTERM while Python imports the
    tool (about a second) is one line and exit 3, not a death with status 143."""
    from tests.conftest import catches, wait_for

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAP_", "PYTHON"))}
    process = subprocess.Popen(
        [installed / "bin" / "batch-revoke", "run", "none.csv", "--dry-run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: catches(process.pid, signal.SIGTERM))
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 3, stderr
    assert stderr.startswith("batch-revoke: interrupted (SIGTERM) before anything was sent")
