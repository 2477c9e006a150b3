"""Principals, API tokens and grants in the database; speaks `model` types outward.

Every change that can take access away (a token revoked, a principal deleted or demoted, a
grant removed) is announced on `changes`, so open streams re-check their caller at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import delete, func, select

from server.access import tokens
from server.access.model import ApiToken, Grant, Principal, Role
from server.domain.errors import AlreadyExists, NotFound
from server.store.common import integrity_as, split_page
from server.store.db import Database
from server.store.repositories import load_row as load_repository
from server.store.schema import (
    ApiTokenRow,
    DistributionRow,
    GrantRow,
    PrincipalRow,
    RepositoryRow,
    TaskRow,
    utcnow,
)

MUTABLE_FIELDS = ("role", "description")


class AccessChanges:
    """In-process signal: something that may take access away just changed. Other processes
    sharing a PostgreSQL database notice within `interceptor.RECHECK_SECONDS` instead."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> None:
        """Return at the next change, or after `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            pass


def principal_not_found(name: str) -> NotFound:
    return NotFound(
        f"principal {name!r} not found",
        reason="PRINCIPAL_NOT_FOUND",
        principal=f"principals/{name}",
    )


def _principal(row: PrincipalRow, grants: dict[str, Role], token_id: str = "") -> Principal:
    return Principal(
        name=row.name,
        role=Role(row.role),
        grants=MappingProxyType(grants),
        description=row.description,
        token_id=token_id,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def _token(row: ApiTokenRow, principal: str) -> ApiToken:
    return ApiToken(
        principal=principal,
        token_id=row.uid,
        description=row.description,
        create_time=row.create_time,
        expire_time=row.expire_time,
    )


async def _load(session: Any, name: str) -> PrincipalRow:
    row = (
        await session.execute(select(PrincipalRow).where(PrincipalRow.name == name))
    ).scalar_one_or_none()
    if row is None:
        raise principal_not_found(name)
    return row


async def _grants(session: Any, principal_pk: int) -> dict[str, Role]:
    rows = await session.execute(
        select(RepositoryRow.name, GrantRow.role)
        .join(RepositoryRow, RepositoryRow.id == GrantRow.repository_id)
        .where(GrantRow.principal_id == principal_pk)
    )
    return {name: Role(role) for name, role in rows}


class AccessStore:
    """Create, read, update and delete principals, tokens and grants; authenticate."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.changes = AccessChanges()

    # -- principals ------------------------------------------------------------------
    async def count_principals(self) -> int:
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count(PrincipalRow.id))) or 0)

    async def create_principal(self, name: str, role: Role, description: str) -> Principal:
        now = utcnow()
        row = PrincipalRow(
            uid=str(uuid.uuid4()),
            name=name,
            role=role.value,
            description=description,
            create_time=now,
            update_time=now,
        )
        exists = AlreadyExists(
            f"principal {name!r} already exists",
            reason="PRINCIPAL_EXISTS",
            principal=f"principals/{name}",
        )
        with integrity_as(exists):
            async with self._db.session() as session, session.begin():
                session.add(row)
        return _principal(row, {})

    async def get_principal(self, name: str) -> Principal:
        async with self._db.session() as session:
            row = await _load(session, name)
            return _principal(row, await _grants(session, row.id))

    async def find_principal(self, name: str) -> Principal | None:
        """The principal called `name` with its grants, or None (mTLS, registry tokens)."""
        try:
            return await self.get_principal(name)
        except NotFound:
            return None

    async def list_principals(self, size: int, after: str | None) -> tuple[list[Principal], bool]:
        query = select(PrincipalRow).order_by(PrincipalRow.name).limit(size + 1)
        if after is not None:
            query = query.where(PrincipalRow.name > after)
        async with self._db.session() as session:
            rows = list((await session.execute(query)).scalars())
            page, more = split_page(rows, size)
            return [_principal(r, await _grants(session, r.id)) for r in page], more

    async def update_principal(self, name: str, changes: dict[str, Any]) -> Principal:
        async with self._db.session() as session, session.begin():
            row = await _load(session, name)
            for key, value in changes.items():
                if key not in MUTABLE_FIELDS:
                    raise ValueError(f"not a mutable principal field: {key}")
                setattr(row, key, value.value if isinstance(value, Role) else value)
            row.update_time = utcnow()
            principal = _principal(row, await _grants(session, row.id))
        self.changes.notify()
        return principal

    async def delete_principal(self, name: str) -> None:
        async with self._db.session() as session, session.begin():
            row = await _load(session, name)
            # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on.
            await session.execute(delete(ApiTokenRow).where(ApiTokenRow.principal_id == row.id))
            await session.execute(delete(GrantRow).where(GrantRow.principal_id == row.id))
            await session.delete(row)
        self.changes.notify()

    # -- tokens ----------------------------------------------------------------------
    async def create_token(
        self, principal: str, description: str, expire_time: datetime | None
    ) -> tuple[ApiToken, str]:
        """A new token of `principal` and its secret (returned here only)."""
        secret = tokens.new_secret()
        async with self._db.session() as session, session.begin():
            owner = await _load(session, principal)
            row = ApiTokenRow(
                uid=uuid.uuid4().hex,
                principal_id=owner.id,
                secret_hash=tokens.secret_hash(secret),
                description=description,
                create_time=utcnow(),
                expire_time=expire_time,
            )
            session.add(row)
        return _token(row, principal), secret

    async def list_tokens(
        self, principal: str, size: int, after: int | None
    ) -> tuple[list[tuple[int, ApiToken]], bool]:
        async with self._db.session() as session:
            owner = await _load(session, principal)
            query = (
                select(ApiTokenRow)
                .where(ApiTokenRow.principal_id == owner.id)
                .order_by(ApiTokenRow.id)
                .limit(size + 1)
            )
            if after is not None:
                query = query.where(ApiTokenRow.id > after)
            rows = list((await session.execute(query)).scalars())
        page, more = split_page(rows, size)
        return [(r.id, _token(r, principal)) for r in page], more

    async def delete_token(self, principal: str, token_id: str) -> None:
        async with self._db.session() as session, session.begin():
            owner = await _load(session, principal)
            done = await session.execute(
                delete(ApiTokenRow).where(
                    ApiTokenRow.principal_id == owner.id, ApiTokenRow.uid == token_id
                )
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(
                    f"token {token_id!r} of principal {principal!r} not found",
                    reason="TOKEN_NOT_FOUND",
                    token=f"principals/{principal}/tokens/{token_id}",
                )
        self.changes.notify()

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal a token secret belongs to (with the token's id), or None when the
        secret is unknown, revoked or expired."""
        if not tokens.looks_like_token(secret):
            return None
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(ApiTokenRow, PrincipalRow)
                    .join(PrincipalRow, PrincipalRow.id == ApiTokenRow.principal_id)
                    .where(ApiTokenRow.secret_hash == tokens.secret_hash(secret))
                )
            ).first()
            if found is None:
                return None
            token, owner = found
            if token.expire_time is not None and token.expire_time <= utcnow():
                return None
            return _principal(owner, await _grants(session, owner.id), token.uid)

    # -- grants ----------------------------------------------------------------------
    async def put_grant(self, principal: str, repository_id: str, role: Role) -> Grant:
        """Grant `role` on a repository, replacing the principal's grant there."""
        async with self._db.serialized():
            async with self._db.session() as session, session.begin():
                owner = await _load(session, principal)
                repo = await load_repository(session, repository_id)
                row = (
                    await session.execute(
                        select(GrantRow).where(
                            GrantRow.principal_id == owner.id, GrantRow.repository_id == repo.id
                        )
                    )
                ).scalar_one_or_none()
                if row is None:
                    session.add(
                        GrantRow(principal_id=owner.id, repository_id=repo.id, role=role.value)
                    )
                else:
                    row.role = role.value
        self.changes.notify()
        return Grant(principal, repository_id, role)

    async def list_grants(self, principal: str) -> list[Grant]:
        found = await self.get_principal(principal)
        return [Grant(principal, repo, role) for repo, role in sorted(found.grants.items())]

    async def delete_grant(self, principal: str, repository_id: str) -> None:
        async with self._db.session() as session, session.begin():
            owner = await _load(session, principal)
            repo_pk = select(RepositoryRow.id).where(RepositoryRow.name == repository_id)
            done = await session.execute(
                delete(GrantRow).where(
                    GrantRow.principal_id == owner.id,
                    GrantRow.repository_id.in_(repo_pk.scalar_subquery()),
                )
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(
                    f"principal {principal!r} has no grant on repository {repository_id!r}",
                    reason="GRANT_NOT_FOUND",
                    grant=f"principals/{principal}/grants/{repository_id}",
                )
        self.changes.notify()

    # -- what a resource belongs to (for rules.py) -----------------------------------
    async def distribution_target(self, distribution_id: str) -> tuple[str, bool] | None:
        """(repository id, public) of a distribution, or None."""
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(RepositoryRow.name, DistributionRow.public)
                    .join(RepositoryRow, RepositoryRow.id == DistributionRow.repository_id)
                    .where(DistributionRow.name == distribution_id)
                )
            ).first()
        return None if row is None else (row[0], bool(row[1]))

    async def task_repository(self, task_uid: str) -> str | None:
        """The repository a task writes, or None."""
        async with self._db.session() as session:
            resource = await session.scalar(select(TaskRow.resource).where(TaskRow.uid == task_uid))
        if resource is None or not resource.startswith("repositories/"):
            return None
        return resource.removeprefix("repositories/")
