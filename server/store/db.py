"""Engine and session factory for SQLite (embedded default) or PostgreSQL, plus migrations.

One `AsyncSession` per task or request (SQLAlchemy asyncio docs); `expire_on_commit=False` so
rows read in a transaction can be mapped to domain types after it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.domain.errors import DatabaseUnavailable
from server.store.availability import Availability, is_unreachable

MIGRATIONS = Path(__file__).parent / "migrations"


class _NoStatementRecords(logging.Filter):
    """aiosqlite logs every call with its arguments at DEBUG: statements with their bound
    parameters, remote credentials included. Those records never leave the logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_SQLITE_LOG = logging.getLogger("aiosqlite")
if not any(isinstance(f, _NoStatementRecords) for f in _SQLITE_LOG.filters):
    _SQLITE_LOG.addFilter(_NoStatementRecords())


class Database:
    """The engine, its session factory and what differs between backends."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # Statement parameters include remote credentials: keep them out of error messages.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            # One writer at a time: wait for the lock rather than fail at once.
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._serial = asyncio.Lock() if self.is_sqlite else None
        self.availability = Availability(self.describe())

    def describe(self) -> str:
        """The database as an operator knows it, without credentials."""
        if self.is_sqlite:
            return f"SQLite database {self.url.database}"
        where = f"{self.url.host or 'localhost'}:{self.url.port or 5432}"
        return f"PostgreSQL database {self.url.database or ''} at {where}"

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """The domain error for a statement that failed because the database is unreachable
        (and the process-wide flag set, so health and the task runner know at once)."""
        self.availability.mark_down(exc)
        return DatabaseUnavailable(
            f"the {self.describe()} is unreachable; retry when it is back",
            database=self.describe(),
        )

    async def probe(self) -> None:
        """One round trip; raises whatever the driver raises when the database is away."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def serialized(self) -> AsyncIterator[None]:
        """Around read-check-write transactions on repository versions. PostgreSQL has row
        locks (FOR UPDATE) for them; SQLite has none, and its driver starts a transaction only
        at the first write, so such sequences take this process-wide lock there (a SQLite
        database has one server process)."""
        if self._serial is None:
            yield
            return
        async with self._serial:
            yield

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A new session; use as `async with db.session() as s, s.begin(): ...`.

        The one place driver errors meet the domain: a lost or refused connection leaves as
        `DatabaseUnavailable` (UNAVAILABLE, naming the database), never as a SQLAlchemy error.
        """
        try:
            async with self.sessions() as session:
                yield session
        except Exception as exc:
            if is_unreachable(exc):
                raise self.unavailable(exc) from exc
            raise

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A raw connection (for session-level locks), with the same error mapping."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except Exception as exc:
            if is_unreachable(exc):
                raise self.unavailable(exc) from exc
            raise

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


# Any constant: processes starting together on one PostgreSQL database migrate one at a time.
_MIGRATION_LOCK = 0x6D6972726F72


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
