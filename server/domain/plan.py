"""What the next version holds: a pure function of the present content and the upstream set.

Content is identified by `(content_type, id)` of its global row.
- mirror: exactly the (filtered) upstream set.
- additive: the present content plus the upstream set; a present tag whose name upstream now
  points elsewhere is replaced (tags are keyed by name within a version).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def plan_version(
    present: frozenset[ContentKey],
    present_tag_names: dict[int, str],
    upstream: frozenset[ContentKey],
    upstream_tag_names: dict[int, str],
    *,
    mirror: bool,
) -> VersionPlan:
    """Decide the next version. `*_tag_names` map tag row ids to tag names."""
    if mirror:
        target = upstream
    else:
        names = set(upstream_tag_names.values())
        replaced = {
            (TAG, tag_id)
            for tag_id, name in present_tag_names.items()
            if name in names and (TAG, tag_id) not in upstream
        }
        target = (present - replaced) | upstream
    return VersionPlan(
        target=frozenset(target),
        added=frozenset(target - present),
        removed=frozenset(present - target),
    )
