"""Listing content of versions and differences between versions, as read models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from server.domain.content import (
    BlobInfo,
    ChildInfo,
    ContentInfo,
    ManifestInfo,
    Membership,
    SignatureInfo,
    TagInfo,
)
from server.domain.digests import Digest
from server.domain.plan import ContentKey
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.storage import BlobStore
from server.store.db import Database
from server.store.membership import present_keys
from server.store.repositories import load_row
from server.store.schema import (
    BlobRow,
    ManifestBlobRow,
    ManifestChildRow,
    ManifestRow,
    SignatureRow,
    TagRow,
    VersionRow,
)
from server.store.versions import not_found

BATCH = 500


class ContentQueries:
    """Read-only queries of the Content API."""

    def __init__(self, db: Database, storage: BlobStore) -> None:
        self._db = db
        self._storage = storage

    async def version_keys(
        self, repository_id: str, number: int | None, membership: Membership
    ) -> tuple[int, list[ContentKey]]:
        """(resolved version number, sorted content keys) of a version and membership."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            wanted = repo.latest_version if number is None else number
            version = await session.scalar(
                select(VersionRow).where(
                    VersionRow.repository_id == repo.id, VersionRow.number == wanted
                )
            )
            if version is None:
                raise not_found(repository_id, wanted)
            target = await present_keys(session, repo.id, wanted)
            if membership is Membership.PRESENT:
                return wanted, sorted(target)
            base = await present_keys(session, repo.id, version.base_number)
        keys = target - base if membership is Membership.ADDED else base - target
        return wanted, sorted(keys)

    async def diff_keys(
        self, repository_id: str, base: int | None, target: int | None
    ) -> tuple[int, int, list[ContentKey], list[ContentKey]]:
        """(base, target, added keys, removed keys) between two versions of a repository."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            numbers = []
            for number in (base, target):
                wanted = repo.latest_version if number is None else number
                exists = await session.scalar(
                    select(VersionRow.id).where(
                        VersionRow.repository_id == repo.id, VersionRow.number == wanted
                    )
                )
                if exists is None:
                    raise not_found(repository_id, wanted)
                numbers.append(wanted)
            old = await present_keys(session, repo.id, numbers[0])
            new = await present_keys(session, repo.id, numbers[1])
        return numbers[0], numbers[1], sorted(new - old), sorted(old - new)

    async def load(self, keys: list[ContentKey]) -> list[ContentInfo]:
        """Read models of `keys`, in the same order."""
        by_type: dict[str, list[int]] = {}
        for content_type, content_id in keys:
            by_type.setdefault(content_type, []).append(content_id)
        found: dict[ContentKey, ContentInfo] = {}
        async with self._db.session() as session:
            for content_type, ids in by_type.items():
                for start in range(0, len(ids), BATCH):
                    chunk = ids[start : start + BATCH]
                    loader = _LOADERS[content_type]
                    for pk, info in (await loader(self, session, chunk)).items():
                        found[(content_type, pk)] = info
        return [found[key] for key in keys if key in found]

    async def _blobs(self, session: Any, ids: list[int]) -> dict[int, ContentInfo]:
        rows = list((await session.execute(select(BlobRow).where(BlobRow.id.in_(ids)))).scalars())
        stored = await self._storage.stat_many([Digest.parse(row.digest) for row in rows])
        return {
            row.id: BlobInfo(
                digest=row.digest,
                size=row.size,
                media_type=row.media_type,
                stored=(s := stored.get(Digest.parse(row.digest))) is not None
                and s.size == row.size,
            )
            for row in rows
        }

    async def _manifests(self, session: Any, ids: list[int]) -> dict[int, ContentInfo]:
        rows = (
            await session.execute(
                select(
                    ManifestRow.id,
                    ManifestRow.digest,
                    ManifestRow.media_type,
                    ManifestRow.size,
                    ManifestRow.config_digest,
                    ManifestRow.artifact_type,
                    ManifestRow.subject_digest,
                ).where(ManifestRow.id.in_(ids))
            )
        ).all()
        blobs: dict[int, list[str]] = {}
        for manifest_id, digest in await session.execute(
            select(ManifestBlobRow.manifest_id, BlobRow.digest)
            .join(BlobRow, BlobRow.id == ManifestBlobRow.blob_id)
            .where(ManifestBlobRow.manifest_id.in_(ids))
        ):
            blobs.setdefault(manifest_id, []).append(digest)
        child = aliased(ManifestRow)
        children: dict[int, list[ChildInfo]] = {}
        for index_id, digest, media_type, os, arch, variant in await session.execute(
            select(
                ManifestChildRow.index_id,
                child.digest,
                child.media_type,
                ManifestChildRow.os,
                ManifestChildRow.architecture,
                ManifestChildRow.variant,
            )
            .join(child, child.id == ManifestChildRow.child_id)
            .where(ManifestChildRow.index_id.in_(ids))
        ):
            children.setdefault(index_id, []).append(
                ChildInfo(digest, media_type, os, arch, variant)
            )
        return {
            pk: ManifestInfo(
                digest=digest,
                media_type=media_type,
                size=size,
                config_digest=config_digest,
                blobs=tuple(sorted(blobs.get(pk, []))),
                children=tuple(sorted(children.get(pk, []), key=lambda c: c.digest)),
                artifact_type=artifact_type,
                subject=subject,
            )
            for pk, digest, media_type, size, config_digest, artifact_type, subject in rows
        }

    async def _tags(self, session: Any, ids: list[int]) -> dict[int, ContentInfo]:
        rows = await session.execute(
            select(TagRow.id, TagRow.name, ManifestRow.digest)
            .join(ManifestRow, ManifestRow.id == TagRow.manifest_id)
            .where(TagRow.id.in_(ids))
        )
        return {pk: TagInfo(name, digest) for pk, name, digest in rows}

    async def _signatures(self, session: Any, ids: list[int]) -> dict[int, ContentInfo]:
        rows = await session.execute(
            select(SignatureRow, ManifestRow.digest)
            .join(ManifestRow, ManifestRow.id == SignatureRow.manifest_id)
            .where(SignatureRow.id.in_(ids))
        )
        return {
            row.id: SignatureInfo(
                name=row.name,
                digest=row.digest,
                type=row.type,
                key_id=row.key_id,
                timestamp=row.timestamp,
                creator=row.creator,
                manifest_digest=digest,
                size=len(row.data),
            )
            for row, digest in rows
        }


_LOADERS = {
    BLOB: ContentQueries._blobs,
    MANIFEST: ContentQueries._manifests,
    TAG: ContentQueries._tags,
    SIGNATURE: ContentQueries._signatures,
}
