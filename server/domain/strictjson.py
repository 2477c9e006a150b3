"""Strict JSON for documents an upstream sends: bounded nesting, no duplicate keys, no keys
that differ from a spec field only in case.

`json.loads` takes the last of duplicate keys, ignores unknown keys of any case and recurses
until the interpreter's limit (a `RecursionError`, which ended tasks as INTERNAL). Two parsers
that disagree on such a document (one reads the first `layers`, another the last; one treats
`Layers` as `layers`) see two different images under one digest: the ambiguity class of
CVE-2021-41190. So a manifest, index, tag list or token response with any of these is refused
with a `StrictJSONError` (a `ValueError`) that says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 32  # OCI documents nest 4-5 levels (index > descriptor > platform > features)


class StrictJSONError(ValueError):
    """The document is not strict JSON; the message says why."""


def _pairs_hook(spec_keys: frozenset[str]) -> Any:
    folded = {k.lower(): k for k in spec_keys}

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise StrictJSONError(f"duplicate key {key[:64]!r}")
            spec = folded.get(key.lower())
            if spec is not None and spec != key:
                raise StrictJSONError(f"key {key[:64]!r} differs from the spec's {spec!r} in case")
            obj[key] = value
        return obj

    return hook


def _depth(value: Any) -> int:
    """Nesting depth of a parsed document, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def loads(data: bytes | str, *, spec_keys: Iterable[str] = (), max_depth: int = MAX_DEPTH) -> Any:
    """Parse `data`; raise StrictJSONError for invalid JSON, nesting deeper than `max_depth`,
    duplicate keys, or a key equal to one of `spec_keys` up to case."""
    try:
        doc = json.loads(data, object_pairs_hook=_pairs_hook(frozenset(spec_keys)))
    except RecursionError as exc:
        raise StrictJSONError(f"nested deeper than {max_depth} levels") from exc
    except StrictJSONError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise StrictJSONError("not valid JSON") from exc
    if _depth(doc) > max_depth:
        raise StrictJSONError(f"nested deeper than {max_depth} levels")
    return doc
