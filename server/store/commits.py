"""Creating a repository version: one transaction, visible whole or not at all."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select, update

from server.domain.plan import ContentKey, VersionPlan, plan_version
from server.domain.resources import TAG, Version
from server.store.db import Database
from server.store.membership import present_in, summary_of
from server.store.repositories import load_row
from server.store.schema import (
    RepositoryContentRow as RC,
)
from server.store.schema import (
    TagRow,
    VersionRow,
    utcnow,
)
from server.store.versions import to_domain

BATCH = 500


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
                        remote_id=remote_pk,
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
