"""`verify` reads back from the host the run used: the run's journal gives it, and a different
one is refused as a resume refuses it (rows settled from another org's data would be wrong)."""

from __future__ import annotations

from tests.conftest import read_rows, run_cli, sandbox


def unconfirmed_run(running, tmp_path, write_csv):
    path = write_csv(
        "badgeMetaId,customerId,earnedBadgeId\n"
        "698dae82d30c4f6b3da9dc06,566135941,698daf848644c157e72d83f3\n"
    )
    out = tmp_path / "out.csv"
    done = run_cli(running, str(path), "-o", str(out), "--no-verify", "--max-attempts", "1")
    assert {r["status"] for r in read_rows(out)} == {"unconfirmed"}, done.stderr
    return out


def test_verify_takes_the_runs_host_from_its_journal(tmp_path, write_csv):
    with sandbox("apply-drop:#1") as (running, _state):
        out = unconfirmed_run(running, tmp_path, write_csv)
        verified = tmp_path / "verified.csv"
        # No host in the environment or on the command line: the journal's is used.
        done = run_cli(
            running, str(out), "-o", str(verified), env={"CAP_BASE_URL": ""}, command="verify"
        )
    assert "verifying 1 rows to http://127.0.0.1:" in done.stderr, done.stderr
    assert [r["status"] for r in read_rows(verified)] == ["revoked"]


def test_verify_refuses_a_host_other_than_the_runs(tmp_path, write_csv):
    with sandbox("apply-drop:#1") as (running, _state), sandbox() as (other, _):
        out = unconfirmed_run(running, tmp_path, write_csv)
        done = run_cli(other, str(out), "-o", str(tmp_path / "v.csv"), command="verify")
    assert done.returncode == 2, done.stderr
    assert "was started with other options: host" in done.stderr
    assert not (tmp_path / "v.csv").exists()


def test_verify_of_a_sandbox_runs_result_says_there_is_nothing_to_read_back(tmp_path, write_csv):
    path = write_csv("badgeMetaId,customerId\nB1,1\n")
    out = tmp_path / "out.csv"
    run_cli(None, str(path), "--sandbox", "-o", str(out))
    done = run_cli(None, str(out), "--base-url", "http://127.0.0.1:9", command="verify")
    assert done.returncode == 2
    assert "was written by a run against --sandbox, whose state ended with it" in done.stderr
