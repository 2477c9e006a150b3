"""Creating a repository version: one transaction, visible whole or not at all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from server.domain.errors import ContentCollected
from server.domain.plan import ContentKey, VersionPlan, plan_version
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG, Version
from server.store.db import Database
from server.store.membership import present_in, summary_of
from server.store.repositories import load_row
from server.store.schema import (
    BlobRow,
    ManifestRow,
    SignatureRow,
    TagRow,
    VersionRow,
    utcnow,
)
from server.store.schema import (
    RepositoryContentRow as RC,
)
from server.store.versions import to_domain

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


class VersionCommitter:
    """Writes new versions of repositories."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def commit(
        self,
        repository_id: str,
        upstream: UpstreamContent,
        *,
        mirror: bool,
        remote_pk: int | None,
    ) -> tuple[Version | None, VersionPlan]:
        """Create version N+1 if the content changes; always records mirror flag and remote."""
        async with self._db.serialized():
            async with self._db.session() as session, session.begin():
                repo = await load_row(session, repository_id, for_update=True)
                base = repo.latest_version
                rows = await session.execute(
                    select(RC.id, RC.content_type, RC.content_id).where(
                        RC.repository_id == repo.id, present_in(base)
                    )
                )
                membership = {(t, cid): rid for rid, t, cid in rows}
                present = frozenset(membership)
                tag_ids = [cid for t, cid in present if t == TAG]
                present_tags: dict[int, str] = {}
                for start in range(0, len(tag_ids), BATCH):
                    chunk = tag_ids[start : start + BATCH]
                    found = await session.execute(
                        select(TagRow.id, TagRow.name).where(TagRow.id.in_(chunk))
                    )
                    present_tags.update({pk: name for pk, name in found})
                plan = plan_version(
                    present, present_tags, upstream.keys, upstream.tag_names, mirror=mirror
                )
                repo.is_mirror = repo.is_mirror or mirror
                if remote_pk is not None:
                    repo.remote_id = remote_pk
                if not plan.changed:
                    return None, plan
                await self._check_still_there(session, plan.added)
                number = base + 1
                closing = sorted(membership[key] for key in plan.removed)
                for start in range(0, len(closing), BATCH):
                    await session.execute(
                        update(RC)
                        .where(and_(RC.id.in_(closing[start : start + BATCH])))
                        .values(version_removed=number)
                    )
                session.add_all(
                    RC(
                        repository_id=repo.id,
                        content_type=content_type,
                        content_id=content_id,
                        version_added=number,
                    )
                    for content_type, content_id in sorted(plan.added)
                )
                version = VersionRow(
                    repository_id=repo.id,
                    number=number,
                    base_number=base,
                    create_time=utcnow(),
                    summary=summary_of(present, plan.target),
                )
                session.add(version)
                repo.latest_version = number
                repo.update_time = version.create_time
        return to_domain(repository_id, version), plan

    async def _check_still_there(self, session: Any, added: Iterable[ContentKey]) -> None:
        """Every unit the new version adds still exists, and stays until this commits.

        Garbage collection deletes only units no version holds and no task used lately; a
        sync longer than its cutoff, or a collector on a host whose clock runs ahead, could
        still remove one between the sync's save and this commit. On PostgreSQL `FOR SHARE`
        holds the rows until the membership rows are in (the collector locks `FOR UPDATE`);
        on SQLite the process-wide `serialized()` lock does the same.
        """
        by_type: dict[str, list[int]] = {}
        for content_type, content_id in added:
            by_type.setdefault(content_type, []).append(content_id)
        for content_type, ids in by_type.items():
            row = UNIT_ROWS[content_type]
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                query = select(row.id).where(row.id.in_(chunk))
                if not self._db.is_sqlite:
                    query = query.with_for_update(read=True)
                found = set((await session.execute(query)).scalars())
                if len(found) != len(set(chunk)):
                    raise ContentCollected(
                        f"{len(set(chunk) - found)} {content_type} unit(s) this sync relied on "
                        "were garbage-collected while it ran; run the sync again",
                        contentType=content_type,
                    )
