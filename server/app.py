"""Composition root: database, stores, storage, task runner, gRPC server, registry endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.config import Settings
from server.registry.app import ACCESS_LOG_FORMAT, build_registry_app
from server.registry.ondemand import PullThrough
from server.registry.push import OpenAccess, PushAccess, Pusher
from server.services.content import ContentServicer
from server.services.distributions import DistributionServicer
from server.services.logging import AccessLogInterceptor
from server.services.operations import ContentOperationServicer
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
from server.store.operations import ContentOperations, stored_check
from server.store.push import PushStore
from server.store.remotes import RemoteStore
from server.store.repositories import RepositoryStore
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
    committer: VersionCommitter
    operations: ContentOperations
    distributions: DistributionStore
    pull_through: PullThrough
    push_access: PushAccess = field(default_factory=OpenAccess)
    """Who may push through the registry endpoint (access control replaces the default)."""
    registry_host: str = ""
    """`host:port` of the registry endpoint once it listens (for `registry_path`)."""


@contextlib.asynccontextmanager
async def build_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the database (migrating it), start the task runner; close both on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        await db.migrate()
        storage = BlobStorage(settings.data_dir)
        # Alone on the data dir (SQLite), every temp file is a crash's leftover; beside other
        # processes (PostgreSQL), only ones untouched for a day are.
        storage.clear_temp(0.0 if db.is_sqlite else STALE_TEMP_SECONDS)
        repositories, remotes, versions = RepositoryStore(db), RemoteStore(db), VersionStore(db)
        content = ContentStore(db)
        hosts = Hosts()
        committer = VersionCommitter(db)
        engine = SyncEngine(
            repositories,
            remotes,
            versions,
            content,
            committer,
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
            committer=committer,
            operations=ContentOperations(committer, stored_check(storage.has)),
            distributions=DistributionStore(db),
            pull_through=PullThrough(remotes, storage, hosts),
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
    pb_grpc.add_ContentOperationServiceServicer_to_server(
        ContentOperationServicer(services.operations), server
    )
    pb_grpc.add_DistributionServiceServicer_to_server(
        DistributionServicer(services.distributions, lambda: services.registry_host), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        # Set synchronously through the underlying map: the server is not started yet.
        health_servicer._server_status[name] = health_pb2.HealthCheckResponse.SERVING
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )


async def start_grpc(services: Services, address: str) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server on `address` (port 0 picks a free one) -> (server, port)."""
    server = grpc.aio.server(interceptors=[AccessLogInterceptor()])
    register_servicers(server, services)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port


async def start_registry(services: Services, address: str) -> tuple[web.AppRunner, int]:
    """Serve the OCI pull API on `address` (port 0 picks one) -> (runner, port)."""
    serving = ServingQueries(services.db)
    pusher = Pusher(
        serving,
        services.storage,
        PushStore(
            services.db,
            services.content,
            services.committer,
            services.settings.upload_lifetime,
        ),
        services.operations,
        services.push_access,
    )
    app = build_registry_app(serving, services.storage, services.pull_through, pusher)
    runner = web.AppRunner(app, access_log_format=ACCESS_LOG_FORMAT)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port))
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    services.registry_host = f"{host}:{bound}"
    return runner, bound


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop accepting calls and shut down cleanly."""
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
