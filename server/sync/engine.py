"""The ordered steps of a sync, in one place.

tags -> filter -> HEAD each tag -> GET only unknown manifests (children of indexes too) ->
download missing blobs (bounded, verified, single-flight) -> save content rows -> one
transaction creates the version (or none when nothing changed) -> prune old versions.

Content comes before references: blobs are on disk and verified before any manifest row names
them, so a failure at any step leaves no partial version (orphan content rows and blobs are
harmless and deduplicated).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from server.domain.digests import Digest
from server.domain.errors import (
    FailedPrecondition,
    NotFound,
    UpstreamProtocolError,
    UpstreamRejected,
)
from server.domain.filters import TagFilter
from server.domain.manifests import Descriptor, Manifest, parse_manifest
from server.domain.names import version_name
from server.domain.resources import BLOB, MANIFEST, TAG, Policy, Remote
from server.domain.tasks import ProgressState
from server.storage.blobs import BlobStorage
from server.store.commits import UpstreamContent, VersionCommitter
from server.store.content import ContentStore
from server.store.remotes import RemoteStore
from server.store.repositories import RepositoryStore
from server.store.versions import VersionStore
from server.sync import progress
from server.sync.fetch import BlobFetcher
from server.sync.hosts import Hosts
from server.sync.session import open_session
from server.sync.upstream import Upstream
from server.tasks.context import TaskContext

log = logging.getLogger(__name__)

SYNC_KIND = "sync"


@dataclass(frozen=True, slots=True)
class SyncParameters:
    """What a sync task was started with (stored as the task's parameters)."""

    repository_id: str
    remote_id: str
    mirror: bool

    def to_parameters(self) -> dict[str, str]:
        return {
            "repository": f"repositories/{self.repository_id}",
            "remote": f"remotes/{self.remote_id}",
            "mirror": "true" if self.mirror else "false",
        }

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> SyncParameters:
        return cls(
            repository_id=params["repository"].removeprefix("repositories/"),
            remote_id=params["remote"].removeprefix("remotes/"),
            mirror=params.get("mirror") == "true",
        )


@dataclass
class _Snapshot:
    """What the upstream holds for the filtered tags, built up during the sync."""

    tags: dict[str, Digest]
    roots: set[Digest]
    manifests: dict[Digest, Manifest]
    new_manifests: list[Manifest]


class SyncEngine:
    """Runs sync tasks; shared by every sync of the process."""

    def __init__(
        self,
        repositories: RepositoryStore,
        remotes: RemoteStore,
        versions: VersionStore,
        content: ContentStore,
        committer: VersionCommitter,
        storage: BlobStorage,
        hosts: Hosts,
        *,
        backoff_base: float | None = None,
    ) -> None:
        self._repositories = repositories
        self._remotes = remotes
        self._versions = versions
        self._content = content
        self._committer = committer
        self._storage = storage
        self._hosts = hosts
        self._fetcher = BlobFetcher(storage)
        self._backoff = backoff_base

    async def run(self, context: TaskContext) -> tuple[str, ...]:
        """The task handler: returns the created version's name (or nothing)."""
        params = SyncParameters.from_parameters(context.parameters)
        await self._repositories.get(params.repository_id)
        try:
            remote = await self._remotes.get(params.remote_id)
        except NotFound as exc:
            raise NotFound(
                f"remote {params.remote_id!r} was deleted before the sync started",
                reason="REMOTE_NOT_FOUND",
                remote=f"remotes/{params.remote_id}",
            ) from exc
        async with open_session(remote) as (session, proxy):
            extra = {} if self._backoff is None else {"backoff_base": self._backoff}
            upstream = Upstream(session, proxy, remote, self._hosts, **extra)
            try:
                return await self._sync(context, params, remote, upstream)
            finally:
                log.info("sync %s upstream requests: %s", context.task.name, upstream.requests)

    async def _sync(
        self, context: TaskContext, params: SyncParameters, remote: Remote, upstream: Upstream
    ) -> tuple[str, ...]:
        tags = await self._list_tags(context, remote, upstream)
        snapshot = await self._fetch_manifests(context, remote, upstream, tags)
        await self._download_blobs(context, remote, upstream, snapshot)
        saving = await progress.Stage(context, progress.SAVING, "Saving the new version").start()
        found = await self._save(snapshot)
        version, _plan = await self._committer.commit(
            params.repository_id,
            found,
            mirror=params.mirror,
            remote_pk=await self._remote_pk(remote),
        )
        await saving.set(done=1, total=1)
        await saving.finish()
        if version is None:
            return ()
        await self._prune(params.repository_id)
        return (version_name(params.repository_id, version.number),)

    async def _remote_pk(self, remote: Remote) -> int | None:
        return await self._remotes.pk_of(remote.remote_id)

    async def _list_tags(
        self, context: TaskContext, remote: Remote, upstream: Upstream
    ) -> list[str]:
        tag_filter = TagFilter(remote.include_tags, remote.exclude_tags)
        stage = progress.Stage(context, progress.LISTING_TAGS, "Listing upstream tags", total=1)
        await stage.start()
        if tag_filter.is_literal:
            # Every include is literal: probe those references instead of listing 50k tags.
            tags = tag_filter.select(list(tag_filter.include_tags))
            await stage.set(message="Tag list skipped: the remote names its tags", done=1)
            await stage.finish(ProgressState.SKIPPED)
            return tags
        listed = await upstream.list_tags()
        tags = tag_filter.select(listed)
        await stage.set(done=1, message=f"Listed {len(listed)} upstream tags, {len(tags)} selected")
        await stage.finish()
        return tags

    async def _fetch_manifests(
        self, context: TaskContext, remote: Remote, upstream: Upstream, tags: list[str]
    ) -> _Snapshot:
        tag_filter = TagFilter(remote.include_tags, remote.exclude_tags)
        stage = progress.Stage(
            context,
            progress.FETCHING_MANIFESTS,
            "Fetching manifests",
            total=len(tags),
        )
        await stage.start()
        snapshot = _Snapshot(tags={}, roots=set(), manifests={}, new_manifests=[])

        async def resolve_tag(tag: str) -> None:
            head = await upstream.head_manifest(tag)
            if head is None:
                await context.warn(f"tag {tag!r} not found upstream; skipped")
            elif head.digest is not None:
                snapshot.tags[tag] = head.digest
            else:
                # No Docker-Content-Digest on HEAD: the GET's bytes decide the digest.
                manifest = await upstream.get_manifest(tag)
                if manifest is None:
                    await context.warn(f"tag {tag!r} vanished upstream during the sync; skipped")
                else:
                    snapshot.tags[tag] = manifest.digest
                    snapshot.manifests[manifest.digest] = manifest
                    snapshot.new_manifests.append(manifest)
            await stage.advance()

        async with asyncio.TaskGroup() as group:
            for tag in tags:
                group.create_task(resolve_tag(tag))
        snapshot.roots = set(snapshot.tags.values()) | set(tag_filter.include_digests)

        # Walk the manifest graph level by level: known manifests come from the database
        # (no upstream GET), unknown ones are fetched by digest and verified.
        level = set(snapshot.roots) - set(snapshot.manifests)
        while level:
            await stage.set(total=stage.report.total + len(level))
            known = await self._content.known_manifests(str(d) for d in level)
            fetches: list[asyncio.Task[Manifest]] = []
            async with asyncio.TaskGroup() as group:
                for digest in sorted(level):
                    stored = known.get(str(digest))
                    if stored is None:
                        fetches.append(group.create_task(self._fetch_manifest(upstream, digest)))
                        continue
                    snapshot.manifests[digest] = parse_manifest(
                        stored.data, stored.media_type, digest
                    )
                    await stage.advance()
            for fetch in fetches:
                manifest = fetch.result()
                snapshot.manifests[manifest.digest] = manifest
                snapshot.new_manifests.append(manifest)
                await stage.advance()
            children = {c.digest for m in snapshot.manifests.values() for c in m.children}
            level = children - set(snapshot.manifests)
        await stage.set(
            message=f"{len(snapshot.manifests)} manifests, {len(snapshot.new_manifests)} new"
        )
        await stage.finish()
        return snapshot

    @staticmethod
    async def _fetch_manifest(upstream: Upstream, digest: Digest) -> Manifest:
        manifest = await upstream.get_manifest(str(digest), digest)
        if manifest is None:
            raise UpstreamRejected(
                f"manifest {digest} is referenced but missing on {upstream.host}",
                host=upstream.host,
                status=404,
                reason="UPSTREAM_MANIFEST_UNKNOWN",
                digest=str(digest),
            )
        return manifest

    def _wanted_blobs(self, remote: Remote, snapshot: _Snapshot) -> tuple[list[Descriptor], int]:
        """Blobs to have on disk now, and how many foreign layers were left out."""
        wanted: dict[Digest, Descriptor] = {}
        foreign = 0
        for manifest in snapshot.manifests.values():
            if manifest.config is not None:
                wanted.setdefault(manifest.config.digest, manifest.config)
            for layer in manifest.layers:
                if layer.is_foreign and not remote.include_foreign_layers:
                    foreign += 1
                    continue
                if remote.policy is Policy.IMMEDIATE:
                    wanted.setdefault(layer.digest, layer)
        return sorted(wanted.values(), key=lambda d: d.digest), foreign

    async def _download_blobs(
        self, context: TaskContext, remote: Remote, upstream: Upstream, snapshot: _Snapshot
    ) -> None:
        wanted, foreign = self._wanted_blobs(remote, snapshot)
        if foreign:
            await context.warn(
                f"{foreign} foreign (non-distributable) layer reference(s) not downloaded; "
                "set include_foreign_layers to fetch them"
            )
        missing = [b for b in wanted if not self._storage.has(b.digest)]
        stage = progress.Stage(
            context,
            progress.DOWNLOADING_BLOBS,
            f"Downloading blobs ({len(wanted) - len(missing)} already stored)",
            total=len(missing),
            total_bytes=sum(b.size for b in missing),
        )
        await stage.start()
        if remote.policy is not Policy.IMMEDIATE:
            await stage.set(message=f"Layers left for on-demand download ({remote.policy.value})")

        async def download(blob: Descriptor) -> None:
            await self._fetcher.ensure(blob, upstream, stage.add_bytes)
            await stage.advance()

        async with asyncio.TaskGroup() as group:
            for blob in missing:
                group.create_task(download(blob))
        await stage.finish()

    async def _save(self, snapshot: _Snapshot) -> UpstreamContent:
        """Insert the new content rows; return the upstream set as row ids."""
        new_ids = await self._content.save_manifests(snapshot.new_manifests)
        known = await self._content.known_manifests(
            str(d) for d in snapshot.manifests if str(d) not in new_ids
        )
        manifest_ids = {**{d: m.id for d, m in known.items()}, **new_ids}
        missing = {str(d) for d in snapshot.manifests} - set(manifest_ids)
        if missing:
            raise UpstreamProtocolError(
                f"manifests {sorted(missing)[:3]} could not be recorded", host=""
            )
        blob_digests = {str(b.digest) for m in snapshot.manifests.values() for b in m.blobs}
        blob_ids = await self._content.blob_ids(blob_digests)
        tag_ids = await self._content.save_tags(
            [(name, manifest_ids[str(digest)]) for name, digest in snapshot.tags.items()]
        )
        keys = {(MANIFEST, pk) for pk in manifest_ids.values()}
        keys |= {(BLOB, pk) for pk in blob_ids.values()}
        keys |= {(TAG, pk) for pk in tag_ids.values()}
        return UpstreamContent(
            keys=frozenset(keys), tag_names={pk: name for (name, _), pk in tag_ids.items()}
        )

    async def _prune(self, repository_id: str) -> None:
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
