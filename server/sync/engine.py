"""The ordered steps of a sync, in one place.

tags -> filter -> HEAD each tag -> GET only unknown manifests (children of indexes too) ->
download missing blobs (bounded, verified, single-flight) -> save content rows -> one
transaction creates the version (or none when nothing changed) -> prune old versions.

Content comes before references: blobs are on disk and verified before any manifest row names
them, so a failure at any step leaves no partial version (orphan content rows and blobs are
harmless and deduplicated).

A dry run stops after the manifests: it compares what it found with the latest version by
natural keys (`plan.preview_sync`, the same rule the commit applies) and reports the plan on
the task. It writes no blob, no content row and no version.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from server import metrics
from server.config import Limits
from server.domain.digests import Digest
from server.domain.errors import (
    ContentCollected,
    FailedPrecondition,
    MirrorError,
    NotFound,
    UpstreamProtocolError,
)
from server.domain.filters import PlatformFilter, TagFilter
from server.domain.manifests import Descriptor
from server.domain.names import version_name
from server.domain.plan import (
    MAX_PLAN_TAGS,
    NaturalContent,
    SyncPlan,
    TagChange,
    preview_sync,
    summary_of_plan,
)
from server.domain.resources import (
    BLOB,
    MANIFEST,
    SIGNATURE,
    TAG,
    Policy,
    Remote,
    VersionOrigin,
    VersionSource,
)
from server.domain.rules import is_tag
from server.domain.signatures import subject_of_tag
from server.domain.syncs import SyncParameters
from server.domain.tasks import ProgressReport, ProgressState
from server.storage import BlobFetcher, BlobStat, BlobStore
from server.store.commits import UpstreamContent, VersionCommitter
from server.store.content import ContentStore, SignatureRecord
from server.store.guard import BlobGuard
from server.store.remotes import RemoteStore
from server.store.repositories import RepositoryStore
from server.store.versions import VersionStore
from server.sync import progress
from server.sync.hosts import Hosts
from server.sync.origins import NetworkPolicy
from server.sync.pool import for_each
from server.sync.session import open_session
from server.sync.signatures import SignatureCollector
from server.sync.snapshot import Gatherer, Snapshot
from server.sync.upstream import Upstream
from server.tasks.context import TaskContext

log = logging.getLogger(__name__)


def _filter_tags(
    listed: list[str], tag_filter: TagFilter
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(valid tags, invalid tags, selected tags, include patterns matching none) of an
    upstream listing (CPU only: run in a thread)."""
    valid = [t for t in listed if is_tag(t)]
    invalid = [t for t in listed if not is_tag(t)] if len(valid) != len(listed) else []
    return valid, invalid, tag_filter.select(valid), tag_filter.unmatched_patterns(valid)


class SyncEngine:
    """Runs sync tasks; shared by every sync of the process."""

    def __init__(
        self,
        repositories: RepositoryStore,
        remotes: RemoteStore,
        versions: VersionStore,
        content: ContentStore,
        committer: VersionCommitter,
        storage: BlobStore,
        fetcher: BlobFetcher,
        hosts: Hosts,
        guard: BlobGuard,
        *,
        backoff_base: float | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._repositories = repositories
        self._remotes = remotes
        self._versions = versions
        self._content = content
        self._committer = committer
        self._storage = storage
        self._hosts = hosts
        self._guard = guard
        self._fetcher = fetcher
        self._backoff = backoff_base
        self._limits = limits or Limits()

    async def run(self, context: TaskContext) -> tuple[str, ...]:
        """The task handler: returns the created version's name (or nothing)."""
        params = SyncParameters.from_parameters(context.parameters)
        # Two independent reads at once: on PostgreSQL each costs round trips, and a no-op
        # sync is mostly such fixed costs.
        repository, remote = await asyncio.gather(
            self._repositories.get(params.repository_id),
            self._remotes.get(params.remote_id),
            return_exceptions=True,
        )
        if isinstance(repository, BaseException):
            raise repository
        if isinstance(remote, NotFound):
            exc = remote
            raise NotFound(
                f"remote {params.remote_id!r} was deleted before the sync started",
                reason="REMOTE_NOT_FOUND",
                remote=f"remotes/{params.remote_id}",
            ) from exc
        if isinstance(remote, BaseException):
            raise remote
        policy = NetworkPolicy.for_remote(remote.url, self._limits)
        async with open_session(remote, policy) as (session, proxy):
            extra = {} if self._backoff is None else {"backoff_base": self._backoff}
            upstream = Upstream(session, proxy, remote, self._hosts, limits=self._limits, **extra)
            try:
                return await self._sync(context, params, remote, upstream)
            finally:
                log.info("sync %s upstream requests: %s", context.task.name, upstream.requests)

    async def _sync(
        self, context: TaskContext, params: SyncParameters, remote: Remote, upstream: Upstream
    ) -> tuple[str, ...]:
        tags, listed = await self._list_tags(context, remote, upstream)
        snapshot = await self._gather(context, remote, upstream, tags, listed)
        if params.dry_run:
            context.sync_plan = await self._preview(params, remote, upstream, snapshot)
            return ()
        downloaded = await self._download_blobs(context, remote, upstream, snapshot)
        repository = params.repository_id
        metrics.SYNC_OBJECTS.labels(repository, "manifest").inc(len(snapshot.new_manifests))
        metrics.SYNC_OBJECTS.labels(repository, "blob").inc(downloaded.done)
        metrics.SYNC_BYTES.labels(repository).inc(downloaded.done_bytes)
        saving = await progress.Stage(
            context, progress.SAVING, "Saving the new version", total=1, unit="versions"
        ).start()
        async with asyncio.TaskGroup() as group:  # a read beside the writes: one wait less
            saved = group.create_task(self._save(snapshot))
            remote_pk = group.create_task(self._remotes.pk_of(remote.remote_id))
        version, plan = await self._committer.commit_sync(
            params.repository_id,
            saved.result(),
            mirror=params.mirror,
            remote_pk=remote_pk.result(),
            origin=VersionOrigin(
                VersionSource.SYNC,
                principal=context.parameters.get("principal", ""),
                detail=f"sync from remotes/{remote.remote_id}"
                + (" (mirror)" if params.mirror else ""),
            ),
        )
        if version is not None:
            context.created = (version_name(params.repository_id, version.number),)
        removed_tags = sum(1 for kind, _ in plan.removed if kind == TAG) if plan else 0
        if params.mirror and removed_tags:
            # Mirror mode deletes what the upstream no longer selects; say it where it shows.
            await context.warn(
                f"mirror mode removed {removed_tags} tag(s) that the remote's upstream "
                "no longer lists or its filters no longer select"
            )
        await saving.set(done=1)
        await saving.finish()
        if version is not None:
            await self._prune(context, params.repository_id)
        return context.created

    async def _list_tags(
        self, context: TaskContext, remote: Remote, upstream: Upstream
    ) -> tuple[list[str], set[str] | None]:
        """(selected tags, every listed tag or None when the listing was skipped)."""
        tag_filter = TagFilter(remote.include_tags, remote.exclude_tags)
        stage = progress.Stage(
            context, progress.LISTING_TAGS, "Listing upstream tags", total=1, unit="requests"
        )
        await stage.start()
        if tag_filter.is_literal:
            # Every include is literal: probe those references instead of listing 50k tags.
            tags = tag_filter.select(list(tag_filter.include_tags))
            await stage.set(message="Tag list skipped: the remote names its tags", done=1)
            await stage.finish(ProgressState.SKIPPED)
            return tags, None
        listed = await upstream.list_tags()
        # Per-tag work on a list of 100k tags takes a while: off the event loop, so health
        # checks and pulls are served meanwhile.
        listed, invalid, tags, unmatched = await asyncio.to_thread(_filter_tags, listed, tag_filter)
        if invalid:
            await context.warn(
                f"{len(invalid)} upstream tag(s) are not valid OCI tags and were skipped, "
                f"e.g. {invalid[0][:80]!r}"
            )
        for pattern in unmatched:
            # A literal tag that is missing warns when probed; a glob that matches nothing
            # would otherwise end as a silent "no new version".
            await context.warn(
                f"include_tags entry {pattern!r} matches none of the {len(listed)} upstream tags"
            )
        await stage.set(done=1, message=f"Listed {len(listed)} upstream tags, {len(tags)} selected")
        await stage.finish()
        return tags, set(listed)

    async def _gather(
        self,
        context: TaskContext,
        remote: Remote,
        upstream: Upstream,
        tags: list[str],
        listed: set[str] | None,
    ) -> Snapshot:
        """Tags -> manifests (index children too) -> signatures; optionally signed only."""
        tag_filter = TagFilter(remote.include_tags, remote.exclude_tags)
        tag_stage = progress.Stage(
            context, progress.RESOLVING_TAGS, "Resolving tags", total=len(tags), unit="tags"
        )
        await tag_stage.start()
        stage = progress.Stage(
            context, progress.FETCHING_MANIFESTS, "Fetching manifests", unit="manifests"
        )
        gatherer = Gatherer(
            context,
            upstream,
            self._content,
            stage,
            tag_stage,
            platforms=PlatformFilter(remote.platforms),
        )
        roots = await gatherer.resolve_tags(tags)
        await tag_stage.set(message=f"{len(roots)} manifests named by {len(tags)} tags")
        await tag_stage.finish()
        await stage.start()
        await gatherer.walk(roots | set(tag_filter.include_digests))
        selected = dict(gatherer.snapshot.tags)
        await SignatureCollector(gatherer, remote, listed).collect()
        snapshot = gatherer.snapshot
        if remote.signed_only:
            await self._keep_signed(context, snapshot, selected, tag_filter)
        await stage.set(
            message=f"{len(snapshot.manifests)} manifests ({len(snapshot.new_manifests)} new), "
            f"{len(snapshot.signatures)} signatures"
        )
        await stage.finish()
        return snapshot

    @staticmethod
    async def _keep_signed(
        context: TaskContext, snapshot: Snapshot, selected: dict[str, Digest], tag_filter: TagFilter
    ) -> None:
        """signed_only: drop selected tags (and digests) whose manifest carries no signature."""
        signed = {s.subject for s in snapshot.signatures}
        # Tags of signatures and attestations are not images to judge; they follow their subject.
        images = {t: d for t, d in selected.items() if d not in snapshot.artifacts}
        kept = {t: d for t, d in images.items() if d in signed}
        for tag in sorted(set(images) - set(kept)):
            await context.warn(f"tag {tag!r} skipped: its manifest has no signature (signed_only)")
        roots = set(kept.values()) | {d for d in tag_filter.include_digests if d in signed}
        subjects = snapshot.reachable(roots)
        artifact_tags = {
            t: d
            for t, d in snapshot.tags.items()
            if t not in images and subject_of_tag(t) in subjects
        }
        referrers = {d for d in snapshot.artifacts if snapshot.manifests[d].subject in subjects}
        snapshot.keep_only(
            {**kept, **artifact_tags}, roots | set(artifact_tags.values()) | referrers
        )

    def _wanted_blobs(self, remote: Remote, snapshot: Snapshot) -> tuple[list[Descriptor], int]:
        """Blobs to have on disk now, and how many foreign layers were left out."""
        wanted: dict[Digest, Descriptor] = {}
        foreign = 0
        for manifest in snapshot.manifests.values():
            for blob in manifest.blobs:
                if blob.size > self._limits.max_blob_bytes:
                    raise UpstreamProtocolError(
                        f"manifest {manifest.digest} declares blob {blob.digest} of {blob.size} "
                        f"bytes, more than the {self._limits.max_blob_bytes} allowed",
                        host=urlsplit(remote.url).netloc,
                        reason="UPSTREAM_BLOB_TOO_LARGE",
                        digest=str(blob.digest),
                    )
            if manifest.config is not None:
                wanted.setdefault(manifest.config.digest, manifest.config)
            # Signature and attestation layers are small and must exist as fetched.
            everything = remote.policy is Policy.IMMEDIATE or manifest.digest in snapshot.artifacts
            for layer in manifest.layers:
                if layer.is_foreign and not remote.include_foreign_layers:
                    foreign += 1
                    continue
                if everything:
                    wanted.setdefault(layer.digest, layer)
        return sorted(wanted.values(), key=lambda d: d.digest), foreign

    async def _missing_blobs(self, wanted: list[Descriptor]) -> list[Descriptor]:
        """What a dry run would download: a stat only, no claim (a dry run writes no row)."""
        return _missing(wanted, await self._storage.stat_many([b.digest for b in wanted]))

    async def _preview(
        self, params: SyncParameters, remote: Remote, upstream: Upstream, snapshot: Snapshot
    ) -> SyncPlan:
        """The plan of a dry run: what the real sync would fetch and commit."""
        wanted, _foreign = self._wanted_blobs(remote, snapshot)
        missing = await self._missing_blobs(wanted)
        present = await self._content.present_content(params.repository_id)
        found = NaturalContent(
            tags={name: str(digest) for name, digest in snapshot.tags.items()},
            manifests=frozenset(str(d) for d in snapshot.manifests),
            blobs=frozenset(str(b.digest) for m in snapshot.manifests.values() for b in m.blobs),
            signatures=frozenset(
                str(s.digest) for s in snapshot.signatures if s.subject in snapshot.manifests
            ),
        )
        plan, changes, unchanged = preview_sync(present, found, mirror=params.mirror)
        # The real sync repeats every request of the dry run (it keeps nothing) and adds the
        # blob downloads.
        requests = dict(upstream.requests)
        if missing:
            requests["blob_get"] = requests.get("blob_get", 0) + len(missing)

        def capped(kind: str) -> tuple[TagChange, ...]:
            return tuple(changes[kind][:MAX_PLAN_TAGS])

        return SyncPlan(
            tags_added=capped("added"),
            tags_moved=capped("moved"),
            tags_removed=capped("removed"),
            tags_unchanged=unchanged,
            tags_truncated=sum(max(0, len(c) - MAX_PLAN_TAGS) for c in changes.values()),
            manifests_to_fetch=len(snapshot.new_manifests),
            manifests_total=len(snapshot.manifests),
            blobs_to_fetch=len(missing),
            bytes_to_fetch=sum(b.size for b in missing),
            blobs_stored=len(wanted) - len(missing),
            upstream_requests=requests,
            summary=summary_of_plan(present.keys()[0], plan),
            creates_version=plan.changed,
        )

    async def _download_blobs(
        self, context: TaskContext, remote: Remote, upstream: Upstream, snapshot: Snapshot
    ) -> ProgressReport:
        """Download the missing blobs; returns the stage's final counters."""
        wanted, foreign = self._wanted_blobs(remote, snapshot)
        if foreign:
            await context.warn(
                f"{foreign} foreign (non-distributable) layer reference(s) not downloaded; "
                "set include_foreign_layers to fetch them"
            )
        async with self._guard.shared():
            # Rows first, then storage, under the guard: garbage collection cannot delete an
            # object between "it is there" and the commit that references it (guard.py).
            # Blobs of known manifests need no claim: their (touched) manifest keeps them.
            await self._content.claim_blobs(b for m in snapshot.new_manifests for b in m.blobs)
            # One batch: thousands of stat calls stay off the event loop (a thread for files,
            # concurrent HEADs for S3). A stored blob of the wrong size is damaged: fetch again.
            stored = await self._storage.stat_many([b.digest for b in wanted])
        missing = _missing(wanted, stored)
        stage = progress.Stage(
            context,
            progress.DOWNLOADING_BLOBS,
            f"Downloading blobs ({len(wanted) - len(missing)} already stored)",
            total=len(missing),
            total_bytes=sum(b.size for b in missing),
            unit="blobs",
        )
        await stage.start()
        if remote.policy is not Policy.IMMEDIATE:
            await stage.set(message=f"Layers left for on-demand download ({remote.policy.value})")

        async def download(blob: Descriptor) -> None:
            await self._fetcher.ensure(blob, upstream, stage.add_bytes)
            await stage.advance()

        await for_each(missing, download, upstream.concurrency)
        await stage.finish()
        return stage.report

    async def _save(self, snapshot: Snapshot) -> UpstreamContent:
        """Insert the new content rows; return the upstream set as row ids."""
        await self._content.save_manifests(snapshot.new_manifests)
        new = {m.digest for m in snapshot.new_manifests}
        # Stored indexes whose children arrive only now (first synced through a platform
        # filter): link them, so content listings show every stored child's platform.
        if gaining := [
            m
            for m in snapshot.manifests.values()
            if m.digest not in new and any(c.digest in new for c in m.children)
        ]:
            await self._content.link_children(gaining)
        # Schema1 manifests are kept as fetched; their layers (fsLayers, no sizes) are not
        # mirrored, so they are not content of the version either.
        blob_digests = {str(b.digest) for m in snapshot.manifests.values() for b in m.blobs}
        manifest_ids, blob_ids = await asyncio.gather(  # two reads at once
            self._content.manifest_ids(str(d) for d in snapshot.manifests),
            self._content.blob_ids(blob_digests),
        )
        if len(manifest_ids) != len(snapshot.manifests):
            # Only garbage collection deletes manifest rows; it won a race with this sync.
            raise ContentCollected(
                "a manifest this sync relied on was garbage-collected while it ran; "
                "run the sync again"
            )
        tag_ids = await self._content.save_tags(
            [(name, manifest_ids[str(digest)]) for name, digest in snapshot.tags.items()]
        )
        keys = {(MANIFEST, pk) for pk in manifest_ids.values()}
        keys |= {(BLOB, pk) for pk in blob_ids.values()}
        keys |= {(TAG, pk) for pk in tag_ids.values()}
        signature_ids = await self._content.save_signatures(
            [
                SignatureRecord(
                    digest=str(sig.digest),
                    name=sig.name,
                    kind=sig.kind,
                    manifest_id=manifest_ids[str(sig.subject)],
                    data=sig.data,
                    key_id=sig.key_id,
                    creator=sig.creator,
                    timestamp=sig.timestamp,
                )
                for sig in snapshot.signatures
                if str(sig.subject) in manifest_ids
            ]
        )
        keys |= {(SIGNATURE, pk) for pk in signature_ids}
        return UpstreamContent(
            keys=frozenset(keys), tag_names={pk: name for (name, _), pk in tag_ids.items()}
        )

    async def _prune(self, context: TaskContext, repository_id: str) -> None:
        """Delete versions beyond `retain_versions`, oldest first (pinned ones stay)."""
        repo = await self._repositories.get(repository_id)
        if repo.retain_versions <= 0:
            return
        versions, _ = await self._versions.list(repository_id, 1000, None)
        for old in versions[repo.retain_versions :]:
            try:
                await self._versions.delete(repository_id, old.number)
            except FailedPrecondition as exc:  # a pinned version stays
                log.info("keeping %s: %s", old.name, exc)
            except MirrorError as exc:  # e.g. deleted meanwhile by a user
                await context.warn(f"retain_versions could not delete {old.name}: {exc.message}")


def _missing(wanted: list[Descriptor], stored: dict[Digest, BlobStat]) -> list[Descriptor]:
    """The wanted blobs not in storage; a stored blob of the wrong size is damaged: fetch it."""
    return [b for b in wanted if (found := stored.get(b.digest)) is None or found.size != b.size]
