"""Fixtures shared by every test: databases (SQLite and PostgreSQL), a real server on a free port.

PostgreSQL tests need `MIRROR_TEST_POSTGRES_URL` (an admin URL); `make test` sets it through
`scripts/with-postgres.sh`, which starts a throwaway cluster where none runs. Each test gets a
fresh database of its own.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from client.auth import read_token_file
from server.app import Services, build_services, start_grpc
from server.config import Settings

# The assertions of shared helpers report like those written in the test modules themselves.
pytest.register_assert_rewrite("tests.integration.api_helpers")

POSTGRES_ADMIN_URL = os.environ.get("MIRROR_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("CI") == "true" or os.environ.get("MIRROR_TEST_REQUIRE_POSTGRES")


def _asyncpg_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL: SQLite in tmp_path, or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"
        return
    if not POSTGRES_ADMIN_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MIRROR_TEST_POSTGRES_URL is not set; run the tests through `make test`")
        pytest.skip("MIRROR_TEST_POSTGRES_URL not set (make test sets it)")
    name = f"mirror_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL per test (see `fresh_database_url`)."""
    async with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        grpc_address="127.0.0.1:0",
        registry_address="127.0.0.1:0",
        data_dir=tmp_path / "data",
        database_url=database_url,
        workers=4,
        retry_backoff=0.01,  # real retries, tiny delays (regclient's test habit)
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with build_services(settings) as built:
        yield built


@pytest.fixture
def admin_token(services: Services) -> str:
    """The token of principal `admin`, as the server wrote it on first start; the fixtures'
    clients send it, so the suite runs with access control on, as users do."""
    return read_token_file(services.settings.admin_token_file)


@pytest.fixture
async def grpc_target(services: Services) -> AsyncIterator[str]:
    """`host:port` of a real gRPC server (all servicers, reflection, health) on a free port."""
    server, port = await start_grpc(services, "127.0.0.1:0")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
