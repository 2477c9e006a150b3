"""The blob guard: garbage collection never deletes a blob object a task has just decided
to rely on.

A sync claims the rows of the blobs it needs and then asks storage which of them are
present, holding the guard *shared*; the collector deletes blob rows and their objects
holding it *exclusive*. So either the collector sees the claimed row (and keeps the object),
or the sync looks after the object is gone (and downloads it again). Neither can see the
other half-done, on one process or many: on PostgreSQL the guard is a session-level advisory
lock, on SQLite (one server process per database) an asyncio lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.db import Database

# Any constant, distinct from the migration lock's.
_GUARD_KEY = 0x6D6972726F7267


class BlobGuard:
    """Shared for claimers (syncs), exclusive for the collector."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._local = asyncio.Lock() if db.is_sqlite else None

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._hold("pg_advisory_lock_shared", "pg_advisory_unlock_shared"):
            yield

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._hold("pg_advisory_lock", "pg_advisory_unlock"):
            yield

    @contextlib.asynccontextmanager
    async def _hold(self, lock: str, unlock: str) -> AsyncIterator[None]:
        if self._local is not None:
            # Claims are short; letting them exclude each other too keeps this a plain lock.
            async with self._local:
                yield
            return
        async with self._db.connection() as conn:
            await conn.execute(select(getattr(func, lock)(_GUARD_KEY)))
            await conn.commit()  # the lock is the session's, not the transaction's
            try:
                yield
            finally:
                # Shielded: a pooled connection must never go back still holding the lock.
                await asyncio.shield(self._release(conn, unlock))

    @staticmethod
    async def _release(conn: AsyncConnection, unlock: str) -> None:
        try:
            await conn.execute(select(getattr(func, unlock)(_GUARD_KEY)))
            await conn.commit()
        except Exception:
            await conn.invalidate()  # closing the connection releases the lock too
