"""Creating a repository version, from any source: one transaction, visible whole or not at all.

Every new version is "content added / removed on top of base version N" (`ContentChange`):
a sync, a manifest push or delete, a content operation. The committer locks the repository,
reads the base version's content, lets the caller compute the change against that snapshot
(`ChangeBuilder`, run inside the same transaction so no concurrent writer can slip between the
read and the write), plans the target (`plan_change`), writes only the membership rows that
differ from the latest version and records the version with its summary and origin. A failure
anywhere leaves no version; a change that changes nothing creates none.

The mirror rule lives here, the one place every version passes through: a repository becomes
a mirror when synced with `mirror=true`; a push or content operation into a mirror is refused
(FAILED_PRECONDITION `REPOSITORY_IS_MIRROR`) except a rollback, which restores a version that
itself came from a sync. `RepositoryStore.update(mirror=False)` turns it back on purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update

from server.domain.errors import ContentCollected, FailedPrecondition
from server.domain.plan import ContentChange, ContentKey, VersionPlan, plan_change
from server.domain.resources import (
    BLOB,
    MANIFEST,
    SIGNATURE,
    TAG,
    Version,
    VersionOrigin,
    VersionSource,
)
from server.store.db import Database
from server.store.membership import present_in, summary_of
from server.store.repositories import load_row
from server.store.schema import (
    BlobRow,
    ManifestRow,
    RepositoryRow,
    SignatureRow,
    TagRow,
    VersionRow,
    utcnow,
)
from server.store.schema import (
    RepositoryContentRow as RC,
)
from server.store.versions import not_found, to_domain

BATCH = 500
UNIT_ROWS: dict[str, Any] = {
    BLOB: BlobRow,
    MANIFEST: ManifestRow,
    TAG: TagRow,
    SIGNATURE: SignatureRow,
}


@dataclass(frozen=True, slots=True)
class UpstreamContent:
    """The content a sync found upstream, as global row ids, plus its tags' names."""

    keys: frozenset[ContentKey]
    tag_names: dict[int, str]


@dataclass(frozen=True, slots=True)
class BaseContent:
    """The base version a change is computed against, read inside the commit transaction."""

    session: Any
    repository_pk: int
    repository_id: str
    number: int
    keys: frozenset[ContentKey]
    tag_names: dict[int, str]


ChangeBuilder = Callable[[BaseContent], Awaitable[ContentChange]]


def mirror_refused(repository_id: str, what: str) -> FailedPrecondition:
    """The error of a write that would break a mirror's promise (also used by the registry)."""
    return FailedPrecondition(
        f"repositories/{repository_id} is a mirror: its versions come only from syncs of its "
        f"remote, so {what} is refused; an admin can make it a push repository with "
        "UpdateRepository(mirror=false)",
        reason="REPOSITORY_IS_MIRROR",
        repository=f"repositories/{repository_id}",
    )


class VersionCommitter:
    """Writes new versions of repositories, whatever their source."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def commit_sync(
        self,
        repository_id: str,
        upstream: UpstreamContent,
        *,
        mirror: bool,
        remote_pk: int | None,
        origin: VersionOrigin | None = None,
    ) -> tuple[Version | None, VersionPlan]:
        """A sync's version: exactly the upstream set (mirror) or added to the latest one.
        Always records the mirror flag and the remote, even when nothing changed."""

        async def mark(repo: RepositoryRow) -> None:
            repo.is_mirror = repo.is_mirror or mirror
            if remote_pk is not None:
                repo.remote_id = remote_pk

        return await self.commit(
            repository_id,
            ContentChange(add=upstream.keys, add_tag_names=upstream.tag_names, exact=mirror),
            origin=origin or VersionOrigin(VersionSource.SYNC),
            before=mark,
            content_remote=remote_pk,
        )

    async def commit(
        self,
        repository_id: str,
        change: ContentChange | ChangeBuilder,
        *,
        origin: VersionOrigin,
        base: int | None = None,
        allow_on_mirror: bool = False,
        before: Callable[[RepositoryRow], Awaitable[None]] | None = None,
        content_remote: int | None = None,
    ) -> tuple[Version | None, VersionPlan]:
        """Create version N+1 = `change` applied to version `base` (None: the latest).

        `content_remote` is recorded with each added unit as the remote it came from, so an
        ON_DEMAND layer keeps its source when the repository is re-pointed later."""
        async with self._db.serialized():
            async with self._db.session() as session, session.begin():
                repo = await load_row(session, repository_id, for_update=True)
                if (
                    origin.source in (VersionSource.PUSH, VersionSource.OPERATION)
                    and repo.is_mirror
                    and not allow_on_mirror
                ):
                    raise mirror_refused(repository_id, f"a {origin.source.value}")
                if before is not None:
                    await before(repo)
                latest = repo.latest_version
                rows = await session.execute(
                    select(RC.id, RC.content_type, RC.content_id).where(
                        RC.repository_id == repo.id, present_in(latest)
                    )
                )
                membership = {(t, cid): rid for rid, t, cid in rows}
                present = frozenset(membership)
                base_number = latest if base is None else base
                if base_number == latest:
                    base_keys = present
                else:
                    await self._check_version(session, repo, base_number)
                    rows = await session.execute(
                        select(RC.content_type, RC.content_id).where(
                            RC.repository_id == repo.id, present_in(base_number)
                        )
                    )
                    base_keys = frozenset((t, cid) for t, cid in rows)
                base_tags = await _tag_names(session, [cid for t, cid in base_keys if t == TAG])
                if not isinstance(change, ContentChange):
                    change = await change(
                        BaseContent(
                            session, repo.id, repository_id, base_number, base_keys, base_tags
                        )
                    )
                plan = plan_change(base_keys, base_tags, change)
                # What the database must change is relative to the latest version.
                added = plan.target - present
                removed = present - plan.target
                if not added and not removed:
                    return None, plan
                await _check_still_there(session, added, locking=not self._db.is_sqlite)
                number = latest + 1
                closing = sorted(membership[key] for key in removed)
                for start in range(0, len(closing), BATCH):
                    await session.execute(
                        update(RC)
                        .where(and_(RC.id.in_(closing[start : start + BATCH])))
                        .values(version_removed=number)
                    )
                # Set-based inserts, a batch at a time: a first sync of 10,000 tags adds ~18,000
                # memberships, which as ORM objects cost ~30 MiB and most of the commit's CPU.
                opening = sorted(added)
                for start in range(0, len(opening), BATCH):
                    await session.execute(
                        insert(RC),
                        [
                            {
                                "repository_id": repo.id,
                                "content_type": content_type,
                                "content_id": content_id,
                                "version_added": number,
                                "remote_id": content_remote,
                            }
                            for content_type, content_id in opening[start : start + BATCH]
                        ],
                    )
                version = VersionRow(
                    repository_id=repo.id,
                    number=number,
                    base_number=base_number,
                    create_time=utcnow(),
                    summary=summary_of(base_keys, plan.target),
                    source=origin.source.value,
                    principal=origin.principal,
                    detail=origin.detail,
                )
                session.add(version)
                repo.latest_version = number
                repo.update_time = version.create_time
        return to_domain(repository_id, version), plan

    async def latest(self, repository_id: str) -> Version:
        """The latest version of a repository (what an operation that changed nothing returns)."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            row = await session.scalar(
                select(VersionRow).where(
                    VersionRow.repository_id == repo.id, VersionRow.number == repo.latest_version
                )
            )
        assert row is not None
        return to_domain(repository_id, row)

    @staticmethod
    async def _check_version(session: Any, repo: RepositoryRow, number: int) -> None:
        found = await session.scalar(
            select(VersionRow.id).where(
                VersionRow.repository_id == repo.id, VersionRow.number == number
            )
        )
        if found is None:
            raise not_found(repo.name, number)


async def _check_still_there(session: Any, added: Iterable[ContentKey], *, locking: bool) -> None:
    """Every unit the new version adds still exists, and stays until this commits.

    Garbage collection deletes only units no version holds and no task used lately; a sync
    longer than its cutoff, or a collector on a host whose clock runs ahead, could still
    remove one between the sync's save and this commit. On PostgreSQL `FOR SHARE` holds the
    rows until the membership rows are in (the collector locks `FOR UPDATE`); on SQLite the
    process-wide `serialized()` lock does the same.
    """
    by_type: dict[str, list[int]] = {}
    for content_type, content_id in added:
        by_type.setdefault(content_type, []).append(content_id)
    for content_type, ids in by_type.items():
        row = UNIT_ROWS[content_type]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            query = select(row.id).where(row.id.in_(chunk))
            if locking:
                query = query.with_for_update(read=True)
            found = set((await session.execute(query)).scalars())
            if len(found) != len(set(chunk)):
                raise ContentCollected(
                    f"{len(set(chunk) - found)} {content_type} unit(s) this version adds "
                    "were garbage-collected meanwhile; run the task again",
                    contentType=content_type,
                )


async def _tag_names(session: Any, tag_ids: list[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for start in range(0, len(tag_ids), BATCH):
        found = await session.execute(
            select(TagRow.id, TagRow.name).where(TagRow.id.in_(tag_ids[start : start + BATCH]))
        )
        names.update({pk: name for pk, name in found})
    return names
