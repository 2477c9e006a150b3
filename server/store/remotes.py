"""Remote rows <-> domain `Remote` (secrets included: the store is inside the trust boundary).

Secrets (`SECRET_FIELDS` and header values) are sealed on the way into a row and opened on
the way out (`sealing.py`): the database file never holds them in the clear.
"""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy import select

from server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from server.domain.resources import BLOB, Policy, Remote
from server.store.common import integrity_as, split_page
from server.store.db import Database
from server.store.schema import RemoteRow, TaskRow, utcnow
from server.store.schema import RepositoryContentRow as RC
from server.store.sealing import SecretBox

SECRET_FIELDS = ("password", "proxy_password", "ssl_client_key")

# Fields stored as-is (same name on the row and the domain type), secrets sealed.
_PLAIN = (
    "url",
    "upstream_name",
    "download_concurrency",
    "sigstore",
    "proxy_url",
    "proxy_username",
    "proxy_password",
    "ssl_ca_certificate",
    "ssl_client_certificate",
    "ssl_client_key",
    "ssl_validation",
    "username",
    "password",
    "connect_timeout",
    "sock_read_timeout",
    "total_timeout",
    "max_retries",
    "include_foreign_layers",
    "rate_limit",
    "signed_only",
)


def to_domain(row: RemoteRow, box: SecretBox) -> Remote:
    fields = {f: getattr(row, f) for f in _PLAIN}
    for f in SECRET_FIELDS:
        fields[f] = box.open(fields[f])
    return Remote(
        remote_id=row.name,
        uid=row.uid,
        policy=Policy(row.policy),
        include_tags=tuple(row.include_tags),
        exclude_tags=tuple(row.exclude_tags),
        headers=tuple(sorted((k, box.open(v)) for k, v in row.headers.items())),
        token_realm_allowlist=tuple(row.token_realm_allowlist),
        create_time=row.create_time,
        update_time=row.update_time,
        **fields,
    )


def _write(row: RemoteRow, remote: Remote, box: SecretBox) -> None:
    for f in _PLAIN:
        value = getattr(remote, f)
        setattr(row, f, box.seal(value) if f in SECRET_FIELDS else value)
    row.policy = remote.policy.value
    row.include_tags = list(remote.include_tags)
    row.exclude_tags = list(remote.exclude_tags)
    row.headers = {k: box.seal(v) for k, v in remote.headers}
    row.token_realm_allowlist = list(remote.token_realm_allowlist)


def not_found(remote_id: str) -> NotFound:
    return NotFound(
        f"remote {remote_id!r} not found", reason="REMOTE_NOT_FOUND", remote=f"remotes/{remote_id}"
    )


class RemoteStore:
    """Create, read, update and delete remotes."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    async def create(self, remote: Remote) -> Remote:
        now = utcnow()
        row = RemoteRow(
            uid=str(uuid.uuid4()), name=remote.remote_id, create_time=now, update_time=now
        )
        _write(row, remote, self._box)
        exists = AlreadyExists(
            f"remote {remote.remote_id!r} already exists",
            reason="REMOTE_EXISTS",
            remote=f"remotes/{remote.remote_id}",
        )
        with integrity_as(exists):
            async with self._db.session() as session, session.begin():
                session.add(row)
        return to_domain(row, self._box)

    async def get(self, remote_id: str) -> Remote:
        async with self._db.session() as session:
            row = await session.scalar(select(RemoteRow).where(RemoteRow.name == remote_id))
        if row is None or row.deleted:
            raise not_found(remote_id)
        return to_domain(row, self._box)

    async def get_by_pk(self, pk: int) -> Remote | None:
        async with self._db.session() as session:
            row = await session.get(RemoteRow, pk)
        return None if row is None else to_domain(row, self._box)

    async def pk_of(self, remote_id: str) -> int | None:
        """The row id of a remote (repositories remember the remote of their last sync)."""
        async with self._db.session() as session:
            return await session.scalar(
                select(RemoteRow.id).where(
                    RemoteRow.name == remote_id, RemoteRow.deleted.is_(False)
                )
            )

    async def list(self, size: int, after: str | None) -> tuple[list[Remote], bool]:
        query = (
            select(RemoteRow)
            .where(RemoteRow.deleted.is_(False))
            .order_by(RemoteRow.name)
            .limit(size + 1)
        )
        if after is not None:
            query = query.where(RemoteRow.name > after)
        async with self._db.session() as session:
            rows = list((await session.execute(query)).scalars())
        page, more = split_page(rows, size)
        return [to_domain(r, self._box) for r in page], more

    async def replace(self, remote: Remote) -> Remote:
        """Store `remote` (already merged and validated) over the row of the same id."""
        async with self._db.session() as session, session.begin():
            row = await session.scalar(
                select(RemoteRow).where(RemoteRow.name == remote.remote_id).with_for_update()
            )
            if row is None:
                raise not_found(remote.remote_id)
            _write(row, remote, self._box)
            row.update_time = utcnow()
        return to_domain(row, self._box)

    async def reseal_all(self, box: SecretBox) -> int:
        """Re-encrypt every remote's secrets with `box`'s first key (key rotation); how many
        remotes were rewritten. One transaction: all or nothing."""
        count = 0
        async with self._db.session() as session, session.begin():
            for row in (await session.execute(select(RemoteRow).with_for_update())).scalars():
                for f in SECRET_FIELDS:
                    setattr(row, f, box.reseal(getattr(row, f)))
                row.headers = {k: box.reseal(v) for k, v in row.headers.items()}
                count += 1
        return count

    async def delete(self, remote_id: str) -> None:
        async with self._db.session() as session, session.begin():
            row = await session.scalar(
                select(RemoteRow).where(RemoteRow.name == remote_id).with_for_update()
            )
            if row is None:
                raise not_found(remote_id)
            active = await session.execute(
                select(TaskRow.uid, TaskRow.parameters).where(
                    TaskRow.state.in_(("queued", "running"))
                )
            )
            for uid, params in active:
                if params.get("remote") == f"remotes/{remote_id}":
                    raise FailedPrecondition(
                        f"remote {remote_id!r} is used by the active task tasks/{uid}",
                        reason="REMOTE_IN_USE",
                        remote=f"remotes/{remote_id}",
                        task=f"tasks/{uid}",
                    )
            sourced = await session.scalar(
                select(RC.id).where(RC.remote_id == row.id, RC.content_type == BLOB).limit(1)
            )
            if sourced is None:
                await session.delete(row)
                return
            # Versions hold content this remote brought (layers an ON_DEMAND or STREAMED pull
            # still fetches from it): keep the row for them, out of the API's sight, under a
            # name that frees the user's one.
            row.deleted = True
            row.name = f"~deleted-{row.uid}"
            row.update_time = utcnow()


def merge(current: Remote, update: Remote, paths: list[str]) -> Remote:
    """`current` with the fields named in `paths` taken from `update`."""
    return dataclasses.replace(current, **{p: getattr(update, p) for p in paths})
