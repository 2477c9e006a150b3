"""What the push side of the registry endpoint keeps: upload sessions, staged blobs, and the
version a manifest PUT or DELETE makes (through the one committer).

- An upload is a row (who, how many bytes so far, when last touched) plus its bytes in the
  blob store's upload area; invisible to every pull; expired after `lifetime` seconds idle.
- A completed upload (or a cross-repository mount) *stages* its blob in the repository: a
  manifest PUT there may reference it. Staging expires with the same lifetime.
- A manifest PUT is checked inside the commit transaction against the base version and the
  staged blobs, so a concurrent push or delete cannot slip between the check and the version.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from server.domain.errors import NotFound
from server.domain.manifests import Manifest
from server.domain.plan import ContentChange, ContentKey
from server.domain.resources import BLOB, MANIFEST, TAG, Version, VersionOrigin
from server.store.commits import BaseContent, VersionCommitter
from server.store.content import ContentStore
from server.store.db import Database
from server.store.operations import save_tags_in
from server.store.schema import BlobRow, ManifestRow, StagedBlobRow, UploadRow, utcnow

DEADLOCK_RETRIES = 5


def _deadlocked(exc: DBAPIError) -> bool:
    """PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01)."""
    return getattr(exc.orig, "sqlstate", None) == "40P01" or "deadlock detected" in str(exc)


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload session as the handlers see it."""

    uid: str
    repository_pk: int
    size: int
    principal: str


class BlobUnknown(NotFound):
    """A manifest references a blob or child manifest the repository does not have."""

    reason = "MANIFEST_BLOB_UNKNOWN"


class BlobSizeMismatch(NotFound):
    """A manifest's descriptor gives a size other than the stored blob's."""

    reason = "SIZE_INVALID"


class PushStore:
    """Upload rows, staged blobs and manifest versions of pushes."""

    def __init__(
        self, db: Database, content: ContentStore, committer: VersionCommitter, lifetime: float
    ) -> None:
        self._db = db
        self._content = content
        self._committer = committer
        self.lifetime = lifetime
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert

    # -- uploads ---------------------------------------------------------------------------
    async def start_upload(self, repository_pk: int, principal: str) -> Upload:
        now = utcnow()
        row = UploadRow(
            uid=str(uuid.uuid4()),
            repository_id=repository_pk,
            size=0,
            principal=principal,
            create_time=now,
            update_time=now,
        )
        async with self._db.session() as session, session.begin():
            session.add(row)
        return Upload(row.uid, repository_pk, 0, principal)

    async def get_upload(self, uid: str, repository_pk: int) -> Upload | None:
        """The upload `uid` of this repository, unless it expired."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(UploadRow).where(
                    UploadRow.uid == uid, UploadRow.repository_id == repository_pk
                )
            )
        if row is None or row.update_time < utcnow() - timedelta(seconds=self.lifetime):
            return None
        return Upload(row.uid, row.repository_id, row.size, row.principal)

    async def advance(self, uid: str, old_size: int, new_size: int) -> bool:
        """Record bytes received; False when another request moved the upload meanwhile."""
        async with self._db.session() as session, session.begin():
            result = await session.execute(
                update(UploadRow)
                .where(UploadRow.uid == uid, UploadRow.size == old_size)
                .values(size=new_size, update_time=utcnow())
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def end_upload(self, uid: str) -> None:
        async with self._db.session() as session, session.begin():
            await session.execute(delete(UploadRow).where(UploadRow.uid == uid))

    async def live_uploads(self) -> set[str]:
        async with self._db.session() as session:
            return set((await session.execute(select(UploadRow.uid))).scalars())

    async def expire(self) -> list[str]:
        """Drop uploads idle longer than the lifetime (-> their ids, for their bytes) and
        staged blobs no manifest claimed in that time."""
        cutoff = utcnow() - timedelta(seconds=self.lifetime)
        async with self._db.session() as session, session.begin():
            uids = list(
                (
                    await session.execute(
                        select(UploadRow.uid).where(UploadRow.update_time < cutoff)
                    )
                ).scalars()
            )
            if uids:
                await session.execute(delete(UploadRow).where(UploadRow.uid.in_(uids)))
            await session.execute(delete(StagedBlobRow).where(StagedBlobRow.create_time < cutoff))
        return uids

    # -- staged blobs ----------------------------------------------------------------------
    async def stage(self, repository_pk: int, digest: str, size: int) -> None:
        """Make a stored blob referenceable by manifests pushed into the repository."""
        async with self._db.session() as session, session.begin():
            statement = self._insert(StagedBlobRow).values(
                repository_id=repository_pk, digest=digest, size=size, create_time=utcnow()
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["repository_id", "digest"],
                    set_={"create_time": statement.excluded.create_time},
                )
            )

    async def staged_size(self, repository_pk: int, digest: str) -> int | None:
        async with self._db.session() as session:
            return await session.scalar(
                select(StagedBlobRow.size).where(
                    StagedBlobRow.repository_id == repository_pk, StagedBlobRow.digest == digest
                )
            )

    # -- versions --------------------------------------------------------------------------
    async def put_manifest(
        self, repository_id: str, manifest: Manifest, tag: str | None, origin: VersionOrigin
    ) -> Version | None:
        """`_put_manifest`, again when PostgreSQL chose it as a deadlock victim: concurrent
        pushes of one manifest mark its blobs used (`touch`) while a commit holds them FOR
        SHARE; each step is one transaction that rolled back whole, so a retry is safe."""
        for attempt in range(DEADLOCK_RETRIES):
            try:
                return await self._put_manifest(repository_id, manifest, tag, origin)
            except DBAPIError as exc:
                if not _deadlocked(exc) or attempt == DEADLOCK_RETRIES - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1) * (1 + random.random()))
        raise AssertionError("unreachable")

    async def _put_manifest(
        self, repository_id: str, manifest: Manifest, tag: str | None, origin: VersionOrigin
    ) -> Version | None:
        """The version holding `manifest` (and `tag` on it); None when nothing changed.
        BlobUnknown / BlobSizeMismatch when a reference is not in the repository."""
        await self._content.save_manifests([manifest])

        async def build(base: BaseContent) -> ContentChange:
            session = base.session
            manifest_id = await session.scalar(
                select(ManifestRow.id).where(ManifestRow.digest == str(manifest.digest))
            )
            keys: set[ContentKey] = {(MANIFEST, manifest_id)}
            keys |= await _children(session, base, manifest)
            keys |= await _blobs(session, base, manifest)
            names: dict[int, str] = {}
            if tag is not None:
                pk = (await save_tags_in(session, [(tag, manifest_id)]))[(tag, manifest_id)]
                keys.add((TAG, pk))
                names[pk] = tag
            return ContentChange(add=frozenset(keys), add_tag_names=names)

        version, _ = await self._committer.commit(repository_id, build, origin=origin)
        return version


async def _children(session: Any, base: BaseContent, manifest: Manifest) -> set[ContentKey]:
    """Child manifests of an index: each must be in the base version already."""
    keys: set[ContentKey] = set()
    for child in manifest.children:
        pk = await session.scalar(
            select(ManifestRow.id).where(ManifestRow.digest == str(child.digest))
        )
        if pk is None or (MANIFEST, pk) not in base.keys:
            raise BlobUnknown(
                f"child manifest {child.digest} is not in repositories/{base.repository_id}; "
                "push it first",
                digest=str(child.digest),
            )
        keys.add((MANIFEST, pk))
    return keys


async def _blobs(session: Any, base: BaseContent, manifest: Manifest) -> set[ContentKey]:
    """Config and layers: each in the base version or staged in the repository, with the
    size the manifest gives. Foreign layers are references only and need not be here."""
    keys: set[ContentKey] = set()
    for blob in manifest.blobs:
        digest = str(blob.digest)
        row = (
            await session.execute(select(BlobRow.id, BlobRow.size).where(BlobRow.digest == digest))
        ).first()
        assert row is not None  # save_manifests made it
        pk, _ = row
        keys.add((BLOB, pk))
        if blob.is_foreign or (BLOB, pk) in base.keys:
            continue
        size = await session.scalar(
            select(StagedBlobRow.size).where(
                StagedBlobRow.repository_id == base.repository_pk, StagedBlobRow.digest == digest
            )
        )
        if size is None:
            raise BlobUnknown(
                f"blob {digest} is not in repositories/{base.repository_id}; upload it first",
                digest=digest,
            )
        if size != blob.size:
            raise BlobSizeMismatch(
                f"blob {digest} has {size} bytes, the manifest says {blob.size}",
                digest=digest,
                size=size,
                declaredSize=blob.size,
            )
    return keys
