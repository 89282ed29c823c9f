"""The API's hosts (the documented clusters, the checks a base URL must pass before credentials
go to it) and its credentials, a till's or an OAuth key's, from the environment (or profiles.py's
keyring or prompt): plain values, client.py makes their auth on the wire (`auth_for`)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

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
    """Credentials from the environment, never from options or files; None when none are set."""
    key, secret = _pair(environ, "CAP_OAUTH_KEY", "CAP_OAUTH_SECRET")
    if key:
        if environ.get("CAP_USERNAME") or environ.get("CAP_PASSWORD"):
            log.info("CAP_OAUTH_KEY and CAP_USERNAME are both set: using OAuth (the key)")
        return OAuthCredentials(key, secret)
    username, password = _pair(environ, "CAP_USERNAME", "CAP_PASSWORD")
    return BasicCredentials(username, password) if username else None


def _pair(environ: Mapping[str, str], first: str, second: str) -> tuple[str, str]:
    """Both variables' values, or neither's: half a pair is an error."""
    values = environ.get(first, ""), environ.get(second, "")
    if any(values) and not all(values):
        missing = second if values[0] else first
        raise ConfigError(f"{missing} is not set", f"set both {first} and {second}")
    return values


CLUSTERS = {
    "eu": "https://eu.api.capillarytech.com",
    "in": "https://apac.api.capillarytech.com",
    "apac2": "https://apac2.api.capillarytech.com",
    "us": "https://us.api.capillarytech.com",
    "cn": "https://api.capillarytech.cn.com",
}
# Other names the vendor's pages give clusters: "in (India)", "apac2 (Asia, South-East Asia)".
# Only those: a name guessed for a host could send the credentials to another cluster.
CLUSTER_ALIASES = {"india": "in", "asia": "apac2", "sea": "apac2"}


def cluster_names(cluster: str) -> list[str]:
    """A cluster's name, then its aliases: apac2, asia, sea."""
    return [cluster, *(alias for alias, named in CLUSTER_ALIASES.items() if named == cluster)]


def check_base_url(url: str) -> str:
    """Refuse URLs that would send credentials in clear to another machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base URL {url!r} is not an http(s) URL",
            "pass the host root, e.g. --base-url https://eu.api.capillarytech.com or --cluster eu",
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        root = f"{parts.scheme}://{parts.netloc}"
        raise ConfigError(
            f"base URL {url!r} has a path; the endpoints' paths are added to it",
            f"pass the host root only: --base-url {root}",
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r} would send credentials unencrypted",
            "use https (plain http is allowed for 127.0.0.1/localhost only)",
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
