"""The audit log: one structured line per mutating call and per credential failure.

Lines go to the `mirror.audit` logger as `key=value` pairs (values quoted when they hold
spaces): principal, method, resource, result, and for failures the peer and a reason.
Requests are never logged whole: only resource names, which hold no secrets.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mirror.audit")

# Request fields that name the resource a call acts on, in order of preference.
_NAME_FIELDS = ("name", "parent", "repository")
_NESTED = ("repository", "remote", "distribution", "principal", "grant", "token")
_IDS = {
    "repository_id": "repositories",
    "remote_id": "remotes",
    "distribution_id": "distributions",
    "principal_id": "principals",
}


def resource_of(request: Any) -> str:
    """The resource name a request acts on ("" when it names none)."""
    for field, collection in _IDS.items():
        value = getattr(request, field, "")
        if isinstance(value, str) and value:
            return f"{collection}/{value}"
    for field in _NAME_FIELDS:
        value = getattr(request, field, "")
        if isinstance(value, str) and value:
            return value
    for field in _NESTED:
        nested = getattr(request, field, None)
        name = getattr(nested, "name", "") if nested is not None else ""
        if isinstance(name, str) and name:
            return name
    return ""


def _value(text: str) -> str:
    text = text.replace("\n", "\\n")
    return f'"{text}"' if (" " in text or not text) else text


def record(**fields: str) -> None:
    """Write one audit line of `key=value` pairs."""
    log.info("audit %s", " ".join(f"{k}={_value(v)}" for k, v in fields.items()))
