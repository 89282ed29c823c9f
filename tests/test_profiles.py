"""Profiles and their credentials: profiles.toml in a config folder of the test's own
(XDG_CONFIG_HOME), the keyring in memory (or in a file, for a CLI subprocess), the hidden prompt
through a pseudo-terminal, and the password in no output of a run."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner
from keyring.backends import fail

import batch_revoke.job
from batch_revoke.cli import cli
from batch_revoke.config import RateLimit, RunConfig
from batch_revoke.credentials import BasicCredentials
from batch_revoke.model import ExitStatus
from tests.conftest import ROOT, SAMPLE, read_rows, run_cli
from tests.memory_keyring import MemoryKeyring

PASSWORD = "demo-password"  # the sandbox's till: demo.till
PROFILE = """\
[x]
rate_limit = "100/min"
username = "demo.till"
credentials = "keyring"
"""


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    """The CLI in process; stdin is not a terminal (no prompt but login's, read from `input`)."""
    return CliRunner().invoke(cli, list(args), env=env, input=input)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where profiles.toml goes: platformdirs honours XDG_CONFIG_HOME on Linux."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in [n for n in os.environ if n.startswith(("CAP_", "BATCH_REVOKE_"))]:
        monkeypatch.delenv(name)
    return tmp_path / "config" / "batch-revoke" / "profiles.toml"


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


def write(path: Path, text: str = PROFILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The RunConfig that reaches run_job; nothing is run."""
    seen: list[RunConfig] = []

    def capture(config: RunConfig, *_: object, **__: object):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(batch_revoke.job, "run_job", capture)
    return seen


@pytest.mark.parametrize(
    ("text", "args", "said"),
    [
        pytest.param(PROFILE + "colour = 'red'\n", ["x"], "[x] colour is not a profile", id="key"),
        pytest.param(PROFILE + "password = 'p'\n", ["x"], "[x] password: a secret", id="secret"),
        pytest.param(PROFILE, ["y"], "no profile [y]", id="absent"),
        pytest.param("[x\n", ["x"], "is not valid TOML: ", id="toml"),
        pytest.param(PROFILE + "credentials2 = 1\n", ["x"], "credentials2 is not", id="near"),
        pytest.param(PROFILE + "rate_limit = 100\n", ["x"], "is not valid TOML", id="twice"),
        pytest.param(PROFILE + "concurrency = 'many'\n", ["x"], "'many' is not", id="number"),
        pytest.param(PROFILE + "cluster = 'mars'\n", ["x"], "'mars' is unknown", id="cluster"),
        pytest.param(PROFILE.replace("100/min", "fast"), ["x"], "[x] rate limit 'fast'", id="rate"),
        pytest.param(
            PROFILE + "identifier_type = 'phone'\n", ["x"], "'phone' is unknown", id="type"
        ),
    ],
)
def test_a_broken_profile_is_refused_in_one_line(config_home, text, args, said, write_csv):
    path = write(config_home, text)
    done = invoke("run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--profile", *args)
    assert done.exit_code == ExitStatus.USAGE, done.output
    (line,) = done.output.splitlines()
    assert str(path) in line, line
    assert said in line, line


def test_the_command_line_wins_over_the_profile_and_it_over_the_environment(
    config_home, memory_keyring, captured, write_csv
):
    write(config_home, PROFILE + 'cluster = "eu"\nconcurrency = 2\n')
    memory_keyring.set_password("batch-revoke", "x:demo.till", PASSWORD)
    path = str(write_csv("badgeMetaId,customerId\nB1,1\n"))
    env = {"BATCH_REVOKE_RATE_LIMIT": "7/min", "CAP_BASE_URL": "https://other.example"}
    assert invoke("run", path, "--profile", "x", env=env).exit_code == 0
    assert invoke("run", path, "--profile", "x", "--rate-limit", "5/min", env=env).exit_code == 0
    env["BATCH_REVOKE_PROFILE"] = "x"
    typed = ["--base-url", "https://typed.example", "--concurrency", "3"]
    assert invoke("verify", path, *typed, env=env).exit_code == 0
    profile, typed_rate, typed_host = captured
    assert profile.rate_limit == RateLimit.parse("100/min")
    assert (profile.base_url, profile.concurrency) == ("https://eu.api.capillarytech.com", 2)
    assert profile.credentials == BasicCredentials("demo.till", PASSWORD)
    assert typed_rate.rate_limit == RateLimit.parse("5/min")
    assert (typed_host.base_url, typed_host.concurrency) == ("https://typed.example", 3)


def test_the_environments_credentials_come_before_the_keyrings(
    config_home, memory_keyring, captured, write_csv
):
    write(config_home, PROFILE + 'cluster = "eu"\n')
    memory_keyring.set_password("batch-revoke", "x:demo.till", PASSWORD)
    env = {"CAP_USERNAME": "env.till", "CAP_PASSWORD": "env-pw"}
    path = str(write_csv("badgeMetaId,customerId\nB1,1\n"))
    assert invoke("run", path, "--profile", "x", env=env).exit_code == 0
    assert captured[0].credentials == BasicCredentials("env.till", "env-pw")


def test_no_credentials_anywhere_names_login(config_home, memory_keyring, write_csv):
    write(config_home, PROFILE + 'cluster = "eu"\n')
    done = invoke("run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--profile", "x")
    assert done.exit_code == ExitStatus.USAGE
    assert "no credentials" in done.output
    assert "batch-revoke login --profile NAME" in done.output


def test_a_dry_run_needs_no_credentials(config_home, memory_keyring, write_csv, tmp_path):
    write(config_home, PROFILE + 'cluster = "eu"\n')
    path = str(write_csv("badgeMetaId,customerId\nB1,1\n"))
    done = invoke("run", path, "--profile", "x", "--dry-run", "-o", str(tmp_path / "o.csv"))
    assert done.exit_code == 0, done.output


def test_without_an_os_keyring_one_line_says_what_to_use(config_home, write_csv):
    write(config_home, PROFILE + 'cluster = "eu"\n')
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        done = invoke("run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--profile", "x")
        listed = invoke("profiles")
    finally:
        keyring.set_keyring(before)
    assert done.exit_code == ExitStatus.USAGE
    (line,) = done.output.splitlines()
    assert "no OS keyring on this machine (keyring found no backend)" in line
    assert "CAP_USERNAME/CAP_PASSWORD in the job's environment" in line
    assert 'credentials = "prompt"' in line
    assert "[x]" in listed.output
    assert "no OS keyring" in listed.output


def test_login_stores_what_the_api_accepts(config_home, memory_keyring):
    write(config_home)
    done = invoke("login", "--profile", "x", "--sandbox", input=f"{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert "accepted; stored in the OS keyring" in done.output
    assert "entry x:demo.till" in done.output
    assert PASSWORD not in done.output
    assert memory_keyring.get_password("batch-revoke", "x:demo.till") == PASSWORD


def test_login_asks_for_the_till_id_the_profile_lacks(config_home, memory_keyring):
    write(config_home, "[y]\ncluster = 'eu'\n")
    done = invoke("login", "--profile", "y", "--sandbox", input=f"demo.till\n{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert memory_keyring.get_password("batch-revoke", "y") == "demo.till"
    assert memory_keyring.get_password("batch-revoke", "y:demo.till") == PASSWORD


def test_login_stores_nothing_the_api_rejects(config_home, memory_keyring):
    write(config_home)
    done = invoke("login", "--profile", "x", "--sandbox", input="wrong\n")
    assert done.exit_code == ExitStatus.USAGE
    assert "rejected the credentials (HTTP 401); nothing stored" in done.output
    assert memory_keyring.entries == {}


def test_login_checks_an_oauth_key_with_the_token_call(config_home, memory_keyring):
    write(config_home, "[o]\noauth_key = 'demo-key'\n")
    assert invoke("login", "--profile", "o", "--sandbox", input="nope\n").exit_code == 2
    done = invoke("login", "--profile", "o", "--sandbox", input="demo-secret\n")
    assert done.exit_code == 0, done.output
    assert memory_keyring.entries == {("batch-revoke", "o:demo-key"): "demo-secret"}


def test_profiles_shows_the_file_and_a_sample_then_each_profile(config_home, memory_keyring):
    absent = invoke("profiles")
    assert absent.exit_code == 0
    assert absent.output.startswith(f"{config_home}\n")
    assert 'credentials = "keyring"' in absent.output
    write(config_home)
    assert "[x] rate_limit=100/min username=demo.till: not in the keyring" in (
        invoke("profiles").output
    )
    memory_keyring.set_password("batch-revoke", "x:demo.till", PASSWORD)
    listed = invoke("profiles").output
    assert "[x] rate_limit=100/min username=demo.till: in the keyring" in listed
    assert PASSWORD not in listed


# --- the CLI as a person runs it: a subprocess, the keyring in a file --------------------------


def file_keyring(tmp_path: Path, config_home: Path) -> dict[str, str]:
    return {
        "PYTHON_KEYRING_BACKEND": "tests.memory_keyring.FileKeyring",
        "TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(config_home.parent.parent),
    }


@pytest.mark.e2e
def test_the_password_is_in_no_output_of_a_run(config_home, tmp_path):
    write(config_home)
    env = file_keyring(tmp_path, config_home)
    (tmp_path / "keyring.json").write_text(f'{{"batch-revoke/x:demo.till": "{PASSWORD}"}}')
    out = tmp_path / "out.csv"
    files = ["-o", str(out), "--summary-json", str(tmp_path / "s.json")]
    files += ["--report", str(tmp_path / "r.html")]
    args = [str(SAMPLE), "--profile", "x", "--sandbox", "-v", *files]
    done = run_cli(None, *args, env=env)
    assert done.returncode == ExitStatus.NOT_ALL_REVOKED, done.stderr
    assert {row["status"] for row in read_rows(out)} >= {"revoked"}
    json_lines = run_cli(None, *args, "--overwrite", "--log-format", "json", env=env)
    written = [path.read_bytes() for path in tmp_path.glob("*") if path.is_file()]
    for text in [done.stdout, done.stderr, json_lines.stdout, json_lines.stderr]:
        assert PASSWORD not in text
    for content in written:
        if b"batch-revoke/x:demo.till" not in content:  # the test keyring itself
            assert PASSWORD.encode() not in content


@pytest.mark.e2e
def test_the_hidden_prompt_at_a_terminal(config_home, tmp_path):
    """credentials = "prompt": asked at the terminal with the echo off, then the run goes on
    against the sandbox on 127.0.0.1."""
    write(config_home, PROFILE.replace('"keyring"', '"prompt"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAP_")}
    env.update(file_keyring(tmp_path, config_home))
    argv = [sys.executable, "-m", "batch_revoke", "run", str(SAMPLE), "--profile", "x"]
    argv += ["--sandbox", "-o", str(tmp_path / "out.csv")]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the pseudo-terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, argv, env)
    seen = read_until(terminal, b"password for demo.till (profile x): ")
    os.write(terminal, f"{PASSWORD}\n".encode())
    seen += read_until(terminal, None)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == ExitStatus.NOT_ALL_REVOKED, seen
    assert PASSWORD.encode() not in seen  # not echoed
    assert b"revoked               8" in seen
    assert b"sending 17 rows to http://127.0.0.1:" in seen


def read_until(terminal: int, wanted: bytes | None, timeout: float = 60.0) -> bytes:
    """What the terminal shows until `wanted` (None: until the child has closed it)."""
    seen, deadline = b"", time.monotonic() + timeout
    while wanted is None or wanted not in seen:
        assert time.monotonic() < deadline, seen
        if not select.select([terminal], [], [], 0.5)[0]:
            continue
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child is gone
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_login_of_a_prompt_profile_says_no_login_is_needed(config_home, memory_keyring):
    write(config_home, PROFILE.replace('"keyring"', '"prompt"'))
    done = invoke("login", "--profile", "x", "--sandbox", input=f"{PASSWORD}\n")
    assert done.exit_code == ExitStatus.USAGE
    assert 'credentials = "prompt": no login is needed, the run asks at the terminal' in done.output
    assert memory_keyring.get_password("batch-revoke", "x:demo.till") is None


def test_login_without_an_os_keyring_points_to_the_prompt_not_back_to_login(config_home):
    write(config_home)
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        done = invoke("login", "--profile", "x", "--sandbox", input=f"{PASSWORD}\n")
    finally:
        keyring.set_keyring(before)
    assert done.exit_code == ExitStatus.USAGE
    (line,) = done.output.splitlines()
    assert 'write credentials = "prompt" in [x] (no login: the run asks at the terminal)' in line


def test_another_profiles_mistake_does_not_stop_this_one(config_home, captured, write_csv):
    write(config_home, PROFILE + 'cluster = "eu"\n\n[bad]\npassword = "oops"\n')
    path = str(write_csv("badgeMetaId,customerId\nB1,1\n"))
    env = {"CAP_USERNAME": "u", "CAP_PASSWORD": "p"}
    done = invoke("run", path, "--profile", "x", env=env)
    assert done.exit_code == 0, done.output
    assert captured[0].base_url == "https://eu.api.capillarytech.com"
    assert invoke("profiles").exit_code == ExitStatus.USAGE  # the listing names the mistake


def test_a_profile_without_a_host_is_refused_before_any_secret_is_asked(config_home, write_csv):
    write(config_home)  # no cluster, no base_url
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # asking the keyring would say "no OS keyring"
    try:
        done = invoke("run", str(write_csv("badgeMetaId,customerId\nB1,1\n")), "--profile", "x")
    finally:
        keyring.set_keyring(before)
    assert done.exit_code == ExitStatus.USAGE
    assert "no API host" in done.output
