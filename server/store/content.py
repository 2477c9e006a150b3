"""Global content rows: blobs, manifests (exact bytes), tags; inserted once per digest.

Inserts use ON CONFLICT DO NOTHING so concurrent syncs that meet the same digest do not
fail each other; ids are read back by digest.

Every row a task writes or relies on gets `last_used` refreshed (see `schema.last_used_column`):
that is what keeps garbage collection away from content a running sync has found or saved
but not yet committed into a version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from server.domain.manifests import Descriptor, Manifest
from server.domain.plan import NaturalContent
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG
from server.store.db import Database
from server.store.membership import present_keys
from server.store.repositories import load_row
from server.store.schema import (
    BlobRow,
    ManifestBlobRow,
    ManifestChildRow,
    ManifestRow,
    SignatureRow,
    TagRow,
    utcnow,
)
from server.store.schema import RepositoryContentRow as RC

BATCH = 500  # rows per statement: stays under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest row as the engine needs it."""

    id: int
    digest: str
    media_type: str
    data: bytes


def _chunks(items: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """A signature to record: exact bytes and the manifest (row id) it signs."""

    digest: str
    name: str
    kind: str
    manifest_id: int
    data: bytes
    key_id: str = ""
    creator: str = ""
    timestamp: datetime | None = None


class ContentStore:
    """Reads and writes global content rows."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert

    async def _insert_ignore(self, session: Any, row_type: Any, rows: list[dict[str, Any]]) -> None:
        # One statement, many parameter sets (the driver's executemany): compiled once and
        # cached, where a multi-row VALUES clause was compiled afresh for every chunk.
        statement = self._insert(row_type.__table__).on_conflict_do_nothing()
        for chunk in _chunks(rows):
            await session.execute(statement, chunk)

    async def known_manifests(self, digests: Iterable[str]) -> dict[str, StoredManifest]:
        wanted = sorted(set(digests))
        found: dict[str, StoredManifest] = {}
        async with self._db.session() as session:
            for chunk in _chunks(wanted):
                rows = await session.execute(
                    select(
                        ManifestRow.id, ManifestRow.digest, ManifestRow.media_type, ManifestRow.data
                    ).where(ManifestRow.digest.in_(chunk))
                )
                for pk, digest, media_type, data in rows:
                    found[digest] = StoredManifest(pk, digest, media_type, data)
        if found:
            # The sync will reference these without fetching them again: mark them in use.
            async with self._db.session() as session, session.begin():
                await touch(session, ManifestRow, MANIFEST, [m.id for m in found.values()])
        return found

    async def present_content(self, repository_id: str) -> NaturalContent:
        """The latest version of a repository by natural keys (what a dry run compares to)."""
        async with self._db.session() as session:
            repo = await load_row(session, repository_id)
            keys = await present_keys(session, repo.id, repo.latest_version)
            ids: dict[str, list[int]] = {BLOB: [], MANIFEST: [], TAG: [], SIGNATURE: []}
            for content_type, pk in keys:
                ids.setdefault(content_type, []).append(pk)
            digests: dict[str, set[str]] = {}
            for content_type, row_type in (
                (BLOB, BlobRow),
                (MANIFEST, ManifestRow),
                (SIGNATURE, SignatureRow),
            ):
                found = digests.setdefault(content_type, set())
                for chunk in _chunks(sorted(ids[content_type])):
                    rows = await session.execute(
                        select(row_type.digest).where(row_type.id.in_(chunk))
                    )
                    found.update(d for (d,) in rows)
            tags: dict[str, str] = {}
            for chunk in _chunks(sorted(ids[TAG])):
                rows = await session.execute(
                    select(TagRow.name, ManifestRow.digest)
                    .join(ManifestRow, ManifestRow.id == TagRow.manifest_id)
                    .where(TagRow.id.in_(chunk))
                )
                tags.update({name: digest for name, digest in rows})
        return NaturalContent(
            tags=tags,
            manifests=frozenset(digests[MANIFEST]),
            blobs=frozenset(digests[BLOB]),
            signatures=frozenset(digests[SIGNATURE]),
        )

    async def claim_blobs(self, blobs: Iterable[Descriptor]) -> None:
        """Create (or mark in use) the rows of blobs a sync is about to rely on, before it
        looks at storage: from then on garbage collection keeps them and their files."""
        unique = {str(b.digest): b for b in blobs}
        if not unique:
            return
        now = utcnow()
        async with self._db.session() as session, session.begin():
            await self._insert_ignore(
                session,
                BlobRow,
                [
                    {"digest": d, "size": b.size, "media_type": b.media_type, "last_used": now}
                    for d, b in sorted(unique.items())
                ],
            )
            ids = await self._ids(session, BlobRow, set(unique))
            await touch(session, BlobRow, BLOB, list(ids.values()))

    async def blob_ids(self, digests: Iterable[str]) -> dict[str, int]:
        async with self._db.session() as session:
            return await self._ids(session, BlobRow, set(digests))

    async def manifest_ids(self, digests: Iterable[str]) -> dict[str, int]:
        async with self._db.session() as session:
            return await self._ids(session, ManifestRow, set(digests))

    async def save_manifests(self, manifests: list[Manifest]) -> dict[str, int]:
        """Insert manifests, the blobs they reference and their relations -> ids by digest."""
        if not manifests:
            return {}  # a re-sync that found nothing new: not even a transaction
        blobs: dict[str, Descriptor] = {}
        for manifest in manifests:
            for blob in manifest.blobs:
                blobs.setdefault(str(blob.digest), blob)
        now = utcnow()
        async with self._db.session() as session, session.begin():
            blob_rows = [
                {"digest": d, "size": b.size, "media_type": b.media_type, "last_used": now}
                for d, b in blobs.items()
            ]
            await self._insert_ignore(session, BlobRow, blob_rows)
            await self._insert_ignore(
                session,
                ManifestRow,
                [
                    {
                        "digest": str(m.digest),
                        "media_type": m.media_type,
                        "size": m.size,
                        "data": m.data,
                        "config_digest": str(m.config.digest) if m.config else "",
                        "artifact_type": m.artifact_type,
                        "subject_digest": str(m.subject) if m.subject else "",
                        "last_used": now,
                    }
                    for m in manifests
                ],
            )
            all_blob_digests = set(blobs)
            manifest_digests = {str(m.digest) for m in manifests} | {
                str(c.digest) for m in manifests for c in m.children
            }
            blob_ids = await self._ids(session, BlobRow, all_blob_digests)
            manifest_ids = await self._ids(session, ManifestRow, manifest_digests)
            await touch(session, BlobRow, BLOB, list(blob_ids.values()))
            await touch(session, ManifestRow, MANIFEST, list(manifest_ids.values()))
            links = [
                {
                    "manifest_id": manifest_ids[str(m.digest)],
                    "blob_id": blob_ids[str(b.digest)],
                    "size": b.size,
                    "media_type": b.media_type,
                }
                for m in manifests
                for b in m.blobs
            ]
            await self._insert_ignore(
                session, ManifestBlobRow, _unique(links, ("manifest_id", "blob_id"))
            )
            await self._link(session, manifests, manifest_ids)
        return {d: manifest_ids[d] for d in (str(m.digest) for m in manifests)}

    async def link_children(self, indexes: list[Manifest]) -> None:
        """Record index -> child links of stored indexes whose children are stored now (an
        index first synced through a platform filter gains its other children later)."""
        digests = {str(m.digest) for m in indexes} | {
            str(c.digest) for m in indexes for c in m.children
        }
        async with self._db.session() as session, session.begin():
            await self._link(session, indexes, await self._ids(session, ManifestRow, digests))

    async def _link(self, session: Any, manifests: list[Manifest], ids: dict[str, int]) -> None:
        children = [
            {
                "index_id": ids[str(m.digest)],
                "child_id": ids[str(c.digest)],
                "os": c.platform_os,
                "architecture": c.platform_architecture,
                "variant": c.platform_variant,
            }
            for m in manifests
            for c in m.children
            if str(c.digest) in ids and str(m.digest) in ids
        ]
        await self._insert_ignore(
            session, ManifestChildRow, _unique(children, ("index_id", "child_id"))
        )

    async def save_signatures(self, records: list[SignatureRecord]) -> list[int]:
        """Insert signatures (deduplicated by digest) -> their row ids."""
        if not records:
            return []
        async with self._db.session() as session, session.begin():
            await self._insert_ignore(
                session,
                SignatureRow,
                _unique(
                    [
                        {
                            "digest": r.digest,
                            "name": r.name,
                            "manifest_id": r.manifest_id,
                            "type": r.kind,
                            "key_id": r.key_id,
                            "timestamp": r.timestamp,
                            "creator": r.creator,
                            "data": r.data,
                            "last_used": utcnow(),
                        }
                        for r in records
                    ],
                    ("digest",),
                ),
            )
            ids = await self._ids(session, SignatureRow, {r.digest for r in records})
            await touch(session, SignatureRow, SIGNATURE, list(ids.values()))
        return sorted(ids.values())

    async def save_tags(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Insert tags (name -> manifest id) -> tag ids by (name, manifest id)."""
        if not pairs:
            return {}
        wanted = sorted(set(pairs))
        async with self._db.session() as session, session.begin():
            # Read first: on a re-sync nearly every tag exists, and a SELECT is cheaper than
            # an INSERT ... ON CONFLICT that writes nothing (on PostgreSQL it still locks).
            found = await self._tag_ids(session, wanted)
            missing = [pair for pair in wanted if pair not in found]
            if missing:
                now = utcnow()
                await self._insert_ignore(
                    session,
                    TagRow,
                    [{"name": n, "manifest_id": m, "last_used": now} for n, m in missing],
                )
                found.update(await self._tag_ids(session, missing))
            await touch(session, TagRow, TAG, list(found.values()))
        return found

    @staticmethod
    async def _tag_ids(session: Any, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        found: dict[tuple[str, int], int] = {}
        for chunk in _chunks(pairs):
            rows = await session.execute(
                select(TagRow.name, TagRow.manifest_id, TagRow.id).where(
                    tuple_(TagRow.name, TagRow.manifest_id).in_(chunk)
                )
            )
            found.update({(n, m): pk for n, m, pk in rows})
        return found

    @staticmethod
    async def _ids(session: Any, row_type: Any, digests: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(digests)):
            rows = await session.execute(
                select(row_type.digest, row_type.id).where(row_type.digest.in_(chunk))
            )
            found.update({digest: pk for digest, pk in rows})
        return found


async def touch(session: Any, row_type: Any, content_type: str, ids: list[int]) -> None:
    """Set `last_used` to now on those of `ids` that no repository holds: garbage collection
    keeps whatever was used since the oldest running task started, so a unit a sync found or
    saved but has not committed yet survives. Units some repository holds cannot be collected
    meanwhile (and the commit re-checks), so a re-sync writes no row here."""
    now = utcnow()
    held = exists().where(RC.content_type == content_type, RC.content_id == row_type.id)
    for chunk in _chunks(sorted(set(ids))):
        await session.execute(
            update(row_type)
            .where(row_type.id.in_(chunk), ~held)
            .values(last_used=now)
            .execution_options(synchronize_session=False)
        )


def _unique(rows: list[dict[str, Any]], key: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in (key or tuple(row))), row)
    return list(seen.values())
