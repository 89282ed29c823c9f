"""The API credentials: a till's (Basic auth) or an OAuth key's, taken from the environment
(or, with a profile, from profiles.py's keyring or prompt). Plain values: client.py makes
each one's auth on the wire (`auth_for`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from batch_revoke.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str = ""


@dataclass(frozen=True, slots=True)
class OAuthCredentials:
    key: str
    secret: str = ""


Credentials = BasicCredentials | OAuthCredentials


NO_CREDENTIALS_FIX = (
    "set CAP_USERNAME and CAP_PASSWORD (till id and password) or CAP_OAUTH_KEY and "
    "CAP_OAUTH_SECRET in the environment, store them with `batch-revoke login --profile NAME` "
    "and pass --profile NAME, or use --dry-run or --sandbox"
)


def credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    """Credentials from the environment, never from options or files.
    None when none are set; half a pair is an error."""
    username, password = environ.get("CAP_USERNAME", ""), environ.get("CAP_PASSWORD", "")
    key, secret = environ.get("CAP_OAUTH_KEY", ""), environ.get("CAP_OAUTH_SECRET", "")
    if key or secret:
        if not (key and secret):
            missing = "CAP_OAUTH_SECRET" if key else "CAP_OAUTH_KEY"
            raise ConfigError(
                f"{missing} is not set", "set both CAP_OAUTH_KEY and CAP_OAUTH_SECRET"
            )
        if username or password:
            log.info("CAP_OAUTH_KEY and CAP_USERNAME are both set: using OAuth (the key)")
        return OAuthCredentials(key, secret)
    if username or password:
        if not (username and password):
            missing = "CAP_PASSWORD" if username else "CAP_USERNAME"
            raise ConfigError(f"{missing} is not set", "set both CAP_USERNAME and CAP_PASSWORD")
        return BasicCredentials(username, password)
    return None
