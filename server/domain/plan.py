"""What the next version holds: a pure function of a base version's content and a change.

Content is identified by `(content_type, id)` of its global row. Every version, whatever its
source (sync, push, content operation), is "content added / removed on top of base version N"
(`ContentChange`), planned by `plan_change`:
- exact: the target is exactly the added set (a mirror sync, a rollback).
- otherwise: the base content minus the removed set plus the added set; a base tag whose name
  an added tag also has is replaced (tags are keyed by name within a version).

A dry run identifies content by `(content_type, natural key)` instead (digest, or
`name@digest` for a tag; `NaturalContent`) and previews with the same rule, so a preview
cannot drift from the commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG, ContentSummary

ContentKey = tuple[str, int]
K = TypeVar("K")

# A dry run lists at most this many tags per kind (added, moved, removed); the rest are counted.
MAX_PLAN_TAGS = 1000


@dataclass(frozen=True, slots=True)
class VersionPlan(Generic[K]):
    """The next version's content and how it differs from the present one."""

    target: frozenset[tuple[str, K]]
    added: frozenset[tuple[str, K]]
    removed: frozenset[tuple[str, K]]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass(frozen=True, slots=True)
class ContentChange(Generic[K]):
    """Content added and removed on top of a base version.

    `add_tag_names` maps the tag ids of `add` to their names (a base tag of the same name is
    replaced); `exact` makes the target exactly `add` (then `remove` is ignored)."""

    add: frozenset[tuple[str, K]] = frozenset()
    add_tag_names: Mapping[K, str] = field(default_factory=dict)
    remove: frozenset[tuple[str, K]] = frozenset()
    exact: bool = False


def plan_change(
    base: frozenset[tuple[str, K]], base_tag_names: Mapping[K, str], change: ContentChange[K]
) -> VersionPlan[K]:
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
    present: frozenset[tuple[str, K]],
    present_tag_names: Mapping[K, str],
    upstream: frozenset[tuple[str, K]],
    upstream_tag_names: Mapping[K, str],
    *,
    mirror: bool,
) -> VersionPlan[K]:
    """A sync's version: mirror makes it the upstream set, additive adds it (`plan_change`)."""
    change = ContentChange(add=upstream, add_tag_names=upstream_tag_names, exact=mirror)
    return plan_change(present, present_tag_names, change)


@dataclass(frozen=True, slots=True)
class NaturalContent:
    """A version's content by natural keys: tag name -> manifest digest, and digests."""

    tags: dict[str, str] = field(default_factory=dict)
    manifests: frozenset[str] = frozenset()
    blobs: frozenset[str] = frozenset()
    signatures: frozenset[str] = frozenset()

    def keys(self) -> tuple[frozenset[tuple[str, str]], dict[str, str]]:
        """(content keys, tag key -> tag name) in the shape `plan_version` takes."""
        tag_keys = {f"{name}@{digest}": name for name, digest in self.tags.items()}
        keys = {(TAG, k) for k in tag_keys}
        keys |= {(MANIFEST, d) for d in self.manifests}
        keys |= {(BLOB, d) for d in self.blobs}
        keys |= {(SIGNATURE, d) for d in self.signatures}
        return frozenset(keys), tag_keys


@dataclass(frozen=True, slots=True)
class TagChange:
    """A tag in a sync plan; an empty digest means absent on that side."""

    name: str
    from_digest: str = ""
    to_digest: str = ""


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync would do: the result of a dry run."""

    tags_added: tuple[TagChange, ...] = ()
    tags_moved: tuple[TagChange, ...] = ()
    tags_removed: tuple[TagChange, ...] = ()
    tags_unchanged: int = 0
    tags_truncated: int = 0
    manifests_to_fetch: int = 0
    manifests_total: int = 0
    blobs_to_fetch: int = 0
    bytes_to_fetch: int = 0
    blobs_stored: int = 0
    upstream_requests: dict[str, int] = field(default_factory=dict)
    summary: ContentSummary = field(default_factory=ContentSummary)
    creates_version: bool = False


def preview_sync(
    present: NaturalContent, upstream: NaturalContent, *, mirror: bool
) -> tuple[VersionPlan[str], dict[str, list[TagChange]], int]:
    """The version a sync would commit, its tag changes by kind, and unchanged tags."""
    present_keys, present_names = present.keys()
    upstream_keys, upstream_names = upstream.keys()
    plan = plan_version(present_keys, present_names, upstream_keys, upstream_names, mirror=mirror)
    after = {
        present_names.get(k) or upstream_names[k]: k.rpartition("@")[2]
        for t, k in plan.target
        if t == TAG
    }
    changes: dict[str, list[TagChange]] = {"added": [], "moved": [], "removed": []}
    unchanged = 0
    for name in sorted(set(present.tags) | set(after)):
        before, now = present.tags.get(name, ""), after.get(name, "")
        if before == now:
            unchanged += 1
        elif not before:
            changes["added"].append(TagChange(name, to_digest=now))
        elif not now:
            changes["removed"].append(TagChange(name, from_digest=before))
        else:
            changes["moved"].append(TagChange(name, before, now))
    return plan, changes, unchanged


def summary_of_plan(present: frozenset[tuple[str, K]], plan: VersionPlan[K]) -> ContentSummary:
    """The content summary the planned version would carry."""
    return ContentSummary(
        added=dict(Counter(t for t, _ in plan.target - present)),
        removed=dict(Counter(t for t, _ in present - plan.target)),
        present=dict(Counter(t for t, _ in plan.target)),
    )
