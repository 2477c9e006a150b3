"""Queries over `repository_content`: which content a version holds, and what changed.

Content is present in version v when `version_added <= v` and (`version_removed` is NULL or
`> v`). Differences between versions are computed on sets of content keys, which stays right
when a unit was removed and re-added in between (two membership rows, one content unit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from server.domain.plan import ContentKey
from server.store.schema import RepositoryContentRow as RC


def present_in(version: int) -> ColumnElement[bool]:
    return and_(
        RC.version_added <= version,
        or_(RC.version_removed.is_(None), RC.version_removed > version),
    )


async def present_keys(session: Any, repository_pk: int, version: int | None) -> set[ContentKey]:
    """The content keys of a version; the empty set for None (before version 0)."""
    if version is None:
        return set()
    rows = await session.execute(
        select(RC.content_type, RC.content_id).where(
            RC.repository_id == repository_pk, present_in(version)
        )
    )
    return {(t, cid) for t, cid in rows}


def count_by_type(keys: Iterable[ContentKey]) -> dict[str, int]:
    return dict(Counter(t for t, _ in keys))


def summary_of(
    base: set[ContentKey] | frozenset[ContentKey], target: set[ContentKey] | frozenset[ContentKey]
) -> dict[str, dict[str, int]]:
    """The JSON content summary of `target` relative to `base`."""
    return {
        "added": count_by_type(target - base),
        "removed": count_by_type(base - target),
        "present": count_by_type(target),
    }


async def summary_json(
    session: Any, repository_pk: int, base: int | None, number: int
) -> dict[str, dict[str, int]]:
    """The content summary of version `number` relative to `base` (None: the empty set)."""
    return summary_of(
        await present_keys(session, repository_pk, base),
        await present_keys(session, repository_pk, number),
    )
