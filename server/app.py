"""Composition root: database, stores, storage, task runner, gRPC server, registry endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.access.bootstrap import bootstrap_admin
from server.access.interceptor import AccessInterceptor
from server.access.registry import RegistryAccess, RegistryTokens, new_signing_key
from server.access.store import AccessStore
from server.config import Settings
from server.private_files import private_dir, read_or_create, touch_private
from server.registry.app import ACCESS_LOG_FORMAT, build_registry_app
from server.registry.ondemand import PullThrough
from server.services.access import AccessServicer
from server.services.content import ContentServicer
from server.services.distributions import DistributionServicer
from server.services.logging import AccessLogInterceptor
from server.services.remotes import RemoteServicer
from server.services.repositories import RepositoryServicer
from server.services.sync import SyncServicer
from server.services.tasks import TaskServicer
from server.services.versions import VersionServicer
from server.storage.blobs import BlobStorage
from server.store.commits import VersionCommitter
from server.store.content import ContentStore
from server.store.content_queries import ContentQueries
from server.store.db import Database
from server.store.distributions import DistributionStore
from server.store.remotes import RemoteStore
from server.store.repositories import RepositoryStore
from server.store.sealing import SecretBox, finish_rotation, rotation_keys
from server.store.serving import ServingQueries
from server.store.tasks import TaskStore
from server.store.versions import VersionStore
from server.sync.engine import SYNC_KIND, SyncEngine
from server.sync.hosts import Hosts
from server.tasks.events import TaskEvents
from server.tasks.runner import TaskRunner

log = logging.getLogger(__name__)

SERVICE_NAMES = tuple(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())
SHUTDOWN_GRACE = 5.0
STALE_TEMP_SECONDS = 24 * 3600.0


@dataclass
class Services:
    """Everything the servicers need, built once per process."""

    settings: Settings
    db: Database
    repositories: RepositoryStore
    remotes: RemoteStore
    versions: VersionStore
    tasks: TaskStore
    events: TaskEvents
    runner: TaskRunner
    storage: BlobStorage
    content: ContentStore
    engine: SyncEngine
    distributions: DistributionStore
    pull_through: PullThrough
    access: AccessStore
    registry_tokens: RegistryTokens
    registry_host: str = ""
    """`host:port` of the registry endpoint once it listens (for `registry_path`)."""


@contextlib.asynccontextmanager
async def build_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the database (migrating it), start the task runner; close both on exit."""
    private_dir(settings.data_dir)
    if not settings.database_url:
        touch_private(settings.sqlite_path)  # 0600 before SQLite creates it (and its WAL)
    db = Database(settings.effective_database_url)
    try:
        await db.migrate()
        access = AccessStore(db)
        await bootstrap_admin(access, settings.admin_token_file)
        storage = BlobStorage(settings.data_dir)
        # Alone on the data dir (SQLite), every temp file is a crash's leftover; beside other
        # processes (PostgreSQL), only ones untouched for a day are.
        storage.clear_temp(0.0 if db.is_sqlite else STALE_TEMP_SECONDS)
        secrets = SecretBox.from_file(settings.effective_secret_key_file)
        repositories, versions = RepositoryStore(db), VersionStore(db)
        remotes = RemoteStore(db, secrets)
        content = ContentStore(db)
        hosts = Hosts()
        engine = SyncEngine(
            repositories,
            remotes,
            versions,
            content,
            VersionCommitter(db),
            storage,
            hosts,
            backoff_base=settings.retry_backoff,
        )
        tasks = TaskStore(db)
        events = TaskEvents()
        runner = TaskRunner(
            tasks,
            events,
            handlers={SYNC_KIND: engine.run},
            workers=settings.workers,
            # Only the embedded SQLite server is alone on its database: it may fail every
            # running task at start. With PostgreSQL other processes may be running tasks.
            fail_all_running_at_start=db.is_sqlite,
        )
        services = Services(
            settings=settings,
            db=db,
            repositories=repositories,
            remotes=remotes,
            versions=versions,
            tasks=tasks,
            events=events,
            runner=runner,
            storage=storage,
            content=content,
            engine=engine,
            distributions=DistributionStore(db),
            pull_through=PullThrough(remotes, storage, hosts),
            access=access,
            registry_tokens=RegistryTokens(
                read_or_create(settings.registry_key_file, new_signing_key()),
                settings.registry_token_seconds,
            ),
            registry_host=settings.registry_address,
        )
        await runner.start()
        try:
            yield services
        finally:
            await runner.stop()
            await services.pull_through.aclose()
    finally:
        await db.dispose()


def register_servicers(server: grpc.aio.Server, services: Services) -> None:
    """Add every servicer, reflection and health to `server` (tests use this too)."""
    pb_grpc.add_RepositoryServiceServicer_to_server(
        RepositoryServicer(services.repositories), server
    )
    pb_grpc.add_RemoteServiceServicer_to_server(RemoteServicer(services.remotes), server)
    pb_grpc.add_VersionServiceServicer_to_server(VersionServicer(services.versions), server)
    pb_grpc.add_TaskServiceServicer_to_server(
        TaskServicer(services.tasks, services.events, services.runner), server
    )
    pb_grpc.add_SyncServiceServicer_to_server(
        SyncServicer(
            services.repositories,
            services.remotes,
            services.tasks,
            services.events,
            services.runner,
        ),
        server,
    )
    pb_grpc.add_ContentServiceServicer_to_server(
        ContentServicer(ContentQueries(services.db, services.storage)), server
    )
    pb_grpc.add_DistributionServiceServicer_to_server(
        DistributionServicer(services.distributions, lambda: services.registry_host), server
    )
    pb_grpc.add_AccessServiceServicer_to_server(AccessServicer(services.access), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        # Set synchronously through the underlying map: the server is not started yet.
        health_servicer._server_status[name] = health_pb2.HealthCheckResponse.SERVING
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )


def grpc_server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings (None: plaintext); with a client CA, mTLS."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


async def start_grpc(services: Services, address: str) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server on `address` (port 0 picks a free one) -> (server, port)."""
    settings = services.settings
    access = AccessInterceptor(
        services.access,
        enabled=not settings.no_auth,
        trust_client_certificates=settings.tls_client_ca is not None,
    )
    server = grpc.aio.server(interceptors=[AccessLogInterceptor(), access])
    register_servicers(server, services)
    credentials = grpc_server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port


def registry_ssl(settings: Settings) -> ssl.SSLContext | None:
    """The registry port's TLS context (None: plaintext)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def start_registry(services: Services, address: str) -> tuple[web.AppRunner, int]:
    """Serve the OCI pull API on `address` (port 0 picks one) -> (runner, port)."""
    settings = services.settings
    access = RegistryAccess(services.access, services.registry_tokens, enabled=not settings.no_auth)
    app = build_registry_app(
        ServingQueries(services.db), services.storage, services.pull_through, access
    )
    runner = web.AppRunner(app, access_log_format=ACCESS_LOG_FORMAT)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(
        runner, host.strip("[]") or "0.0.0.0", int(port), ssl_context=registry_ssl(settings)
    )
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    services.registry_host = f"{host}:{bound}"
    return runner, bound


async def rotate_secret_key(settings: Settings) -> None:
    """Re-encrypt every stored secret with a new key (`mirror-server --rotate-secret-key`).

    The new key is written first in the key file, old keys after it, so every value stays
    readable at every step; once all are resealed (one transaction) only the new key stays.
    """
    path = settings.effective_secret_key_file
    box, new = rotation_keys(path)
    db = Database(settings.effective_database_url)
    try:
        await db.migrate()
        count = await RemoteStore(db, box).reseal_all(box)
    finally:
        await db.dispose()
    finish_rotation(path, new)
    log.warning("secrets key rotated: %d remotes re-encrypted; %s holds the new key", count, path)


def is_loopback(address: str) -> bool:
    """Whether `host:port` listens on a loopback address only."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_no_auth(settings: Settings) -> None:
    """`--no-auth` is for local experiments: refused when either port is reachable from
    another machine."""
    if not settings.no_auth:
        return
    exposed = [a for a in (settings.grpc_address, settings.registry_address) if not is_loopback(a)]
    if exposed:
        raise SystemExit(
            f"refusing --no-auth on non-loopback address {', '.join(exposed)}: "
            "without credentials anyone who reaches the port may do everything"
        )
    log.warning("--no-auth: every caller is admin, without credentials (loopback only)")


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop accepting calls and shut down cleanly."""
    check_no_auth(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with build_services(settings) as services:
        server, _port = await start_grpc(services, settings.grpc_address)
        registry, _ = await start_registry(services, settings.registry_address)
        log.info(
            "mirror serving gRPC on %s, registry on %s (database %s, data %s)",
            settings.grpc_address,
            services.registry_host,
            services.db.url.render_as_string(hide_password=True),
            settings.data_dir,
        )
        try:
            await stop.wait()
            log.info("shutting down")
        finally:
            await server.stop(SHUTDOWN_GRACE)
            await registry.cleanup()
