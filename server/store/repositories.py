"""Repository rows <-> domain `Repository`; creating one creates its empty version 0."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from server.domain.resources import ContentSummary, Repository
from server.store.common import integrity_as, split_page
from server.store.db import Database
from server.store.schema import (
    DistributionRow,
    RepositoryContentRow,
    RepositoryRow,
    TaskRow,
    VersionRow,
    utcnow,
)

MUTABLE_FIELDS = ("description", "retain_versions", "mirror")
# Domain field name -> row attribute where they differ.
_COLUMNS = {"mirror": "is_mirror"}
ACTIVE_TASK_STATES = ("queued", "running")


def to_domain(row: RepositoryRow) -> Repository:
    return Repository(
        repository_id=row.name,
        uid=row.uid,
        description=row.description,
        retain_versions=row.retain_versions,
        mirror=row.is_mirror,
        latest_version=row.latest_version,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def not_found(repository_id: str) -> NotFound:
    return NotFound(
        f"repository {repository_id!r} not found",
        reason="REPOSITORY_NOT_FOUND",
        repository=f"repositories/{repository_id}",
    )


async def load_row(session: Any, repository_id: str, *, for_update: bool = False) -> RepositoryRow:
    """The row of a repository, locked FOR UPDATE where the backend supports it."""
    query = select(RepositoryRow).where(RepositoryRow.name == repository_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise not_found(repository_id)
    return row


class RepositoryStore:
    """Create, read, update and delete repositories."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, repository_id: str, description: str, retain_versions: int
    ) -> Repository:
        now = utcnow()
        row = RepositoryRow(
            uid=str(uuid.uuid4()),
            name=repository_id,
            description=description,
            retain_versions=retain_versions,
            is_mirror=False,
            latest_version=0,
            create_time=now,
            update_time=now,
        )
        exists = AlreadyExists(
            f"repository {repository_id!r} already exists",
            reason="REPOSITORY_EXISTS",
            repository=f"repositories/{repository_id}",
        )
        with integrity_as(exists):
            async with self._db.session() as session, session.begin():
                session.add(row)
                await session.flush()
                session.add(
                    VersionRow(
                        repository_id=row.id,
                        number=0,
                        base_number=None,
                        create_time=now,
                        summary=ContentSummaryJSON.empty(),
                    )
                )
        return to_domain(row)

    async def get(self, repository_id: str) -> Repository:
        async with self._db.session() as session:
            return to_domain(await load_row(session, repository_id))

    async def list(self, size: int, after: str | None) -> tuple[list[Repository], bool]:
        query = select(RepositoryRow).order_by(RepositoryRow.name).limit(size + 1)
        if after is not None:
            query = query.where(RepositoryRow.name > after)
        async with self._db.session() as session:
            rows = list((await session.execute(query)).scalars())
        page, more = split_page(rows, size)
        return [to_domain(r) for r in page], more

    async def update(self, repository_id: str, changes: dict[str, Any]) -> Repository:
        async with self._db.session() as session, session.begin():
            row = await load_row(session, repository_id, for_update=True)
            for key, value in changes.items():
                if key not in MUTABLE_FIELDS:
                    raise ValueError(f"not a mutable repository field: {key}")
                setattr(row, _COLUMNS.get(key, key), value)
            row.update_time = utcnow()
        return to_domain(row)

    async def delete(self, repository_id: str) -> None:
        name = f"repositories/{repository_id}"
        async with self._db.serialized():
            async with self._db.session() as session, session.begin():
                row = await load_row(session, repository_id, for_update=True)
                busy = await session.scalar(
                    select(TaskRow.uid)
                    .where(TaskRow.resource == name, TaskRow.state.in_(ACTIVE_TASK_STATES))
                    .limit(1)
                )
                if busy:
                    raise FailedPrecondition(
                        f"repository {repository_id!r} has an active task tasks/{busy}; "
                        "cancel it or wait for it to finish",
                        reason="REPOSITORY_BUSY",
                        repository=name,
                        task=f"tasks/{busy}",
                    )
                served = await session.scalar(
                    select(DistributionRow.name)
                    .where(DistributionRow.repository_id == row.id)
                    .limit(1)
                )
                if served:
                    raise FailedPrecondition(
                        f"repository {repository_id!r} is served by distributions/{served}; "
                        "delete that distribution first",
                        reason="REPOSITORY_DISTRIBUTED",
                        repository=name,
                        distribution=f"distributions/{served}",
                    )
                await session.execute(
                    delete(RepositoryContentRow).where(RepositoryContentRow.repository_id == row.id)
                )
                await session.execute(delete(VersionRow).where(VersionRow.repository_id == row.id))
                await session.delete(row)


class ContentSummaryJSON:
    """The JSON shape of `VersionRow.summary`."""

    @staticmethod
    def empty() -> dict[str, dict[str, int]]:
        return {"added": {}, "removed": {}, "present": {}}

    @staticmethod
    def load(data: dict[str, dict[str, int]]) -> ContentSummary:
        return ContentSummary(
            added=dict(data.get("added", {})),
            removed=dict(data.get("removed", {})),
            present=dict(data.get("present", {})),
        )
