"""Named profiles (a TOML file in the user's config folder) and where their credentials come
from: the environment, the OS keyring (`batch-revoke login`), or a hidden prompt. A secret is
never in the file, never logged; the file holds settings and the till id or OAuth key only."""

from __future__ import annotations

import logging
import sys
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from click.core import ParameterSource

from batch_revoke.config import RunConfig
from batch_revoke.credentials import BasicCredentials, Credentials, OAuthCredentials, check_base_url
from batch_revoke.errors import AuthError, BatchRevokeError, ConfigError

log = logging.getLogger(__name__)

SERVICE = "batch-revoke"  # the keyring's service name for every entry
# The options a profile may set: the command line wins over them, they over the environment.
SETTINGS = ("cluster", "base_url", "rate_limit", "concurrency", "default_region", "identifier_type")
KEYS = {*SETTINGS, "username", "oauth_key", "credentials"}
SOURCES = ("keyring", "env", "prompt")
SAMPLE = """\
[eu-prod]
cluster = "eu"
rate_limit = "100/min"
username = "till.eu"        # the till id is not a secret; the password is in the keyring
credentials = "keyring"     # or "env" (CAP_* variables only) or "prompt"
"""


def profiles_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path(SERVICE) / "profiles.toml"


@dataclass(frozen=True)
class Profile:
    name: str
    settings: dict[str, Any]  # those of SETTINGS it sets
    username: str  # a till id; or, for OAuth, the key
    oauth: bool
    source: str  # where its credentials come from: one of SOURCES

    def apply(self, ctx: click.Context, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` with the profile's settings where the command line gave none."""
        typed = {n for n in params if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE}
        given = dict(params)
        if typed & {"cluster", "base_url"}:  # a host typed wins over the profile's
            typed |= {"cluster", "base_url"}
        elif self.settings.keys() & {"cluster", "base_url"}:  # and the profile's over CAP_*
            given["cluster"] = given["base_url"] = None
        for name, value in self.settings.items():
            if name in typed:
                continue
            param = next(p for p in ctx.command.params if p.name == name)
            try:
                given[name] = param.type.convert(value, param, ctx)
            except click.BadParameter as exc:
                raise _bad(f"[{self.name}] {name} = {value!r}: {exc.message}", "fix it") from exc
        return given


def _bad(problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{profiles_path()}: {problem}", fix)


def read_all() -> dict[str, Profile]:
    """Every profile in the file (none when it is not there), each checked."""
    return {name: _profile(name, table) for name, table in _tables().items()}


def _tables() -> dict[str, Any]:
    try:
        return tomllib.loads(profiles_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(f"cannot be read ({exc})", "fix its permissions or encoding") from exc
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"is not valid TOML: {exc}", "fix that line") from exc


def _profile(name: str, table: Any) -> Profile:
    if not isinstance(table, dict):
        raise _bad(f"{name} is not a table", f"write it as [{name}] with its settings below")
    for key in table:
        if any(word in key.lower() for word in ("password", "secret", "token")):
            raise _bad(
                f"[{name}] {key}: a secret is never kept in this file",
                f"remove it and run `batch-revoke login --profile {name}` (the OS keyring)",
            )
        if key not in KEYS:
            raise _bad(f"[{name}] {key} is not a profile setting", f"use {', '.join(sorted(KEYS))}")
    if "cluster" in table and "base_url" in table:
        raise _bad(f"[{name}] has both cluster and base_url", "keep one of them")
    source = table.get("credentials", "keyring")
    if source not in SOURCES:
        raise _bad(f"[{name}] credentials = {source!r}", f"use one of {', '.join(SOURCES)}")
    key = str(table.get("oauth_key", ""))
    username = key or str(table.get("username", ""))
    settings = {k: v for k, v in table.items() if k in SETTINGS}
    try:  # RunConfig's own checks of a cluster, a rate limit, an identifier type
        RunConfig(Path(name), **settings)
    except ConfigError as exc:
        raise _bad(f"[{name}] {exc.problem}", exc.fix) from exc
    except TypeError as exc:  # a number where text is meant
        raise _bad(f"[{name}] {exc}", "write it as text in quotes") from exc
    return Profile(name, settings, username, bool(key), source)


def load(name: str) -> Profile:
    """The profile `name`, checked; another profile's mistake does not stop this one."""
    tables = _tables()
    if name not in tables:
        raise _bad(f"no profile [{name}]", "add it (`batch-revoke profiles` shows a sample)")
    return _profile(name, tables[name])


@contextmanager
def _keyring() -> Iterator[ModuleType]:
    """The keyring module; a machine without an OS keyring (a headless server) gets one line."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        yield keyring
    except KeyringError as exc:
        why = "keyring found no backend" if isinstance(exc, NoKeyringError) else str(exc)[:120]
        raise ConfigError(
            f"no OS keyring on this machine ({why})",
            "set CAP_USERNAME/CAP_PASSWORD in the job's environment, "
            'or use credentials = "prompt"',
        ) from exc


def stored(profile: Profile) -> tuple[str, str]:
    """(username, secret) the keyring holds for the profile; "" for what it lacks."""
    with _keyring() as keyring:
        username = profile.username or keyring.get_password(SERVICE, profile.name) or ""
        entry = f"{profile.name}:{username}"
        return username, (keyring.get_password(SERVICE, entry) or "") if username else ""


def credentials_for(profile: Profile) -> Credentials | None:
    """When the environment has none: the keyring's, else a hidden prompt at a terminal."""
    username, secret = "", ""
    if profile.source == "keyring":
        try:
            username, secret = stored(profile)
        except ConfigError as exc:
            if not sys.stdin.isatty():
                raise
            log.warning("%s", exc)  # a person is there: asked instead
    if not secret and profile.source != "env" and sys.stdin.isatty():
        username, secret = ask(profile, username)
    if not secret:
        return None
    kind = OAuthCredentials if profile.oauth else BasicCredentials
    return kind(username, secret)


def ask(profile: Profile, username: str = "") -> tuple[str, str]:
    """The till id (when neither profile nor keyring has it) and the secret, at a prompt."""
    kind = "OAuth key" if profile.oauth else "till id"
    username = username or profile.username or click.prompt(kind, err=True)
    what = f"OAuth secret for {username}" if profile.oauth else f"password for {username}"
    return username, click.prompt(f"{what} (profile {profile.name})", hide_input=True, err=True)


def check(base_url: str, credentials: Credentials) -> None:
    """One call that changes nothing: the OAuth token call, or a lookup of a customer that
    cannot exist (its 'not found' is an answer to credentials it accepted)."""
    import asyncio

    import httpx

    from batch_revoke.client import CapillaryClient, auth_for, lookup_request
    from batch_revoke.model import IdentifierType

    async def call() -> int:
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
            auth = auth_for(credentials, http)
            await auth.ready()
            if isinstance(credentials, OAuthCredentials):
                return 200
            client = CapillaryClient(http, auth)
            reply = await client.send(
                lookup_request(IdentifierType.EXTERNAL_ID, "batch-revoke-login-check")
            )
            return reply.http_status

    try:
        status = asyncio.run(call())
    except AuthError as exc:
        status = exc.http_status
    except (BatchRevokeError, httpx.HTTPError) as exc:
        raise ConfigError(f"could not check the credentials ({exc})", "try again") from exc
    if status in (401, 403):
        raise ConfigError(f"{base_url} rejected the credentials (HTTP {status})", "nothing stored")
    if status == 429 or status >= 500:
        raise ConfigError(f"could not check the credentials (HTTP {status})", "try again")


def login(profile: Profile, sandbox: bool) -> str:
    """Ask, check against the API (or a sandbox started for it), store; what was done."""
    if profile.source != "keyring":
        raise _bad(
            f'[{profile.name}] credentials = "{profile.source}": no login is needed, the run '
            + ("asks at the terminal" if profile.source == "prompt" else "reads CAP_*"),
            'to keep them in the OS keyring instead, write credentials = "keyring"',
        )
    try:
        stored(profile)  # no keyring, or no host: said before anything is typed
    except ConfigError as exc:
        fix = f'write credentials = "prompt" in [{profile.name}] (no login: the run asks at the '
        raise ConfigError(exc.problem, fix + "terminal), or set CAP_* in the environment") from exc
    url = ""
    if not sandbox:  # the host, checked before any secret is typed for it
        url = RunConfig(Path(profile.name), **profile.settings).base_url
        if not url:
            raise _bad(f"[{profile.name}] has no cluster or base_url", "add one, or pass --sandbox")
        url = check_base_url(url)
    username, secret = ask(profile)
    credentials = (OAuthCredentials if profile.oauth else BasicCredentials)(username, secret)
    if sandbox:
        from batch_revoke.sandbox import configure, running_sandbox

        with running_sandbox(configure()) as running:
            check(running.base_url, credentials)
    else:
        check(url, credentials)
    with _keyring() as keyring:
        if not profile.username:
            keyring.set_password(SERVICE, profile.name, username)
        keyring.set_password(SERVICE, f"{profile.name}:{username}", secret)
        backend = keyring.get_keyring().name
    where = f"service {SERVICE}, entry {profile.name}:{username}"
    return f"accepted; stored in the OS keyring ({backend}): {where}"


def held(profile: Profile) -> str:
    """Whether the keyring holds the profile's credentials, never what they are."""
    if profile.source != "keyring":
        return f"credentials={profile.source}"
    try:
        return "in the keyring" if stored(profile)[1] else "not in the keyring (login first)"
    except ConfigError as exc:
        return exc.problem
