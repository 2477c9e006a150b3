"""The content graph of one version, and what "a manifest with everything it needs" means.

A version's content is a graph: manifests reference blobs (config and layers) and child
manifests (indexes); signatures sign manifests; cosign tags (`sha256-<hex>.sig`, ...) and the
referrers fallback tag name the manifest they are about; OCI referrers name theirs in
`subject`. Content operations move whole closures so a version never holds a manifest
without what it references (DESIGN: "a version's closure is always fully present"):

- `closure(roots)`: the manifests, their blobs, index children, signatures, cosign /
  fallback tags and referrers, recursively, as found in this graph.
- `removal(...)`: the content to drop when manifests or blobs are removed, keeping what the
  remaining content still needs, and refusing to drop what a remaining manifest references.

Pure: built by `server/store/operations.py` from one version's membership rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from server.domain.errors import FailedPrecondition
from server.domain.plan import ContentKey
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.domain.signatures import subject_of_tag


@dataclass(slots=True)
class ContentGraph:
    """The content of one version, by global row id."""

    manifests: dict[int, str] = field(default_factory=dict)  # id -> digest
    manifest_blobs: dict[int, set[int]] = field(default_factory=dict)
    children: dict[int, set[int]] = field(default_factory=dict)
    subjects: dict[int, str] = field(default_factory=dict)  # manifest id -> subject digest
    signatures: dict[int, int] = field(default_factory=dict)  # signature id -> manifest id
    tags: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (name, manifest)
    blobs: dict[int, str] = field(default_factory=dict)  # id -> digest

    def keys(self) -> frozenset[ContentKey]:
        return frozenset(
            [(MANIFEST, m) for m in self.manifests]
            + [(BLOB, b) for b in self.blobs]
            + [(SIGNATURE, s) for s in self.signatures]
            + [(TAG, t) for t in self.tags]
        )

    def tag_names(self) -> dict[int, str]:
        return {pk: name for pk, (name, _) in self.tags.items()}

    def tag(self, name: str) -> int | None:
        """The id of the tag `name` (a version holds at most one tag of a name)."""
        return next((pk for pk, (n, _) in self.tags.items() if n == name), None)

    def manifest(self, digest: str) -> int | None:
        return next((pk for pk, d in self.manifests.items() if d == digest), None)

    def blob(self, digest: str) -> int | None:
        return next((pk for pk, d in self.blobs.items() if d == digest), None)

    def _about(self) -> dict[str, set[int]]:
        """Manifest digest -> manifests about it (cosign/fallback tags and referrers)."""
        about: dict[str, set[int]] = defaultdict(set)
        for name, manifest_id in self.tags.values():
            subject = subject_of_tag(name)
            if subject is not None:
                about[str(subject)].add(manifest_id)
        for manifest_id, subject in self.subjects.items():
            if subject:
                about[subject].add(manifest_id)
        return about

    def closure(self, roots: Iterable[int]) -> frozenset[ContentKey]:
        """Manifests `roots` with everything they need and every artifact about them."""
        about = self._about()
        seen: set[int] = set()
        todo = [m for m in roots if m in self.manifests]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(c for c in self.children.get(current, ()) if c in self.manifests)
            todo.extend(about.get(self.manifests[current], ()))
        keys: set[ContentKey] = {(MANIFEST, m) for m in seen}
        keys |= {(BLOB, b) for m in seen for b in self.manifest_blobs.get(m, ()) if b in self.blobs}
        keys |= {(SIGNATURE, s) for s, m in self.signatures.items() if m in seen}
        digests = {self.manifests[m] for m in seen}
        keys |= {
            (TAG, t)
            for t, (name, m) in self.tags.items()
            if m in seen and str(subject_of_tag(name)) in digests
        }
        return frozenset(keys)

    def needed_by(self, manifests: Iterable[int]) -> frozenset[ContentKey]:
        """What the given manifests reference (children, blobs, signatures), recursively;
        unlike `closure`, artifacts about them are not included."""
        seen: set[int] = set()
        todo = list(manifests)
        while todo:
            current = todo.pop()
            if current in seen or current not in self.manifests:
                continue
            seen.add(current)
            todo.extend(self.children.get(current, ()))
        keys: set[ContentKey] = {(MANIFEST, m) for m in seen}
        keys |= {(BLOB, b) for m in seen for b in self.manifest_blobs.get(m, ())}
        keys |= {(SIGNATURE, s) for s, m in self.signatures.items() if m in seen}
        return frozenset(keys)

    def removal(self, manifests: Iterable[int], blobs: Iterable[int]) -> frozenset[ContentKey]:
        """What to remove to drop `manifests` (with their closure and the tags naming them)
        and `blobs`, keeping what the remaining content needs. FailedPrecondition when a named
        manifest or blob is referenced by a manifest that stays."""
        manifests, blobs = set(manifests), set(blobs)
        dropped = set(self.closure(manifests)) | {(BLOB, b) for b in blobs}
        dropped_manifests = {pk for kind, pk in dropped if kind == MANIFEST}
        dropped |= {(TAG, t) for t, (_, m) in self.tags.items() if m in dropped_manifests}
        staying = {pk for pk in self.manifests if pk not in dropped_manifests}
        needed = self.needed_by(staying)
        for pk in sorted(manifests):
            if (MANIFEST, pk) in needed:
                raise _in_use("manifest", self.manifests[pk], self._referrer(pk, staying))
        for pk in sorted(blobs):
            if (BLOB, pk) in needed:
                raise _in_use("blob", self.blobs[pk], self._blob_user(pk, staying))
        return frozenset(dropped - needed)

    def _referrer(self, child: int, staying: set[int]) -> str:
        return next(
            (self.manifests[m] for m in sorted(staying) if child in self.children.get(m, ())), ""
        )

    def _blob_user(self, blob: int, staying: set[int]) -> str:
        return next(
            (self.manifests[m] for m in sorted(staying) if blob in self.manifest_blobs.get(m, ())),
            "",
        )


def _in_use(kind: str, digest: str, user: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{kind} {digest} is referenced by manifest {user}, which stays; remove that first",
        reason="CONTENT_IN_USE",
        digest=digest,
        referencedBy=user,
    )
