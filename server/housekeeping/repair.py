"""Repair as a task: re-hash every blob of a version, fetch the missing or corrupt ones again
from the remote they came from (the repository's remote, recorded by its last sync), and
report what could not be repaired.

A corrupt object is deleted before anything else happens, so it is never served again even
if the fetch fails. Layers the remote's policy leaves for on-demand download (ON_DEMAND,
STREAMED) are not expected to be stored: their absence is not damage. The task fails with
DATA_LOSS when some blob could not be repaired; each one is named in its warnings.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from server.domain.digests import Digest
from server.domain.errors import MirrorError
from server.domain.manifests import Descriptor
from server.domain.names import version_name
from server.domain.resources import Policy, Remote
from server.storage import BlobFetcher, BlobStore
from server.store.remotes import RemoteStore
from server.store.repair_queries import RepairQueries, VersionBlob
from server.sync.hosts import Hosts
from server.sync.progress import Stage
from server.sync.session import open_session
from server.sync.upstream import Upstream
from server.tasks.context import TaskContext

log = logging.getLogger(__name__)

REPAIR_KIND = "repair"
VERIFYING = "repair.verifying"
FETCHING = "repair.fetching"
CONCURRENCY = 4  # blobs hashed (and fetched) at once


class Unrepairable(MirrorError):
    """Some blobs of a version are missing or corrupt and could not be fetched again."""

    reason = "BLOBS_UNREPAIRABLE"
    code = "DATA_LOSS"


@dataclass(frozen=True, slots=True)
class RepairParameters:
    """What a repair was started with (stored as the task's parameters)."""

    repository_id: str
    number: int

    def to_parameters(self) -> dict[str, str]:
        return {"version": version_name(self.repository_id, self.number)}

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> RepairParameters:
        head, _, number = params["version"].rpartition("/versions/")
        return cls(head.removeprefix("repositories/"), int(number))


class Repairer:
    """Runs repair tasks."""

    def __init__(
        self,
        queries: RepairQueries,
        remotes: RemoteStore,
        store: BlobStore,
        fetcher: BlobFetcher,
        hosts: Hosts,
        *,
        backoff_base: float | None = None,
    ) -> None:
        self._queries = queries
        self._remotes = remotes
        self._store = store
        self._fetcher = fetcher
        self._hosts = hosts
        self._backoff = backoff_base

    async def run(self, context: TaskContext) -> tuple[str, ...]:
        params = RepairParameters.from_parameters(context.parameters)
        remote_pk, blobs = await self._queries.version_blobs(params.repository_id, params.number)
        remote = None if remote_pk is None else await self._remotes.get_by_pk(remote_pk)
        damaged = await self._verify(context, blobs, remote)
        failed = await self._fetch(context, damaged, remote)
        if failed:
            for blob, why in failed:
                await context.warn(f"{blob.digest} could not be repaired: {why}")
            raise Unrepairable(
                f"{len(failed)} blob(s) of {version_name(params.repository_id, params.number)} "
                "could not be repaired; the task's warnings name them",
                version=version_name(params.repository_id, params.number),
                count=len(failed),
            )
        return ()

    async def _verify(
        self, context: TaskContext, blobs: list[VersionBlob], remote: Remote | None
    ) -> list[VersionBlob]:
        """Hash every stored blob; delete corrupt ones -> the blobs to fetch again."""
        stage = await Stage(
            context,
            VERIFYING,
            "Re-hashing stored blobs",
            total=len(blobs),
            total_bytes=sum(b.size for b in blobs),
            unit="blobs",
        ).start()
        on_demand = remote is not None and remote.policy is not Policy.IMMEDIATE
        damaged: list[VersionBlob] = []
        skipped = 0
        slots = asyncio.Semaphore(CONCURRENCY)

        async def check(blob: VersionBlob) -> None:
            nonlocal skipped
            async with slots:
                state = await self._check(blob)
            if state == "missing" and on_demand and not blob.is_config:
                skipped += 1  # left for on-demand download by the remote's policy
            elif state != "ok":
                damaged.append(blob)
            await stage.advance(1, blob.size)

        async with asyncio.TaskGroup() as group:
            for blob in blobs:
                group.create_task(check(blob))
        await stage.set(
            message=f"{len(blobs) - len(damaged) - skipped} intact, {len(damaged)} missing or "
            f"corrupt, {skipped} left for on-demand download"
        )
        await stage.finish()
        return sorted(damaged, key=lambda b: b.digest)

    async def _check(self, blob: VersionBlob) -> str:
        """ "ok", "missing" or "corrupt" (then already deleted)."""
        digest = Digest.parse(blob.digest)
        stat = await self._store.stat(digest)
        if stat is None:
            return "missing"
        hasher = digest.hasher()
        size = 0
        try:
            async for chunk in self._store.read(digest):
                size += len(chunk)
                await asyncio.to_thread(hasher.update, chunk)
        except MirrorError:  # vanished between stat and read, or unreadable
            return "missing"
        if size == blob.size and hasher.hexdigest() == digest.hex:
            return "ok"
        log.warning("%s in %s is corrupt (%d bytes); deleting it", digest, self._store.name, size)
        await self._store.delete(digest)
        return "corrupt"

    async def _fetch(
        self, context: TaskContext, damaged: list[VersionBlob], remote: Remote | None
    ) -> list[tuple[VersionBlob, str]]:
        """Fetch each damaged blob again -> those that failed, with why."""
        stage = await Stage(
            context,
            FETCHING,
            "Fetching missing and corrupt blobs again",
            total=len(damaged),
            total_bytes=sum(b.size for b in damaged),
            unit="blobs",
        ).start()
        if not damaged:
            await stage.finish()
            return []
        if remote is None:
            await stage.set(message="No remote recorded for this repository")
            await stage.finish()
            return [(b, "the repository has no remote to fetch it from") for b in damaged]
        failed: list[tuple[VersionBlob, str]] = []
        async with open_session(remote) as (session, proxy):
            extra = {} if self._backoff is None else {"backoff_base": self._backoff}
            upstream = Upstream(session, proxy, remote, self._hosts, **extra)
            slots = asyncio.Semaphore(CONCURRENCY)

            async def fetch(blob: VersionBlob) -> None:
                descriptor = Descriptor(
                    media_type=blob.media_type, digest=Digest.parse(blob.digest), size=blob.size
                )
                async with slots:
                    try:
                        await self._fetcher.ensure(descriptor, upstream, stage.add_bytes)
                    except MirrorError as exc:
                        failed.append((blob, f"{remote.name}: {exc.message}"))
                        return
                await stage.advance()

            async with asyncio.TaskGroup() as group:
                for blob in damaged:
                    group.create_task(fetch(blob))
        await stage.set(message=f"Repaired {len(damaged) - len(failed)} of {len(damaged)} blobs")
        await stage.finish()
        return sorted(failed, key=lambda f: f[0].digest)
