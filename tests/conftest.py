"""Fixtures shared by every test: databases (SQLite and PostgreSQL), a real server on a free port.

PostgreSQL tests need `MIRROR_TEST_POSTGRES_URL` (an admin URL); `make test` sets it through
`scripts/with-postgres.sh`, which starts a throwaway cluster where none runs. Each test gets a
fresh database of its own.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from client.auth import read_token_file
from server.app import Services, build_services, start_grpc
from server.config import Settings
from tests.support.s3 import (
    FilesystemView,
    MotoServer,
    S3View,
    StorageView,
    credentials_env,
    moto_available,
)

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


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server on a free loopback port, one per test session (started on first use)."""
    if not moto_available():
        pytest.skip("moto[server] is not installed (scripts/test.sh installs the dev extras)")
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def storage_backend(request: pytest.FixtureRequest) -> str:
    """`fs` unless a test is parametrised indirectly (`tests.support.s3.STORAGE_BACKENDS`)."""
    return getattr(request, "param", "fs")


@pytest.fixture
def s3_bucket(storage_backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket on the session's moto server for S3 runs ("" for the filesystem),
    with the test credentials in the environment for the server under test."""
    if not storage_backend.startswith("s3"):
        yield ""
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    with credentials_env():
        yield moto.new_bucket()


@pytest.fixture
def settings(
    tmp_path: Path,
    database_url: str,
    storage_backend: str,
    s3_bucket: str,
    request: pytest.FixtureRequest,
) -> Settings:
    s3: dict[str, str] = {}
    if s3_bucket:
        moto: MotoServer = request.getfixturevalue("moto_server")
        s3 = {
            "storage_url": f"s3://{s3_bucket}/mirror",
            "s3_endpoint_url": moto.url,
            "s3_addressing": "path",
            "s3_serve": "stream" if storage_backend == "s3-stream" else "redirect",
        }
    return Settings(
        grpc_address="127.0.0.1:0",
        registry_address="127.0.0.1:0",
        data_dir=tmp_path / "data",
        database_url=database_url,
        workers=4,
        retry_backoff=0.01,  # real retries, tiny delays (regclient's test habit)
        **s3,  # type: ignore[arg-type]
    )


@pytest.fixture
def storage_view(settings: Settings, s3_bucket: str, request: pytest.FixtureRequest) -> StorageView:
    """The tests' window into the blob store under test (see tests/support/s3.py)."""
    if s3_bucket:
        return S3View(request.getfixturevalue("moto_server"), s3_bucket, "mirror/")
    return FilesystemView(settings.data_dir)


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
