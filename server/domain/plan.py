"""What the next version holds: a pure function of a base version's content and a change.

Content is identified by `(content_type, id)` of its global row. Every version, whatever its
source (sync, push, content operation), is "content added / removed on top of base version N"
(`ContentChange`), planned by `plan_change`:
- exact: the target is exactly the added set (a mirror sync, a rollback).
- otherwise: the base content minus the removed set plus the added set; a base tag whose name
  an added tag also has is replaced (tags are keyed by name within a version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.domain.resources import TAG

ContentKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class VersionPlan:
    """The next version's content and how it differs from the present one."""

    target: frozenset[ContentKey]
    added: frozenset[ContentKey]
    removed: frozenset[ContentKey]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass(frozen=True, slots=True)
class ContentChange:
    """Content added and removed on top of a base version.

    `add_tag_names` maps the tag ids of `add` to their names (a base tag of the same name is
    replaced); `exact` makes the target exactly `add` (then `remove` is ignored)."""

    add: frozenset[ContentKey] = frozenset()
    add_tag_names: Mapping[int, str] = field(default_factory=dict)
    remove: frozenset[ContentKey] = frozenset()
    exact: bool = False


def plan_change(
    base: frozenset[ContentKey], base_tag_names: Mapping[int, str], change: ContentChange
) -> VersionPlan:
    """The next version: `change` applied to the base content (`base_tag_names`: its tags)."""
    if change.exact:
        target = set(change.add)
    else:
        names = set(change.add_tag_names.values())
        replaced = {
            (TAG, tag_id)
            for tag_id, name in base_tag_names.items()
            if name in names and (TAG, tag_id) not in change.add
        }
        target = (base - replaced - change.remove) | change.add
    return VersionPlan(
        target=frozenset(target),
        added=frozenset(target - base),
        removed=frozenset(base - target),
    )


def plan_version(
    present: frozenset[ContentKey],
    present_tag_names: dict[int, str],
    upstream: frozenset[ContentKey],
    upstream_tag_names: dict[int, str],
    *,
    mirror: bool,
) -> VersionPlan:
    """A sync's version: mirror makes it the upstream set, additive adds it (`plan_change`)."""
    change = ContentChange(add=upstream, add_tag_names=upstream_tag_names, exact=mirror)
    return plan_change(present, present_tag_names, change)
