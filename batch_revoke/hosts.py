"""The API's hosts: the documented clusters by name, and the checks a base URL must pass
before any credentials are sent to it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from batch_revoke.errors import ConfigError

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
