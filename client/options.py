"""Argument types and the Remote options shared by ``mirrorctl remote create`` and ``update``.

Every Remote option defaults to ``None`` so that :func:`remote_fields` returns exactly the
fields given on the command line, which ``update`` turns into its field mask.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "add_remote_options",
    "content_type",
    "header",
    "remote_fields",
    "version_number",
    "version_ref",
]

_CONTENT_TYPES = ("blob", "manifest", "tag", "signature")


def version_ref(text: str) -> str:
    """A version number or ``latest``."""
    if text == "latest" or text.isdigit():
        return text
    raise argparse.ArgumentTypeError(f"expected a version number or 'latest', not {text!r}")


def version_number(text: str) -> int:
    """A version number."""
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a version number, not {text!r}")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``30d`` -> seconds."""
    unit = _DURATION_UNITS.get(text[-1:].lower(), 0)
    try:
        number = float(text[:-1] if unit else text)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 0, 90m, 2h or 30d, not {text!r}"
        )
    return number * (unit or 1)


def content_type(text: str) -> str:
    """``container.tag`` or just ``tag``."""
    short = text.removeprefix("container.")
    if short in _CONTENT_TYPES:
        return f"container.{short}"
    raise argparse.ArgumentTypeError(
        f"unknown content type {text!r}; choose one of {', '.join(_CONTENT_TYPES)}"
    )


def header(text: str) -> tuple[str, str]:
    """A ``KEY=VALUE`` header."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), value


def _split_list(values: list[str]) -> list[str]:
    """Flatten repeated, comma-separated list options; ``""`` yields an empty list."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


# option dest -> how to turn the parsed value into the Remote field value
_REMOTE_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "url": str,
    "upstream_name": str,
    "policy": str,
    "include_tags": _split_list,
    "exclude_tags": _split_list,
    "token_realm_allowlist": _split_list,
    "download_concurrency": int,
    "username": str,
    "password": str,
    "proxy_url": str,
    "proxy_username": str,
    "proxy_password": str,
    "ssl_ca_certificate": lambda path: Path(path).read_text(),
    "ssl_client_certificate": lambda path: Path(path).read_text(),
    "ssl_client_key": lambda path: Path(path).read_text(),
    "ssl_validation": bool,
    "max_retries": int,
    "rate_limit": float,
    "connect_timeout": float,
    "sock_read_timeout": float,
    "total_timeout": float,
    "headers": dict,
    "include_foreign_layers": bool,
    "sigstore": str,
    "signed_only": bool,
}


def add_remote_options(parser: argparse.ArgumentParser, *, create: bool) -> None:
    """Add the Remote field options (required ones only on create)."""
    add = parser.add_argument
    add("--url", required=create, help="registry base URL, e.g. https://registry-1.docker.io")
    add("--upstream-name", required=create, help="repository upstream, e.g. library/alpine")
    add("--policy", choices=("immediate", "on_demand", "streamed"), help="when blobs download")
    add("--include-tags", action="append", metavar="TAGS", help="comma-separated tag globs")
    add("--exclude-tags", action="append", metavar="TAGS", help="comma-separated tag globs")
    add("--download-concurrency", type=int, metavar="N", help="requests in flight, 1..100")
    add("--username", help="upstream user name")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password", help="upstream password or token")
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    add("--proxy-url", metavar="URL", help="proxy for upstream requests")
    add("--proxy-username", metavar="USER")
    add("--proxy-password", metavar="PASSWORD")
    add("--ssl-ca-certificate", metavar="FILE", help="PEM CA bundle to verify the upstream")
    add("--ssl-client-certificate", metavar="FILE", help="PEM client certificate (mTLS)")
    add("--ssl-client-key", metavar="FILE", help="PEM key of the client certificate")
    add(
        "--ssl-validation",
        action=argparse.BooleanOptionalAction,
        help="verify the upstream's TLS certificate (default yes)",
    )
    add("--max-retries", type=int, metavar="N")
    add("--rate-limit", type=float, metavar="R", help="upstream requests per second")
    add("--connect-timeout", type=float, metavar="S")
    add("--sock-read-timeout", type=float, metavar="S")
    add("--total-timeout", type=float, metavar="S")
    add(
        "--header",
        dest="headers",
        type=header,
        action="append",
        metavar="K=V",
        help="extra upstream header (repeatable; on update replaces all headers)",
    )
    add("--include-foreign-layers", action=argparse.BooleanOptionalAction)
    add("--sigstore", metavar="URL", help="lookaside signature store")
    add("--signed-only", action=argparse.BooleanOptionalAction)
    add("--token-realm-allowlist", action="append", metavar="HOSTS", help="comma-separated")


def remote_fields(args: argparse.Namespace, stdin: TextIO | None = None) -> dict[str, Any]:
    """Return the Remote fields given on the command line (and only those).

    Files named by the certificate options are read; ``--password-stdin`` reads one line
    from ``stdin``. The result feeds ``create_remote`` / ``update_remote`` keywords.
    """
    fields: dict[str, Any] = {}
    for dest, convert in _REMOTE_CONVERTERS.items():
        value = getattr(args, dest, None)
        if value is not None:
            fields[dest] = convert(value)
    if getattr(args, "password_stdin", False):
        fields["password"] = (stdin or sys.stdin).readline().rstrip("\r\n")
    return fields
