"""URLs the hub sends data to: TLS, except to a receiver on this machine."""

from __future__ import annotations

from urllib.parse import urlsplit

# Plain http is only for a receiver on this machine (tests, a local relay); anything that
# crosses a network gets TLS.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_secure_target(url: str) -> bool:
    """https://, or http:// to a loopback host; and a host at all."""
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    return bool(parts.hostname) and (parts.scheme == "https" or local)
