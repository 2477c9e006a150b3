"""Queries over `repository_content`: which content a version holds, and what changed.

Content is present in version v when `version_added <= v` and (`version_removed` is NULL or
`> v`). Between versions a < b (a = -1 for "nothing"):
  added   = present in b, not in a: a < version_added <= b, not removed by b
  removed = present in a, not in b: version_added <= a < version_removed <= b
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from server.store.schema import RepositoryContentRow as RC

NOTHING = -1


def present_in(version: int) -> ColumnElement[bool]:
    return and_(
        RC.version_added <= version, or_(RC.version_removed.is_(None), RC.version_removed > version)
    )


def added_between(a: int, b: int) -> ColumnElement[bool]:
    return and_(
        RC.version_added > a,
        RC.version_added <= b,
        or_(RC.version_removed.is_(None), RC.version_removed > b),
    )


def removed_between(a: int, b: int) -> ColumnElement[bool]:
    return and_(RC.version_added <= a, RC.version_removed > a, RC.version_removed <= b)


async def count_by_type(
    session: Any, repository_pk: int, clause: ColumnElement[bool]
) -> dict[str, int]:
    rows = await session.execute(
        select(RC.content_type, func.count())
        .where(RC.repository_id == repository_pk, clause)
        .group_by(RC.content_type)
    )
    return {content_type: count for content_type, count in rows}


async def summary_json(
    session: Any, repository_pk: int, base: int | None, number: int
) -> dict[str, dict[str, int]]:
    """The content summary of version `number` relative to `base` (None: the empty set)."""
    a = NOTHING if base is None else base
    return {
        "added": await count_by_type(session, repository_pk, added_between(a, number)),
        "removed": await count_by_type(session, repository_pk, removed_between(a, number)),
        "present": await count_by_type(session, repository_pk, present_in(number)),
    }
