"""The run's settings as a user writes them (batch_revoke/config.py): --max-errors and
--rate-limit at their edges, every refused option with what it says and how to fix it, a limit
as the summary reads it back, text from a library caller, and the options a resume repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_revoke.config import (
    SANDBOX_LABEL,
    ErrorLimit,
    RateLimit,
    RetryPolicy,
    RunConfig,
    estimate,
    finish_command,
    resume_options,
)
from batch_revoke.credentials import CLUSTERS, NO_CREDENTIALS_FIX, BasicCredentials
from batch_revoke.errors import ConfigError
from batch_revoke.model import IdentifierType
from batch_revoke.outputs import check_targets

MAX_ERRORS_FIX = "e.g. --max-errors 50 or --max-errors 5%; leave it out for no limit"
RATE_LIMIT_FIX = "e.g. --rate-limit 100/min (Capillary demo clusters allow 100 per minute)"


# --- --max-errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "percent"), [("0.5%", 0.5), ("1%", 1.0), ("100%", 100.0)])
def test_max_errors_takes_any_share_above_nothing_up_to_every_row(text, percent):
    assert ErrorLimit.parse(text) == ErrorLimit(percent=percent)


def test_max_errors_of_one_row_is_a_limit():
    assert ErrorLimit.parse("1") == ErrorLimit(count=1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0%", "--max-errors '0%' is below 1 row or above 100%"),
        ("150%", "--max-errors '150%' is below 1 row or above 100%"),
        ("0", "--max-errors '0' is below 1 row"),
        ("1.5", "--max-errors '1.5' is below 1 row"),
        ("lots", "--max-errors 'lots' is not a number of rows or a percentage"),
    ],
)
def test_max_errors_refused_says_what_is_wrong_and_how_to_write_it(text, problem):
    with pytest.raises(ConfigError) as raised:
        ErrorLimit.parse(text)
    assert (raised.value.problem, raised.value.fix) == (problem, MAX_ERRORS_FIX)


def test_a_share_of_errors_just_under_the_limit_does_not_stop_the_run():
    five = ErrorLimit(percent=5.0)
    assert not five.exceeded(errors=50, answered=1010)  # 4.95%
    assert five.exceeded(errors=51, answered=1010)  # 5.05%
    assert five.exceeded(errors=50, answered=1000)  # 5% exactly


def test_max_errors_above_100_percent_is_refused_however_little_above():
    with pytest.raises(ConfigError) as raised:
        ErrorLimit.parse("100.5%")
    assert raised.value.problem == "--max-errors '100.5%' is below 1 row or above 100%"


def test_a_number_of_errors_stops_the_run_when_it_is_reached():
    three = ErrorLimit(count=3)
    assert not three.exceeded(errors=2, answered=2)
    assert three.exceeded(errors=3, answered=3)


def test_a_share_of_errors_is_judged_from_100_rows_with_an_outcome():
    five = ErrorLimit(percent=5.0)
    assert not five.exceeded(errors=50, answered=99)  # every row failed, but 99 say too little
    assert five.exceeded(errors=5, answered=100)


@pytest.mark.parametrize(
    ("limit", "shown"),
    [
        (ErrorLimit(count=50), "50"),
        (ErrorLimit(percent=5.0), "5%"),
        (ErrorLimit(percent=0.5), "0.5%"),
    ],
)
def test_max_errors_reads_back_as_it_is_written(limit, shown):
    # as the message that stops the run names it: "--max-errors 5% reached: ..."
    assert str(limit) == shown


# --- --rate-limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"), [("1/s", RateLimit(1, 1.0)), ("1/min", RateLimit(1, 60.0))]
)
def test_a_rate_limit_of_one_call_is_a_limit(text, limit):
    assert RateLimit.parse(text) == limit


@pytest.mark.parametrize("text", ["0/s", "5/0min", "fast"])
def test_a_rate_limit_refused_says_how_to_write_it(text):
    with pytest.raises(ConfigError) as raised:
        RateLimit.parse(text)
    assert raised.value.problem == f"rate limit {text!r} is not N/s or N/min"
    assert raised.value.fix == RATE_LIMIT_FIX


@pytest.mark.parametrize(
    ("limit", "shown"),
    [
        (RateLimit(100, 60.0), "100/min"),
        (RateLimit(5, 1.0), "5/s"),
        (RateLimit(40, 10.0), "40/10s"),
        (RateLimit(3, 0.5), "3/0.5s"),
    ],
)
def test_a_rate_limit_reads_back_as_it_is_written(limit, shown):
    assert str(limit) == shown


# --- RunConfig: options checked before anything is read or sent ----------------------------


def settings(tmp_path: Path, **options) -> RunConfig:
    defaults = {"base_url": "https://api.invalid", "credentials": BasicCredentials("u", "p")}
    return RunConfig(tmp_path / "in.csv", tmp_path / "out.csv", **{**defaults, **options})


@pytest.mark.parametrize(
    ("options", "problem", "fix"),
    [
        ({"batch_size": 0}, "--batch-size 0 is out of range", "use 1 to 20"),
        ({"batch_size": 21}, "--batch-size 21 is out of range", "use 1 to 20"),
        ({"concurrency": 0}, "--concurrency 0 is below 1", "use 1 or more"),
        ({"retry": RetryPolicy(max_attempts=0)}, "--max-attempts 0 is below 1", "use 1 or more"),
        (
            {"retry": RetryPolicy(max_throttle_wait=0.0)},
            "--max-throttle-wait 0.0 is not positive",
            "use seconds, e.g. 1800",
        ),
        ({"rate_window": 0.0}, "--rate-window 0.0 is not positive", "e.g. 60"),
        ({"timeout": 0.0}, "--timeout 0.0 is not positive", "use seconds, e.g. 30"),
        ({"grace": -1.0}, "--grace -1.0 is negative", "use seconds, e.g. 10"),
        (
            {"resume": True, "overwrite": True},
            "--resume and --overwrite both given",
            "pass one of them",
        ),
        (
            {"resume": True, "dry_run": True},
            "--resume and --dry-run both given",
            "a dry run has no journal",
        ),
        (
            {"auto_resume": True, "input_is_result": True},
            "--auto-resume is for `run`",
            "leave it out of `verify`",
        ),
        *(
            (
                {"auto_resume": True, name: True},
                f"--auto-resume and {flag} both given",
                "--auto-resume resumes what is unfinished and starts what is new by itself",
            )
            for name, flag in [
                ("resume", "--resume"),
                ("overwrite", "--overwrite"),
                ("dry_run", "--dry-run"),
            ]
        ),
    ],
)
def test_options_that_cannot_work_are_refused_with_what_to_pass(tmp_path, options, problem, fix):
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, **options).check_options()
    assert (raised.value.problem, raised.value.fix) == (problem, fix)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 1},
        {"batch_size": 20},
        {"concurrency": 1},
        {"retry": RetryPolicy(max_attempts=1)},
        {"retry": RetryPolicy(max_throttle_wait=0.5)},
        {"rate_window": 0.5},
        {"timeout": 0.5},
        {"grace": 0.0},
        {"grace": 0.5},
        {"resume": True},
        {"overwrite": True},
        {"dry_run": True},
        {"auto_resume": True},
    ],
)
def test_options_at_their_edges_are_taken(tmp_path, options):
    settings(tmp_path, **options).check_options()


def test_the_output_may_not_be_the_input_by_any_name(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("badgeMetaId,customerId\nB,1\n", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to(source)
    (tmp_path / "hard.csv").hardlink_to(source)
    for output in (source, tmp_path / "link.csv", tmp_path / "hard.csv"):
        with pytest.raises(ConfigError) as raised:
            check_targets(RunConfig(source, output))
        assert (raised.value.problem, raised.value.fix) == (
            "--output is the input file",
            "pass another path for the results",
        )
    (tmp_path / "copy.csv").write_bytes(source.read_bytes())
    check_targets(RunConfig(source, tmp_path / "copy.csv"))  # the same content is another file
    check_targets(RunConfig(source, tmp_path / "new.csv"))


def test_a_report_is_not_written_over_the_result_file(tmp_path):
    with pytest.raises(ConfigError, match="is the run's own file"):
        check_targets(settings(tmp_path, report=tmp_path / "out.csv"))
    check_targets(settings(tmp_path, report=tmp_path / "report.html"))


# --- RunConfig: where requests go and with what ---------------------------------------------


def test_a_dry_run_needs_no_host_and_no_credentials(tmp_path):
    RunConfig(tmp_path / "in.csv", dry_run=True).check_connection()


def test_a_run_without_a_host_says_how_to_name_one(tmp_path):
    with pytest.raises(ConfigError) as raised:
        RunConfig(tmp_path / "in.csv", credentials=BasicCredentials("u", "p")).check_connection()
    assert (raised.value.problem, raised.value.fix) == (
        "no API host",
        "pass --cluster eu|in|apac2|us|cn, --base-url URL or set CAP_BASE_URL",
    )


def test_a_run_without_credentials_says_how_to_give_them(tmp_path):
    with pytest.raises(ConfigError) as raised:
        RunConfig(tmp_path / "in.csv", base_url="https://api.invalid").check_connection()
    assert (raised.value.problem, raised.value.fix) == ("no credentials", NO_CREDENTIALS_FIX)


def test_a_host_that_would_get_credentials_in_clear_is_refused_before_credentials(tmp_path):
    with pytest.raises(ConfigError, match="is not an http"):
        RunConfig(tmp_path / "in.csv", base_url="ftp://api.invalid").check_connection()


def test_a_cluster_by_name_or_alias_sends_to_its_documented_host(tmp_path):
    named = RunConfig(tmp_path / "in.csv", cluster="asia")
    assert (named.cluster, named.base_url) == ("apac2", CLUSTERS["apac2"])
    same = RunConfig(tmp_path / "in.csv", cluster="eu", base_url=CLUSTERS["eu"])
    assert same.base_url == CLUSTERS["eu"]


def test_an_unknown_cluster_or_a_second_host_is_refused(tmp_path):
    with pytest.raises(ConfigError) as raised:
        RunConfig(tmp_path / "in.csv", cluster="mars")
    assert (raised.value.problem, raised.value.fix) == (
        "cluster 'mars' is unknown",
        "use one of eu, in, apac2, us, cn",
    )
    with pytest.raises(ConfigError) as raised:
        RunConfig(tmp_path / "in.csv", cluster="eu", base_url="https://api.invalid")
    assert (raised.value.problem, raised.value.fix) == (
        "a base URL and a cluster both given",
        "pass one of them",
    )


# --- RunConfig from a library caller: text where the CLI passes parsed values ---------------


def test_text_is_taken_where_the_command_line_passes_parsed_values(tmp_path):
    made = RunConfig(
        str(tmp_path / "in.csv"),
        str(tmp_path / "out.csv"),
        output_dir=str(tmp_path / "runs"),
        rate_limit="100/min",
        identifier_type="mobile",
        max_errors="5%",
        default_region="in",
    )
    assert (made.input_path, made.output_path, made.output_dir) == (
        tmp_path / "in.csv",
        tmp_path / "out.csv",
        tmp_path / "runs",
    )
    assert made.rate_limit == RateLimit(100, 60.0)
    assert made.identifier_type is IdentifierType.MOBILE
    assert made.max_errors == ErrorLimit(percent=5.0)
    assert made.default_region == "IN"
    assert RunConfig(tmp_path / "in.csv", max_errors=50).max_errors == ErrorLimit(count=50)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output_path": 5}, "RunConfig.output_path must be a path (str or Path), not 5"),
        ({"output_dir": None}, "RunConfig.output_dir must be a path (str or Path), not None"),
        ({"rate_limit": 100}, "RunConfig.rate_limit must be e.g. '100/min', not 100"),
        ({"identifier_type": 1}, "RunConfig.identifier_type must be e.g. 'mobile', not 1"),
        ({"max_errors": True}, "RunConfig.max_errors must be e.g. 50 or '5%', not True"),
        ({"max_errors": 0.5}, "RunConfig.max_errors must be e.g. 50 or '5%', not 0.5"),
        ({"default_region": 91}, "RunConfig.default_region must be e.g. 'IN', not 91"),
    ],
)
def test_a_setting_of_the_wrong_type_is_refused_when_made(tmp_path, options, message):
    with pytest.raises(TypeError) as raised:
        RunConfig(tmp_path / "in.csv", **options)
    assert str(raised.value) == message


def test_an_input_that_is_not_a_path_is_refused_when_made():
    with pytest.raises(TypeError, match=r"RunConfig.input_path must be a path .*, not None"):
        RunConfig(None)  # type: ignore[arg-type]


def test_an_identifier_type_that_names_no_choice_is_refused_as_the_command_line_does(tmp_path):
    with pytest.raises(ConfigError) as raised:
        RunConfig(tmp_path / "in.csv", identifier_type="phone")
    assert (raised.value.problem, raised.value.fix) == (
        "identifier_type 'phone' is unknown",
        "use one of id, mobile, email, externalId, cardNumber",
    )


# --- what a resume must repeat -------------------------------------------------------------


def test_the_command_that_finishes_a_run_repeats_what_changes_what_is_sent(tmp_path):
    def finish(config: RunConfig) -> list[str]:
        return resume_options(config.identity_options())

    assert finish(settings(tmp_path)) == ["--base-url", "https://api.invalid"]
    assert finish(RunConfig(tmp_path / "in.csv", cluster="india")) == ["--cluster", "in"]
    sandboxed = settings(tmp_path, host_label=SANDBOX_LABEL, cluster="eu", base_url="")
    assert finish(sandboxed) == ["--sandbox"]
    assert resume_options(sandboxed.identity_options(), "verify") == []  # verify has none
    assert finish(RunConfig(tmp_path / "in.csv")) == []
    odd = settings(
        tmp_path, identifier_type=IdentifierType.EMAIL, batch_size=5, default_region="GB"
    )
    assert finish(odd) == [
        "--base-url",
        "https://api.invalid",
        "--identifier-type",
        "email",
        "--batch-size",
        "5",
        "--default-region",
        "GB",
    ]
    assert resume_options(odd.identity_options(), "verify") == [
        *("--base-url", "https://api.invalid", "--identifier-type", "email"),
        *("--default-region", "GB"),
    ]


def test_the_finish_command_names_the_input_the_options_and_the_result_file(tmp_path):
    options = {"host": CLUSTERS["eu"], "identifier_type": "mobile"}
    assert finish_command(Path("in put.csv"), Path("out/r.csv"), options) == (
        "batch-revoke run 'in put.csv' --cluster eu --identifier-type mobile -o out/r.csv --resume"
    )


def test_a_journal_that_records_no_options_repeats_none():
    # A journal written before the options were recorded, or by a library caller.
    assert resume_options({}) == []
    assert resume_options({}, "verify") == []


def test_a_journal_that_records_only_its_host_repeats_only_the_host():
    assert resume_options({"host": CLUSTERS["eu"]}) == ["--cluster", "eu"]


# --- how long a dry run says the calls take -------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "limit", "lookups", "said"),
    [
        (1204, None, 0, "1,204 calls (pass --rate-limit for how long they take)"),
        (
            1204,
            RateLimit(100, 60.0),
            204,
            "1,204 calls (204 lookups, 1,000 revokes): about 13 min at 100/min",
        ),
        (61, RateLimit(1, 1.0), 0, "61 calls: about 2 min at 1/s"),  # minutes rounded up
        (8940, RateLimit(100, 60.0), 0, "8,940 calls: about 90 min at 100/min"),  # 5364 s
        (9000, RateLimit(100, 60.0), 0, "9,000 calls: about 1.5 h at 100/min"),  # 5400 s
        (9300, RateLimit(100, 60.0), 0, "9,300 calls: about 1.6 h at 100/min"),  # 5580 s
    ],
)
def test_a_dry_run_says_how_long_its_calls_take_under_the_rate_limit(calls, limit, lookups, said):
    assert estimate(calls, limit, lookups) == said


def test_a_dry_run_with_no_lookups_names_none():
    assert estimate(100, RateLimit(100, 60.0)) == "100 calls: about 1 min at 100/min"


def test_a_journal_records_the_options_a_resume_must_repeat(tmp_path):
    assert settings(tmp_path, base_url="https://api.invalid/").identity_options() == {
        "host": "https://api.invalid",
        "identifier_type": "id",
        "batch_size": "20",
        "default_region": "",
    }
    labelled = settings(
        tmp_path,
        host_label=SANDBOX_LABEL,
        identifier_type=IdentifierType.MOBILE,
        batch_size=7,
        default_region="IN",
    )
    assert labelled.identity_options() == {
        "host": SANDBOX_LABEL,
        "identifier_type": "mobile",
        "batch_size": "7",
        "default_region": "IN",
    }


def test_an_output_whose_name_cannot_be_looked_at_is_not_said_to_be_the_input(tmp_path):
    # The file system refuses the name (too long): that is told when the file is made, not
    # mistaken here for the input.
    source = tmp_path / "in.csv"
    source.write_text("badgeMetaId,customerId\nB,1\n", encoding="utf-8")
    RunConfig(source, tmp_path / ("o" * 300 + ".csv")).check_options()


def test_a_journal_records_the_host_as_given_less_its_trailing_slash(tmp_path):
    options = settings(tmp_path, base_url="https://SANDBOX-X/").identity_options()
    assert options["host"] == "https://SANDBOX-X"
