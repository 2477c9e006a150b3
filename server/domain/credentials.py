"""Where a remote's secrets may go: only to the host they were given for.

The rule (README "Access control"): an update that moves a remote's `url` to another origin
(scheme, host or port) while the remote keeps a `password` or extra `headers` that the same
request does not set, is refused with FAILED_PRECONDITION naming those fields; likewise a
`proxy_url` moved to another origin while a `proxy_password` is kept. Setting the fields in
the same request (new values, or empty to clear them) lets the move through. Without this,
changing only the url would present the old password to the new host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from server.domain.errors import FailedPrecondition
from server.domain.resources import Remote


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, with the scheme's default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower().rstrip("."), port


def check_secret_destinations(current: Remote, merged: Remote, paths: list[str]) -> None:
    """Refuse an update that would send kept secrets to a new origin (see module doc)."""
    kept: list[str] = []
    if origin(merged.url) != origin(current.url):
        if current.password and "password" not in paths:
            kept.append("password")
        if current.headers and "headers" not in paths:
            kept.append("headers")
    if (
        current.proxy_url
        and origin(merged.proxy_url) != origin(current.proxy_url)
        and current.proxy_password
        and "proxy_password" not in paths
    ):
        kept.append("proxy_password")
    if kept:
        names = ", ".join(kept)
        raise FailedPrecondition(
            f"the update moves the remote to another host but keeps its {names}; "
            f"set {names} in the same request (new values, or empty to clear them) so that "
            "secrets meant for one host are never sent to another",
            reason="SECRETS_NOT_RESUPPLIED",
            fields=names,
        )
