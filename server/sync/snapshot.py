"""What a sync found upstream: tags, the manifest graph, signatures; and how it is gathered.

`Gatherer` resolves tags (HEAD, GET only when no digest is announced) and walks the manifest
graph level by level: manifests already in the database cost no upstream request; unknown
ones are fetched by digest, verified and parsed. A remote's platform filter prunes the walk
at index children: an index is kept whole (its bytes, so its digest, never change), the
children of other platforms are neither fetched nor part of the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.domain.digests import Digest
from server.domain.errors import UpstreamProtocolError, UpstreamRejected
from server.domain.filters import PlatformFilter
from server.domain.manifests import Manifest, parse_manifest
from server.store.content import ContentStore
from server.sync.pool import for_each
from server.sync.progress import Stage
from server.sync.upstream import Upstream
from server.tasks.context import TaskContext


@dataclass(frozen=True, slots=True)
class FoundSignature:
    """A signature of `subject`, with its exact bytes."""

    name: str
    kind: str  # cosign | atomic | notation | sigstore
    subject: Digest
    data: bytes
    digest: Digest
    key_id: str = ""
    creator: str = ""
    timestamp: datetime | None = None


@dataclass
class Snapshot:
    """The upstream state of the selected tags, built up during a sync."""

    tags: dict[str, Digest] = field(default_factory=dict)
    roots: set[Digest] = field(default_factory=set)
    manifests: dict[Digest, Manifest] = field(default_factory=dict)
    new_manifests: list[Manifest] = field(default_factory=list)
    # Manifests of signatures/attestations: all their blobs are stored whatever the policy.
    artifacts: set[Digest] = field(default_factory=set)
    signatures: list[FoundSignature] = field(default_factory=list)

    def checkpoint(self) -> Snapshot:
        """A copy to go back to if an optional step fails halfway."""
        return Snapshot(
            dict(self.tags),
            set(self.roots),
            dict(self.manifests),
            list(self.new_manifests),
            set(self.artifacts),
            list(self.signatures),
        )

    def restore(self, saved: Snapshot) -> None:
        self.tags, self.roots, self.manifests = saved.tags, saved.roots, saved.manifests
        self.new_manifests, self.artifacts = saved.new_manifests, saved.artifacts
        self.signatures = saved.signatures

    def reachable(self, roots: set[Digest]) -> set[Digest]:
        """Manifests reachable from `roots` through index children."""
        seen: set[Digest] = set()
        stack = [d for d in roots if d in self.manifests]
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            stack.extend(
                c.digest for c in self.manifests[digest].children if c.digest in self.manifests
            )
        return seen

    def keep_only(self, tags: dict[str, Digest], roots: set[Digest]) -> None:
        """Drop everything not reachable from `roots` (and signatures of dropped manifests)."""
        keep = self.reachable(roots)
        self.tags = tags
        self.roots = roots & keep
        self.manifests = {d: m for d, m in self.manifests.items() if d in keep}
        self.new_manifests = [m for m in self.new_manifests if m.digest in keep]
        self.artifacts &= keep
        self.signatures = [s for s in self.signatures if s.subject in keep]


class Gatherer:
    """Fills a snapshot from an upstream, counting progress on one stage."""

    def __init__(
        self,
        context: TaskContext,
        upstream: Upstream,
        content: ContentStore,
        stage: Stage,
        tag_stage: Stage | None = None,
        *,
        platforms: PlatformFilter | None = None,
    ) -> None:
        self.context = context
        self.upstream = upstream
        self._content = content
        self.stage = stage
        """Counts manifests (its total is known only at the end)."""
        self.tag_stage = tag_stage
        """Counts the selected tags resolved (its total is set up front)."""
        self.platforms = platforms or PlatformFilter()
        """Which index children to follow (all when the remote names no platforms)."""
        self.snapshot = Snapshot()

    async def resolve_tags(self, tags: list[str], *, quiet_missing: bool = False) -> set[Digest]:
        """HEAD each tag; returns the digests they point at (also recorded as tags).

        Only the selected tags count on the tag stage; quiet probes (signature tags that
        may not exist) count nowhere, so no total changes mid-stage.
        """
        found: set[Digest] = set()
        stage = None if quiet_missing else self.tag_stage

        async def resolve(tag: str) -> None:
            digest = await self._resolve(tag, quiet_missing)
            if digest is not None:
                self.snapshot.tags[tag] = digest
                found.add(digest)
            if stage is not None:
                await stage.advance()

        await for_each(tags, resolve, self.upstream.concurrency)
        return found

    async def _resolve(self, tag: str, quiet_missing: bool) -> Digest | None:
        head = await self.upstream.head_manifest(tag)
        if head is None:
            if not quiet_missing:
                await self.context.warn(f"tag {tag!r} not found upstream; skipped")
            return None
        if head.digest is not None:
            return head.digest
        # No Docker-Content-Digest on HEAD: the GET's bytes decide the digest.
        manifest = await self.upstream.get_manifest(tag)
        if manifest is None:
            await self.context.warn(f"tag {tag!r} vanished upstream during the sync; skipped")
            return None
        self._record(manifest)
        return manifest.digest

    def _record(self, manifest: Manifest) -> None:
        if manifest.digest not in self.snapshot.manifests:
            self.snapshot.manifests[manifest.digest] = manifest
            self.snapshot.new_manifests.append(manifest)

    async def walk(self, roots: set[Digest]) -> None:
        """Load or fetch every manifest reachable from `roots`, level by level.

        A lying upstream could nest indexes without end or fan one tag out to millions of
        manifests: at most `max_index_depth` levels below a root, and at most
        `max_manifests_per_tag` manifests per root, checked before a level is fetched."""
        limits = self.upstream.limits
        budget = limits.max_manifests_per_tag * max(1, len(roots))
        self.snapshot.roots |= roots
        frontier, visited = set(roots), set[Digest]()
        level = 0
        while frontier:
            visited |= frontier
            if len(visited) > budget:
                raise self._refused(
                    f"more than {limits.max_manifests_per_tag} manifests per tag",
                    "UPSTREAM_TOO_MANY_MANIFESTS",
                )
            if level > limits.max_index_depth:
                raise self._refused(
                    f"indexes nested deeper than {limits.max_index_depth} levels",
                    "UPSTREAM_INDEX_TOO_DEEP",
                )
            missing = frontier - set(self.snapshot.manifests)
            if missing:
                await self._load_or_fetch(missing)
            children = {
                c.digest
                for d in frontier
                for c in self.snapshot.manifests[d].children
                if self.platforms.wants(c)
            }
            frontier = children - visited
            level += 1

    def _refused(self, why: str, reason: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"{self.upstream.host} serves {why}; refused", host=self.upstream.host, reason=reason
        )

    async def _load_or_fetch(self, digests: set[Digest]) -> None:
        """Manifests in the database cost no upstream request; the rest are fetched."""
        known = await self._content.known_manifests(str(d) for d in digests)
        unknown: list[Digest] = []
        for digest in sorted(digests):
            stored = known.get(str(digest))
            if stored is None:
                unknown.append(digest)
                continue
            self.snapshot.manifests[digest] = parse_manifest(
                stored.data, stored.media_type, digest, verified=True
            )
            await self.stage.advance()
        fetched: dict[Digest, Manifest] = {}

        async def fetch(digest: Digest) -> None:
            fetched[digest] = await self._fetch(digest)

        await for_each(unknown, fetch, self.upstream.concurrency)
        for digest in unknown:  # recorded in digest order, whatever order they arrived in
            self._record(fetched[digest])
            await self.stage.advance()

    async def _fetch(self, digest: Digest) -> Manifest:
        manifest = await self.upstream.get_manifest(str(digest), digest)
        if manifest is None:
            raise UpstreamRejected(
                f"manifest {digest} is referenced but missing on {self.upstream.host}",
                host=self.upstream.host,
                status=404,
                reason="UPSTREAM_MANIFEST_UNKNOWN",
                digest=str(digest),
            )
        return manifest
