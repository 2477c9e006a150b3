"""What a repair needs to know about a version: its blobs and the remote they came from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select

from server.domain.resources import BLOB, MANIFEST
from server.store.db import Database
from server.store.membership import present_in
from server.store.repositories import load_row
from server.store.schema import BlobRow, ManifestRow, VersionRow
from server.store.schema import RepositoryContentRow as RC
from server.store.versions import not_found


@dataclass(frozen=True, slots=True)
class VersionBlob:
    """A blob of a version, as the repair checks it."""

    digest: str
    size: int
    media_type: str
    is_config: bool
    """Configs are always stored, whatever the remote's policy."""


class RepairQueries:
    """Read-only queries for repair tasks."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def version_blobs(
        self, repository_id: str, number: int
    ) -> tuple[int | None, list[VersionBlob]]:
        """(primary key of the repository's remote, the version's blobs by digest)."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            exists = await session.scalar(
                select(VersionRow.id).where(
                    VersionRow.repository_id == repo.id, VersionRow.number == number
                )
            )
            if exists is None:
                raise not_found(repository_id, number)

            def members(content_type: str) -> Select[tuple[int]]:
                return select(RC.content_id).where(
                    RC.repository_id == repo.id,
                    RC.content_type == content_type,
                    present_in(number),
                )

            configs = set(
                (
                    await session.execute(
                        select(ManifestRow.config_digest).where(
                            ManifestRow.id.in_(members(MANIFEST))
                        )
                    )
                ).scalars()
            )
            rows = await session.execute(
                select(BlobRow.digest, BlobRow.size, BlobRow.media_type)
                .where(BlobRow.id.in_(members(BLOB)))
                .order_by(BlobRow.digest)
            )
            blobs = [VersionBlob(d, s, m, d in configs) for d, s, m in rows]
        return repo.remote_id, blobs
