"""The registry of server processes sharing a database: who is alive right now.

Each task runner registers its worker id at start (its first heartbeat), refreshes it from
its watchdog and removes itself at a clean stop. A process that finds no other live one may
treat every temporary upload in the shared storage as a dead process's leftover.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select, update

from server.store.db import Database
from server.store.schema import ProcessRow, utcnow


class ProcessStore:
    """Rows of `server_processes`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def heartbeat(self, worker_id: str) -> None:
        """Refresh our row (re-created if another process removed it as stale meanwhile,
        e.g. after a long database outage)."""
        async with self._db.session() as session, session.begin():
            result = await session.execute(
                update(ProcessRow)
                .where(ProcessRow.worker_id == worker_id)
                .values(heartbeat_time=utcnow())
            )
            if result.rowcount != 1:
                now = utcnow()
                session.add(ProcessRow(worker_id=worker_id, start_time=now, heartbeat_time=now))

    async def unregister(self, worker_id: str) -> None:
        async with self._db.session() as session, session.begin():
            await session.execute(delete(ProcessRow).where(ProcessRow.worker_id == worker_id))

    async def live_others(
        self, me: str, stale_before: datetime, is_dead: Callable[[str], bool]
    ) -> list[str]:
        """Other processes that may be alive; rows of provably dead or stale ones go."""
        async with self._db.session() as session, session.begin():
            rows = (await session.execute(select(ProcessRow))).scalars().all()
            gone = [
                r.worker_id
                for r in rows
                if r.worker_id != me and (r.heartbeat_time < stale_before or is_dead(r.worker_id))
            ]
            if gone:
                await session.execute(delete(ProcessRow).where(ProcessRow.worker_id.in_(gone)))
        return sorted(r.worker_id for r in rows if r.worker_id not in gone and r.worker_id != me)
