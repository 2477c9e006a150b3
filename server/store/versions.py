"""Reading and deleting repository versions (creating them is `commits.py`)."""

from __future__ import annotations

from sqlalchemy import and_, delete, select

from server.domain.errors import FailedPrecondition, NotFound
from server.domain.names import version_name
from server.domain.resources import Version, VersionOrigin, VersionSource
from server.store.common import split_page
from server.store.db import Database
from server.store.membership import summary_json
from server.store.repositories import ContentSummaryJSON, load_row
from server.store.schema import DistributionRow, RepositoryContentRow, VersionRow


def to_domain(repository_id: str, row: VersionRow) -> Version:
    return Version(
        repository_id=repository_id,
        number=row.number,
        base_number=row.base_number,
        create_time=row.create_time,
        summary=ContentSummaryJSON.load(row.summary),
        origin=VersionOrigin(VersionSource(row.source), row.principal, row.detail),
    )


def not_found(repository_id: str, number: int) -> NotFound:
    name = version_name(repository_id, number)
    return NotFound(f"version {name} not found", reason="VERSION_NOT_FOUND", version=name)


class VersionStore:
    """Get, list and delete versions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, repository_id: str, number: int | None) -> Version:
        """Version `number` of a repository; None means its latest version."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            wanted = repo.latest_version if number is None else number
            row = await session.scalar(
                select(VersionRow).where(
                    VersionRow.repository_id == repo.id, VersionRow.number == wanted
                )
            )
        if row is None:
            raise not_found(repository_id, wanted)
        return to_domain(repository_id, row)

    async def list(
        self, repository_id: str, size: int, before: int | None
    ) -> tuple[list[Version], bool]:
        """Newest first; `before` is the keyset cursor (the last number of the previous page)."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            query = (
                select(VersionRow)
                .where(VersionRow.repository_id == repo.id)
                .order_by(VersionRow.number.desc())
                .limit(size + 1)
            )
            if before is not None:
                query = query.where(VersionRow.number < before)
            rows = list((await session.execute(query)).scalars())
        page, more = split_page(rows, size)
        return [to_domain(repository_id, r) for r in page], more

    async def delete(self, repository_id: str, number: int) -> None:
        """Delete a non-latest, unpinned version; its changes fold into the next version."""
        name = version_name(repository_id, number)
        async with self._db.serialized():
            async with self._db.session() as session, session.begin():
                repo = await load_row(session, repository_id, for_update=True)
                row = await session.scalar(
                    select(VersionRow).where(
                        VersionRow.repository_id == repo.id, VersionRow.number == number
                    )
                )
                if row is None:
                    raise not_found(repository_id, number)
                if number == repo.latest_version:
                    raise FailedPrecondition(
                        f"{name} is the latest version and cannot be deleted",
                        reason="VERSION_IS_LATEST",
                        version=name,
                    )
                pinned = await session.scalar(
                    select(DistributionRow.name).where(
                        DistributionRow.repository_id == repo.id,
                        DistributionRow.version_number == number,
                    )
                )
                if pinned:
                    raise FailedPrecondition(
                        f"{name} is served by distributions/{pinned}",
                        reason="VERSION_DISTRIBUTED",
                        version=name,
                        distribution=f"distributions/{pinned}",
                    )
                following = await session.scalar(
                    select(VersionRow)
                    .where(VersionRow.repository_id == repo.id, VersionRow.number > number)
                    .order_by(VersionRow.number)
                    .limit(1)
                )
                assert following is not None  # the latest version is after any non-latest one
                # Content added here and removed again by the next version was visible only here.
                await session.execute(
                    delete(RepositoryContentRow).where(
                        and_(
                            RepositoryContentRow.repository_id == repo.id,
                            RepositoryContentRow.version_added == number,
                            RepositoryContentRow.version_removed <= following.number,
                        )
                    )
                )
                following.base_number = row.base_number
                await session.delete(row)
                await session.flush()
                following.summary = await summary_json(
                    session, repo.id, following.base_number, following.number
                )
