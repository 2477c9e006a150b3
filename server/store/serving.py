"""Read queries of the registry endpoint: what a distribution serves, resolved per request.

Everything is looked up within the served version: a blob or manifest another repository has
is unknown here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.store.db import Database
from server.store.membership import present_in
from server.store.schema import (
    BlobRow,
    DistributionRow,
    ManifestBlobRow,
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
    public: bool = False
    """Anonymous pull allowed (the registry's access middleware reads it)."""


@dataclass(frozen=True, slots=True)
class ServedManifest:
    digest: str
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ServedBlob:
    """A blob of the served version: its size and media type as the version's own manifests
    declare them, and the remote the sync that brought it used (None: not from a sync)."""

    digest: str
    size: int
    media_type: str
    remote_pk: int | None = None


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
                        DistributionRow.public,
                    )
                    .join(RepositoryRow, RepositoryRow.id == DistributionRow.repository_id)
                    .where(DistributionRow.base_path == base_path)
                )
            ).first()
        if row is None:
            return None
        pk, name, latest, remote_pk, pinned, mirror, public = row
        return Served(
            pk,
            name,
            latest if pinned is None else pinned,
            remote_pk,
            pinned is not None,
            bool(mirror),
            bool(public),
        )

    async def catalog_entries(self, limit: int, after: str) -> list[tuple[str, str, bool]]:
        """(base path, repository id, public) of distributions after `after`, by base path."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(DistributionRow.base_path, RepositoryRow.name, DistributionRow.public)
                .join(RepositoryRow, RepositoryRow.id == DistributionRow.repository_id)
                .where(DistributionRow.base_path > after)
                .order_by(DistributionRow.base_path)
                .limit(limit)
            )
            return [(path, repo, bool(public)) for path, repo, public in rows]

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
                    select(BlobRow.id, BlobRow.size, BlobRow.media_type, RC.remote_id)
                    .join(RC, (RC.content_id == BlobRow.id) & (RC.content_type == BLOB))
                    .where(
                        RC.repository_id == served.repository_pk,
                        present_in(served.version),
                        BlobRow.digest == digest,
                    )
                )
            ).first()
            if row is None:
                if served.pinned:
                    return None
                # Pushed into this repository, not yet named by a manifest (see StagedBlobRow):
                # a pushing client checks for it before it PUTs the manifest.
                staged = await session.scalar(
                    select(StagedBlobRow.size).where(
                        StagedBlobRow.repository_id == served.repository_pk,
                        StagedBlobRow.digest == digest,
                    )
                )
                if staged is None:
                    return None
                return ServedBlob(digest, staged, "application/octet-stream", None)
            blob_pk, size, media_type, remote_pk = row
            # The descriptor of a manifest of this version that names the blob (the global
            # row holds whatever the first upstream declared, possibly for another repo).
            in_version = aliased(RC)
            declared = (
                await session.execute(
                    select(ManifestBlobRow.size, ManifestBlobRow.media_type)
                    .join(
                        in_version,
                        (in_version.content_id == ManifestBlobRow.manifest_id)
                        & (in_version.content_type == MANIFEST),
                    )
                    .where(
                        ManifestBlobRow.blob_id == blob_pk,
                        ManifestBlobRow.size.is_not(None),
                        in_version.repository_id == served.repository_pk,
                        in_version.version_added <= served.version,
                        or_(
                            in_version.version_removed.is_(None),
                            in_version.version_removed > served.version,
                        ),
                    )
                    .order_by(ManifestBlobRow.manifest_id)
                    .limit(1)
                )
            ).first()
        if declared is not None:
            size, media_type = declared
        return ServedBlob(digest, size, media_type or "", remote_pk)

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
