"""Distribution rows <-> domain `Distribution`; base paths are unique."""

from __future__ import annotations

from sqlalchemy import select

from server.domain.errors import AlreadyExists, NotFound
from server.domain.names import version_name
from server.domain.resources import Distribution
from server.store.common import integrity_as, split_page
from server.store.db import Database
from server.store.repositories import load_row
from server.store.schema import DistributionRow, RepositoryRow, VersionRow, utcnow
from server.store.versions import not_found as version_not_found


def not_found(distribution_id: str) -> NotFound:
    return NotFound(
        f"distribution {distribution_id!r} not found",
        reason="DISTRIBUTION_NOT_FOUND",
        distribution=f"distributions/{distribution_id}",
    )


def _exists(distribution: Distribution) -> AlreadyExists:
    return AlreadyExists(
        f"distribution {distribution.distribution_id!r} or base path "
        f"{distribution.base_path!r} already exists",
        reason="DISTRIBUTION_EXISTS",
        distribution=distribution.name,
        basePath=distribution.base_path,
    )


class DistributionStore:
    """Create, read, update and delete distributions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _check_target(self, session: object, distribution: Distribution) -> int:
        # Locked, so a concurrent DeleteVersion cannot remove the version being pinned.
        repo = await load_row(session, distribution.repository_id, for_update=True)
        if distribution.version is not None:
            found = await session.scalar(  # type: ignore[attr-defined]
                select(VersionRow.id).where(
                    VersionRow.repository_id == repo.id, VersionRow.number == distribution.version
                )
            )
            if found is None:
                raise version_not_found(distribution.repository_id, distribution.version)
        return repo.id

    async def create(self, distribution: Distribution) -> Distribution:
        now = utcnow()
        async with self._db.serialized():
            with integrity_as(_exists(distribution)):
                async with self._db.session() as session, session.begin():
                    repo_pk = await self._check_target(session, distribution)
                    session.add(
                        DistributionRow(
                            name=distribution.distribution_id,
                            base_path=distribution.base_path,
                            repository_id=repo_pk,
                            version_number=distribution.version,
                            description=distribution.description,
                            public=distribution.public,
                            create_time=now,
                            update_time=now,
                        )
                    )
        return await self.get(distribution.distribution_id)

    async def get(self, distribution_id: str) -> Distribution:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(DistributionRow, RepositoryRow.name)
                    .join(RepositoryRow, RepositoryRow.id == DistributionRow.repository_id)
                    .where(DistributionRow.name == distribution_id)
                )
            ).first()
        if row is None:
            raise not_found(distribution_id)
        return _to_domain(*row)

    async def list(self, size: int, after: str | None) -> tuple[list[Distribution], bool]:
        query = (
            select(DistributionRow, RepositoryRow.name)
            .join(RepositoryRow, RepositoryRow.id == DistributionRow.repository_id)
            .order_by(DistributionRow.name)
            .limit(size + 1)
        )
        if after is not None:
            query = query.where(DistributionRow.name > after)
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        page, more = split_page(rows, size)
        return [_to_domain(*r) for r in page], more

    async def replace(self, distribution: Distribution) -> Distribution:
        async with self._db.serialized():
            with integrity_as(_exists(distribution)):
                async with self._db.session() as session, session.begin():
                    row = await session.scalar(
                        select(DistributionRow).where(
                            DistributionRow.name == distribution.distribution_id
                        )
                    )
                    if row is None:
                        raise not_found(distribution.distribution_id)
                    row.repository_id = await self._check_target(session, distribution)
                    row.base_path = distribution.base_path
                    row.version_number = distribution.version
                    row.description = distribution.description
                    row.public = distribution.public
                    row.update_time = utcnow()
        return await self.get(distribution.distribution_id)

    async def delete(self, distribution_id: str) -> None:
        async with self._db.session() as session, session.begin():
            row = await session.scalar(
                select(DistributionRow).where(DistributionRow.name == distribution_id)
            )
            if row is None:
                raise not_found(distribution_id)
            await session.delete(row)


def _to_domain(row: DistributionRow, repository_id: str) -> Distribution:
    return Distribution(
        distribution_id=row.name,
        base_path=row.base_path,
        repository_id=repository_id,
        version=row.version_number,
        description=row.description,
        public=bool(row.public),
        create_time=row.create_time,
        update_time=row.update_time,
    )


def pinned_version_name(distribution: Distribution) -> str:
    if distribution.version is None:
        return ""
    return version_name(distribution.repository_id, distribution.version)
