"""Garbage collection as a task: content no version holds, blob objects no content names,
stale temporary uploads and old finished tasks.

The cutoff that protects recent content is the earlier of "now minus the orphan protection
time" and the start of the oldest task running on any process: a sync saves and finds
content (stamping `last_used`) before it commits the version that references it, so that
content is never older than the sync itself. Blob rows and their objects go together under
the exclusive blob guard (`store/guard.py`), which syncs hold shared while they decide which
objects they may rely on. A version commit re-checks that what it adds still exists
(`store/commits.py`), the last line against clocks that disagree between hosts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.digests import Digest
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.storage.base import BlobStore
from server.store.guard import BlobGuard
from server.store.orphans import DeletedBlob, OrphanStore
from server.store.schema import utcnow
from server.sync.progress import Stage
from server.tasks.context import TaskContext

GC_KIND = "gc"
GC_RESOURCE = "housekeeping/gc"  # one collection at a time, across every process
BATCH = 500  # blob rows (and objects) per exclusive hold of the guard
DELETE_CONCURRENCY = 16  # object deletions in flight (S3 round trips overlap)
TEMPORARY_MIN_AGE = timedelta(hours=1)
"""A temporary upload is aborted only when older than this and the cutoff: a live writer
may pause longer than a zero protection time, and aborting it would fail its task."""

CONTENT = "gc.content"
BLOBS = "gc.blobs"
TEMPORARIES = "gc.temporaries"
TASKS = "gc.tasks"
LABELS = {TAG: "tags", SIGNATURE: "signatures", MANIFEST: "manifests", BLOB: "blobs"}


@dataclass(frozen=True, slots=True)
class CollectParameters:
    """What a collection was started with (stored as the task's parameters)."""

    orphan_protection_seconds: float
    task_retention_seconds: float

    def to_parameters(self) -> dict[str, str]:
        return {
            "orphanProtectionSeconds": f"{self.orphan_protection_seconds:g}",
            "taskRetentionSeconds": f"{self.task_retention_seconds:g}",
        }

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> CollectParameters:
        return cls(float(params["orphanProtectionSeconds"]), float(params["taskRetentionSeconds"]))


class GarbageCollector:
    """Runs garbage collection tasks."""

    def __init__(self, orphans: OrphanStore, store: BlobStore, guard: BlobGuard) -> None:
        self._orphans = orphans
        self._store = store
        self._guard = guard

    async def run(self, context: TaskContext) -> tuple[str, ...]:
        params = CollectParameters.from_parameters(context.parameters)
        now = utcnow()
        cutoff = now - timedelta(seconds=params.orphan_protection_seconds)
        oldest = await self._orphans.oldest_running_start((GC_KIND,))
        if oldest is not None and oldest < cutoff:
            cutoff = oldest
        await self._content(context, cutoff)
        await self._temporaries(context, min(cutoff, now - TEMPORARY_MIN_AGE))
        await self._tasks(context, now - timedelta(seconds=params.task_retention_seconds))
        return ()

    async def _content(self, context: TaskContext, cutoff: datetime) -> None:
        units = await Stage(
            context, CONTENT, "Removing content no version holds", unit="units"
        ).start()
        blobs = await Stage(
            context, BLOBS, "Removing blob objects no content names", unit="blobs"
        ).start()
        await self._orphans.drop_dead_memberships()
        candidates = await self._orphans.candidates(cutoff)
        await units.set(total=sum(len(ids) for ids in candidates.values()))
        removed = dict.fromkeys(LABELS, 0)
        for content_type in (TAG, SIGNATURE, MANIFEST):
            count, _ = await self._orphans.delete_units(
                content_type, candidates[content_type], cutoff
            )
            removed[content_type] = count
            await units.advance(count)
        ids = candidates[BLOB]
        for start in range(0, len(ids), BATCH):
            async with self._guard.exclusive():
                count, gone = await self._orphans.delete_units(
                    BLOB, ids[start : start + BATCH], cutoff
                )
                freed, size = await self._delete_objects(gone)
            removed[BLOB] += count
            await units.advance(count)
            await blobs.advance(freed, size)
        await units.set(
            message="Removed "
            + ", ".join(f"{n} {LABELS[t]}" for t, n in removed.items())
            + f"; kept what was used since {cutoff.isoformat(timespec='seconds')}"
        )
        await units.finish()
        await self._objects_without_rows(blobs, cutoff)
        await blobs.set(
            message=f"Removed {blobs.report.done} blob objects, "
            f"{blobs.report.done_bytes} bytes, from {self._store.name}"
        )
        await blobs.finish()

    async def _objects_without_rows(self, stage: Stage, cutoff: datetime) -> None:
        """Objects older than the cutoff that no blob row names (a crashed sync's downloads
        from before rows were claimed, a pull-through fill of content deleted meanwhile)."""
        limit = cutoff.timestamp()
        old: list[DeletedBlob] = []
        async for stat in self._store.iterate():
            if stat.modified < limit:
                old.append(DeletedBlob(str(stat.digest), stat.size))
        for start in range(0, len(old), BATCH):
            batch = old[start : start + BATCH]
            async with self._guard.exclusive():
                named = await self._orphans.known_blobs(b.digest for b in batch)
                freed, size = await self._delete_objects(
                    [b for b in batch if b.digest not in named]
                )
            await stage.advance(freed, size)

    async def _delete_objects(self, blobs: list[DeletedBlob]) -> tuple[int, int]:
        """Delete objects (some may be absent: ON_DEMAND layers) -> (deleted, bytes)."""
        slots = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def one(blob: DeletedBlob) -> int:
            async with slots:
                return blob.size if await self._store.delete(Digest.parse(blob.digest)) else -1

        results = await asyncio.gather(*(one(b) for b in blobs))
        deleted = [r for r in results if r >= 0]
        return len(deleted), sum(deleted)

    async def _temporaries(self, context: TaskContext, before: datetime) -> None:
        stage = await Stage(
            context, TEMPORARIES, "Aborting abandoned temporary uploads", unit="uploads"
        ).start()
        limit = before.timestamp()
        for temporary in await self._store.temporaries():
            if temporary.started < limit:
                await self._store.abort_temporary(temporary)
                await stage.advance(1, temporary.size or 0)
        await stage.finish()

    async def _tasks(self, context: TaskContext, before: datetime) -> None:
        stage = await Stage(context, TASKS, "Removing old finished tasks", unit="tasks").start()
        removed = await self._orphans.delete_finished_tasks(before, keep=context.task.task_id)
        await stage.set(
            done=removed,
            message=f"Removed {removed} tasks that finished before "
            f"{before.isoformat(timespec='seconds')}",
        )
        await stage.finish()
