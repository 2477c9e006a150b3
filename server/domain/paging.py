"""Opaque page tokens (AIP-158): a versioned keyset cursor bound to the request's filters."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from server.domain.errors import InvalidArgument, Rule

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1


def page_size(requested: int) -> int:
    """0 means the default; above the maximum is coerced; negative is an error."""
    if requested < 0:
        raise InvalidArgument(
            f"page_size must be >= 0, got {requested}", field="page_size", reason=Rule.OUT_OF_RANGE
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(filters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]


def _check(payload: bytes) -> str:
    return hashlib.sha256(b"mirror-page-token:" + payload).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A decoded page request: the size and the cursor after which to continue (or None)."""

    size: int
    cursor: Any


def encode_token(cursor: Any, filters: dict[str, Any]) -> str:
    """Token for the page after `cursor`, valid only with the same `filters`."""
    payload = json.dumps({"v": _VERSION, "c": cursor, "f": _fingerprint(filters)}).encode()
    return base64.urlsafe_b64encode(payload + b"." + _check(payload).encode()).decode().rstrip("=")


def decode_page(requested_size: int, token: str, filters: dict[str, Any]) -> PageRequest:
    """Validate size and token; a token from other filters or tampered with is rejected."""
    size = page_size(requested_size)
    if not token:
        return PageRequest(size, None)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload, _, check = raw.rpartition(b".")
        if check.decode() != _check(payload):
            raise ValueError("checksum")
        data = json.loads(payload)
        if data["v"] != _VERSION:
            raise ValueError("version")
        fingerprint, cursor = data["f"], data["c"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            "page_token is malformed", field="page_token", reason=Rule.INVALID_PAGE_TOKEN
        ) from exc
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument(
            "page_token was issued for a request with other parameters",
            field="page_token",
            reason=Rule.INVALID_PAGE_TOKEN,
        )
    return PageRequest(size, cursor)
