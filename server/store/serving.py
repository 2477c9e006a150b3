"""Read queries of the registry endpoint: what a distribution serves, resolved per request.

Everything is looked up within the served version: a blob or manifest another repository has
is unknown here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.store.db import Database
from server.store.membership import present_in
from server.store.schema import (
    BlobRow,
    DistributionRow,
    ManifestRow,
    RepositoryRow,
    SignatureRow,
    StagedBlobRow,
    TagRow,
)
from server.store.schema import (
    RepositoryContentRow as RC,
)


@dataclass(frozen=True, slots=True)
class Served:
    """What a base path serves right now."""

    repository_pk: int
    repository_id: str
    version: int
    remote_pk: int | None
    pinned: bool = False  # the distribution serves one fixed version
    mirror: bool = False  # the repository is a mirror (pushes refused)


@dataclass(frozen=True, slots=True)
class ServedManifest:
    digest: str
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ServedBlob:
    digest: str
    size: int
    media_type: str


class ServingQueries:
    """Lookups by base path, tag and digest."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def generation(self) -> int:
        """The serving generation (migration 0008): it changes, in the same transaction,
        with anything that changes what a base path serves. A core connection and one
        driver-level statement: this runs for (nearly) every registry request."""
        async with self._autocommit.connect() as conn:  # no BEGIN/ROLLBACK round trips
            result = await conn.exec_driver_sql("SELECT value FROM serving_generation WHERE id = 1")
            return int(result.scalar_one())

    async def resolve(self, base_path: str) -> Served | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(
                        RepositoryRow.id,
                        RepositoryRow.name,
                        RepositoryRow.latest_version,
                        RepositoryRow.remote_id,
                        DistributionRow.version_number,
                        RepositoryRow.is_mirror,
                    )
                    .join(RepositoryRow, RepositoryRow.id == DistributionRow.repository_id)
                    .where(DistributionRow.base_path == base_path)
                )
            ).first()
        if row is None:
            return None
        pk, name, latest, remote_pk, pinned, mirror = row
        return Served(
            pk, name, latest if pinned is None else pinned, remote_pk, pinned is not None, mirror
        )

    async def catalog(self, limit: int, after: str) -> list[str]:
        async with self._db.session() as session:
            rows = await session.execute(
                select(DistributionRow.base_path)
                .where(DistributionRow.base_path > after)
                .order_by(DistributionRow.base_path)
                .limit(limit)
            )
            return list(rows.scalars())

    async def tags(self, served: Served, limit: int, after: str) -> list[str]:
        async with self._db.session() as session:
            rows = await session.execute(
                select(TagRow.name)
                .join(RC, (RC.content_id == TagRow.id) & (RC.content_type == TAG))
                .where(RC.repository_id == served.repository_pk, present_in(served.version))
                .where(TagRow.name > after)
                .order_by(TagRow.name)
                .limit(limit)
            )
            return list(rows.scalars())

    async def manifest_by_tag(self, served: Served, tag: str) -> ServedManifest | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(ManifestRow.digest, ManifestRow.media_type, ManifestRow.data)
                    .join(TagRow, TagRow.manifest_id == ManifestRow.id)
                    .join(RC, (RC.content_id == TagRow.id) & (RC.content_type == TAG))
                    .where(
                        RC.repository_id == served.repository_pk,
                        present_in(served.version),
                        TagRow.name == tag,
                    )
                )
            ).first()
        return None if row is None else ServedManifest(*row)

    async def manifest_by_digest(self, served: Served, digest: str) -> ServedManifest | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(ManifestRow.digest, ManifestRow.media_type, ManifestRow.data)
                    .join(RC, (RC.content_id == ManifestRow.id) & (RC.content_type == MANIFEST))
                    .where(
                        RC.repository_id == served.repository_pk,
                        present_in(served.version),
                        ManifestRow.digest == digest,
                    )
                )
            ).first()
        return None if row is None else ServedManifest(*row)

    async def blob(self, served: Served, digest: str) -> ServedBlob | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(BlobRow.digest, BlobRow.size, BlobRow.media_type)
                    .join(RC, (RC.content_id == BlobRow.id) & (RC.content_type == BLOB))
                    .where(
                        RC.repository_id == served.repository_pk,
                        present_in(served.version),
                        BlobRow.digest == digest,
                    )
                )
            ).first()
            if row is None and not served.pinned:
                # Pushed into this repository, not yet named by a manifest (see StagedBlobRow):
                # a pushing client checks for it before it PUTs the manifest.
                staged = await session.scalar(
                    select(StagedBlobRow.size).where(
                        StagedBlobRow.repository_id == served.repository_pk,
                        StagedBlobRow.digest == digest,
                    )
                )
                if staged is not None:
                    return ServedBlob(digest, staged, "application/octet-stream")
        return None if row is None else ServedBlob(*row)

    async def referrers(self, served: Served, subject: str) -> list[ServedManifest]:
        """Manifests of the version whose OCI `subject` is `subject`."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(ManifestRow.digest, ManifestRow.media_type, ManifestRow.data)
                .join(RC, (RC.content_id == ManifestRow.id) & (RC.content_type == MANIFEST))
                .where(
                    RC.repository_id == served.repository_pk,
                    present_in(served.version),
                    ManifestRow.subject_digest == subject,
                )
                .order_by(ManifestRow.digest)
            )
            return [ServedManifest(*row) for row in rows]

    async def atomic_signatures(self, served: Served, manifest: str) -> list[tuple[str, bytes]]:
        """(name, bytes) of the atomic signatures of `manifest` in the version."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(SignatureRow.name, SignatureRow.data)
                .join(RC, (RC.content_id == SignatureRow.id) & (RC.content_type == SIGNATURE))
                .join(ManifestRow, ManifestRow.id == SignatureRow.manifest_id)
                .where(
                    RC.repository_id == served.repository_pk,
                    present_in(served.version),
                    ManifestRow.digest == manifest,
                    SignatureRow.type == "atomic",
                )
                .order_by(SignatureRow.id)
            )
            return [(name, data) for name, data in rows]
