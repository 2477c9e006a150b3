"""Migration 0009 on a database main's 0007 made: staged blobs keyed by blob id are carried
over keyed by digest, and the schema then matches the ORM (a push stages and reads them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from server.store.db import Database, alembic_config
from server.store.schema import StagedBlobRow
from tests.conftest import fresh_database_url

DIGEST = "sha256:" + "ab" * 32


def _to(connection: Connection, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_0009_carries_staged_blobs_over_by_digest(kind: str, tmp_path: Path) -> None:
    async with fresh_database_url(kind, tmp_path) as url:
        db = Database(url)
        try:
            now = datetime(2026, 12, 1, tzinfo=UTC)
            async with db.engine.begin() as conn:
                await conn.run_sync(_to, "0006")
                await conn.execute(
                    text(
                        "INSERT INTO repositories (id, uid, name, description, retain_versions, "
                        "is_mirror, latest_version, create_time, update_time) "
                        "VALUES (1, 'u1', 'team', '', 0, false, 0, :now, :now)"
                    ),
                    {"now": now},
                )
                await conn.execute(
                    text(
                        "INSERT INTO blobs (id, digest, size, media_type) "
                        "VALUES (7, :digest, 42, 'application/octet-stream')"
                    ),
                    {"digest": DIGEST},
                )
                await conn.execute(
                    text(
                        "INSERT INTO staged_blobs (repository_id, blob_id, create_time) "
                        "VALUES (1, 7, :now)"
                    ),
                    {"now": now},
                )
            await db.migrate()
            async with db.session() as session:
                rows = (await session.execute(StagedBlobRow.__table__.select())).all()
            assert [(r.repository_id, r.digest, r.size) for r in rows] == [(1, DIGEST, 42)]
            # And back down and up again, without leftovers (names, triggers, indexes).
            async with db.engine.begin() as conn:
                await conn.run_sync(_to, "0006", down=True)
                await conn.run_sync(_to, "head")
        finally:
            await db.dispose()
