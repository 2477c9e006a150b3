"""Fixtures shared by every test: databases (SQLite and PostgreSQL), a real server on a free port.

PostgreSQL tests need `MIRROR_TEST_POSTGRES_URL` (an admin URL); `make test` sets it through
`scripts/with-postgres.sh`, which starts a throwaway cluster where none runs. Each test gets a
fresh database of its own, copied from a template migrated once per session.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from client.auth import read_token_file
from server.app import Services, build_services, start_grpc
from server.config import Settings
from server.store.db import MIGRATIONS, Database
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


# Migrated templates, made once per test session (see `fresh_database_url`): running the
# Alembic chain for each of ~1,000 server fixtures cost ~0.16 s apiece, minutes of the suite.
_TEMPLATES: dict[str, str] = {}


def _schema_fingerprint() -> str:
    """Changes whenever a migration does, so a template never outlives its schema."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


async def _sqlite_template() -> Path:
    if "sqlite" not in _TEMPLATES:
        directory = Path(tempfile.mkdtemp(prefix="mirror-test-template-"))
        path = directory / "template.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.dispose()  # the last connection checkpoints and removes the WAL
        _TEMPLATES["sqlite"] = str(path)
    return Path(_TEMPLATES["sqlite"])


async def _postgres_template(admin: asyncpg.Connection) -> str:
    if "postgres" not in _TEMPLATES:
        name = f"mirror_test_template_{_schema_fingerprint()}"
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # Built under a temporary name and renamed when complete: an interrupted run never
            # leaves a half-migrated template behind under the real name.
            building = f"{name}_{uuid.uuid4().hex[:6]}"
            await admin.execute(f'CREATE DATABASE "{building}"')
            url = make_url(POSTGRES_ADMIN_URL).set(
                drivername="postgresql+asyncpg", database=building
            )
            db = Database(url.render_as_string(hide_password=False))
            await db.migrate()
            await db.dispose()
            for stale in await admin.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'mirror_test_template_%'"
            ):
                if stale["datname"] != building:
                    await admin.execute(
                        f'DROP DATABASE IF EXISTS "{stale["datname"]}" WITH (FORCE)'
                    )
            await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        _TEMPLATES["postgres"] = name
    return _TEMPLATES["postgres"]


@contextlib.asynccontextmanager
async def fresh_database_url(
    kind: str, tmp_path: Path, *, migrated: bool = False
) -> AsyncIterator[str]:
    """A fresh database URL: SQLite in tmp_path, or a new PostgreSQL database. Empty, or with
    `migrated` a copy of one migrated to the newest revision (what a server's first start
    leaves before it writes any row; the server's own migrate step then finds nothing to do)."""
    if kind == "sqlite":
        path = tmp_path / "mirror.db"
        if migrated:
            shutil.copyfile(await _sqlite_template(), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if not POSTGRES_ADMIN_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MIRROR_TEST_POSTGRES_URL is not set; run the tests through `make test`")
        pytest.skip("MIRROR_TEST_POSTGRES_URL not set (make test sets it)")
    name = f"mirror_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL))
    try:
        template = f' TEMPLATE "{await _postgres_template(admin)}"' if migrated else ""
        await admin.execute(f'CREATE DATABASE "{name}"{template}')
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
    """A fresh database per test, migrated to the newest schema (see `fresh_database_url`)."""
    async with fresh_database_url(request.param, tmp_path, migrated=True) as url:
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
