"""What the next version holds: a pure function of the present content and the upstream set.

Content is identified by `(content_type, id)` of its global row when a sync commits, and by
`(content_type, natural key)` (digest, or `name@digest` for a tag) when a dry run only
previews: the same rule decides both, so a preview cannot drift from the commit.
- mirror: exactly the (filtered) upstream set.
- additive: the present content plus the upstream set; a present tag whose name upstream now
  points elsewhere is replaced (tags are keyed by name within a version).
"""

from __future__ import annotations

from collections import Counter
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


def plan_version(
    present: frozenset[tuple[str, K]],
    present_tag_names: dict[K, str],
    upstream: frozenset[tuple[str, K]],
    upstream_tag_names: dict[K, str],
    *,
    mirror: bool,
) -> VersionPlan[K]:
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
