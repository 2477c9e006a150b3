"""What garbage collection may delete, and deleting it safely beside running tasks.

A content unit is *referenced* when some existing version of some repository holds it.
Membership rows whose version range no longer contains any existing version (left behind by
version deletion and pruning) are dropped first, so pruning frees what only old versions held.
A unit stays *alive* when it is referenced, when a task used it since the cutoff
(`last_used`, see `schema.last_used_column`), or when an alive unit needs it: the tags and
signatures of a manifest keep it, an index keeps its children, a manifest keeps its blobs,
and a pushed blob staged for a manifest push is kept (its object too, though it has no blob
row yet) for as long as it is staged: the push sweeper ends staging after the upload lifetime.
Uploads in progress live in `<data-dir>/uploads/`, outside the blob store, and are the
sweeper's to expire.
Everything else is collectable.

Deletion re-checks each batch inside its transaction after locking the rows (PostgreSQL:
`FOR UPDATE SKIP LOCKED`; a committing sync holds `FOR SHARE` on what it adds, see
`commits.py`), so a unit that became referenced after the candidates were listed survives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select

from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.domain.tasks import TaskState
from server.store.db import Database
from server.store.schema import (
    BlobRow,
    ManifestBlobRow,
    ManifestChildRow,
    ManifestRow,
    SignatureRow,
    StagedBlobRow,
    TagRow,
    TaskRow,
    VersionRow,
)
from server.store.schema import RepositoryContentRow as RC

BATCH = 500
ROWS = {TAG: TagRow, SIGNATURE: SignatureRow, MANIFEST: ManifestRow, BLOB: BlobRow}
ORDER = (TAG, SIGNATURE, MANIFEST, BLOB)  # referrers before what they refer to
FINISHED = (TaskState.COMPLETED.value, TaskState.FAILED.value, TaskState.CANCELED.value)


@dataclass(frozen=True, slots=True)
class DeletedBlob:
    """A blob row garbage collection removed: its object must go too."""

    digest: str
    size: int


def _chunks(items: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class OrphanStore:
    """The database half of garbage collection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def drop_dead_memberships(self) -> int:
        """Delete membership rows no existing version lies within -> how many."""
        live = exists().where(
            VersionRow.repository_id == RC.repository_id,
            VersionRow.number >= RC.version_added,
            or_(RC.version_removed.is_(None), VersionRow.number < RC.version_removed),
        )
        async with self._db.serialized():
            async with self._db.session() as session, session.begin():
                result = await session.execute(delete(RC).where(~live))
        return int(result.rowcount or 0)

    async def oldest_running_start(self, exclude_kinds: tuple[str, ...]) -> datetime | None:
        """When the longest-running task (of other kinds) started, on any process."""
        async with self._db.session() as session:
            return await session.scalar(
                select(TaskRow.start_time)
                .where(TaskRow.state == TaskState.RUNNING.value, TaskRow.kind.not_in(exclude_kinds))
                .order_by(TaskRow.start_time)
                .limit(1)
            )

    async def candidates(self, cutoff: datetime) -> dict[str, list[int]]:
        """Ids of the units that look collectable now (re-checked when deleted)."""
        async with self._db.session() as session:
            referenced: dict[str, set[int]] = {t: set() for t in ROWS}
            for content_type, content_id in await session.execute(
                select(RC.content_type, RC.content_id).distinct()
            ):
                referenced.setdefault(content_type, set()).add(content_id)
            every: dict[str, set[int]] = {}
            recent: dict[str, set[int]] = {}
            for content_type, row in ROWS.items():
                every[content_type] = set((await session.execute(select(row.id))).scalars())
                recent[content_type] = set(
                    (await session.execute(select(row.id).where(row.last_used >= cutoff))).scalars()
                )
            kept = {t: referenced[t] | recent[t] for t in ROWS}
            manifests = set(kept[MANIFEST])
            for referrer, row in ((TAG, TagRow), (SIGNATURE, SignatureRow)):
                if kept[referrer]:
                    pairs = await session.execute(select(row.id, row.manifest_id))
                    manifests |= {m for pk, m in pairs if pk in kept[referrer]}
            children: dict[int, set[int]] = {}
            for index_id, child_id in await session.execute(
                select(ManifestChildRow.index_id, ManifestChildRow.child_id)
            ):
                children.setdefault(index_id, set()).add(child_id)
            pending = list(manifests)
            while pending:
                for child in children.get(pending.pop(), ()):
                    if child not in manifests:
                        manifests.add(child)
                        pending.append(child)
            # A pushed blob waits in its repository's staging area for the manifest that will
            # reference it: it is held as if a version did (staging is keyed by digest).
            blobs = set(kept[BLOB]) | set(
                (
                    await session.execute(
                        select(BlobRow.id).join(
                            StagedBlobRow, StagedBlobRow.digest == BlobRow.digest
                        )
                    )
                ).scalars()
            )
            for manifest_id, blob_id in await session.execute(
                select(ManifestBlobRow.manifest_id, ManifestBlobRow.blob_id)
            ):
                if manifest_id in manifests:
                    blobs.add(blob_id)
        alive = {TAG: kept[TAG], SIGNATURE: kept[SIGNATURE], MANIFEST: manifests, BLOB: blobs}
        return {t: sorted(every[t] - alive[t]) for t in ORDER}

    async def delete_units(
        self, content_type: str, ids: list[int], cutoff: datetime
    ) -> tuple[int, list[DeletedBlob]]:
        """Delete those of `ids` still collectable -> (count, the blobs among them)."""
        row = ROWS[content_type]
        count, blobs = 0, []
        for chunk in _chunks(ids):
            async with self._db.serialized():
                async with self._db.session() as session, session.begin():
                    n, gone = await self._delete_batch(session, content_type, row, chunk, cutoff)
            count += n
            blobs += gone
        return count, blobs

    async def _delete_batch(
        self, session: Any, content_type: str, row: Any, chunk: list[int], cutoff: datetime
    ) -> tuple[int, list[DeletedBlob]]:
        lock = select(row.id).where(row.id.in_(chunk))
        if not self._db.is_sqlite:
            lock = lock.with_for_update(skip_locked=True)
        locked = list((await session.execute(lock)).scalars())
        deleted = 0
        gone: list[DeletedBlob] = []
        # Indexes and their children can share a batch: delete in rounds until none passes.
        while locked:
            passing = select(row.id).where(
                row.id.in_(locked),
                or_(row.last_used.is_(None), row.last_used < cutoff),
                ~exists().where(RC.content_type == content_type, RC.content_id == row.id),
                *self._still_unneeded(content_type, row),
            )
            ids = list((await session.execute(passing)).scalars())
            if not ids:
                break
            if content_type == BLOB:
                found = await session.execute(
                    select(BlobRow.digest, BlobRow.size).where(BlobRow.id.in_(ids))
                )
                gone += [DeletedBlob(d, s) for d, s in found]
            await session.execute(
                delete(row).where(row.id.in_(ids)).execution_options(synchronize_session=False)
            )
            deleted += len(ids)
            locked = [pk for pk in locked if pk not in set(ids)]
        return deleted, gone

    @staticmethod
    def _still_unneeded(content_type: str, row: Any) -> list[Any]:
        if content_type == BLOB:
            return [
                ~exists().where(ManifestBlobRow.blob_id == row.id),
                ~exists().where(StagedBlobRow.digest == row.digest),
            ]
        if content_type == MANIFEST:
            return [
                ~exists().where(ManifestChildRow.child_id == row.id),
                ~exists().where(TagRow.manifest_id == row.id),
                ~exists().where(SignatureRow.manifest_id == row.id),
            ]
        return []

    async def known_blobs(self, digests: Iterable[str]) -> set[str]:
        """Which of `digests` have a blob row or are staged by a push (their objects are not
        orphans: a pushed blob has no blob row until a manifest names it)."""
        found: set[str] = set()
        async with self._db.session() as session:
            for chunk in _chunks(sorted(set(digests))):
                for column in (BlobRow.digest, StagedBlobRow.digest):
                    found.update(
                        (await session.execute(select(column).where(column.in_(chunk)))).scalars()
                    )
        return found

    async def delete_finished_tasks(self, finished_before: datetime, keep: str) -> int:
        """Delete finished task rows older than `finished_before` (never `keep`, the caller)."""
        async with self._db.session() as session, session.begin():
            result = await session.execute(
                delete(TaskRow).where(
                    and_(
                        TaskRow.state.in_(FINISHED),
                        TaskRow.finish_time < finished_before,
                        TaskRow.uid != keep,
                    )
                )
            )
        return int(result.rowcount or 0)
