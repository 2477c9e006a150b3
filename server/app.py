"""Composition root: database, stores, storage, task runner, gRPC server, registry endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.config import Limits, Settings
from server.registry.accesslog import RegistryAccessLogger
from server.registry.app import build_registry_app
from server.registry.cache import ServingCache
from server.registry.connections import ConnectionGuard, GuardedSite, fit_to_descriptors
from server.registry.ondemand import PullThrough
from server.registry.push import OpenAccess, PushAccess, Pusher
from server.services.content import ContentServicer
from server.services.distributions import DistributionServicer
from server.services.logging import AccessLogInterceptor
from server.services.operations import ContentOperationServicer
from server.services.reflection import enable_reflection
from server.services.remotes import RemoteServicer
from server.services.repositories import RepositoryServicer
from server.services.sync import SyncServicer
from server.services.tasks import TaskServicer
from server.services.versions import VersionServicer
from server.storage import BlobFetcher, BlobStore, clear_stale, open_blob_store
from server.storage.uploads import Uploads
from server.store.availability import run_probe
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
    storage: BlobStore
    fetcher: BlobFetcher
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
    stack = contextlib.AsyncExitStack()
    try:
        await db.migrate()
        storage = await stack.enter_async_context(open_blob_store(settings.storage))
        # Alone on the storage (SQLite), every temporary is a crash's leftover; beside other
        # processes (PostgreSQL), only ones untouched for a day are.
        await clear_stale(storage, 0.0 if db.is_sqlite else STALE_TEMP_SECONDS, time.time())
        fetcher = BlobFetcher(storage)
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
            fetcher,
            hosts,
            backoff_base=settings.retry_backoff,
            limits=settings.limits,
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
            fetcher=fetcher,
            content=content,
            engine=engine,
            committer=committer,
            operations=ContentOperations(committer, stored_check(storage.stat_many)),
            distributions=DistributionStore(db),
            pull_through=PullThrough(remotes, fetcher, hosts, settings.limits),
            registry_host=settings.registry_address,
        )
        await runner.start()
        probe = asyncio.create_task(run_probe(db.probe, db.availability), name="db-probe")
        try:
            yield services
        finally:
            probe.cancel()
            await runner.stop()
            await services.pull_through.aclose()
            await fetcher.aclose()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
    finally:
        await stack.aclose()
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

    async def follow_database(up: bool) -> None:
        # Every service needs the database: NOT_SERVING while it is away, so load balancers
        # and orchestrators stop sending calls that can only answer UNAVAILABLE.
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if up
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, status)

    services.db.availability.subscribe(follow_database)
    enable_reflection((*SERVICE_NAMES, health.SERVICE_NAME), server)


def grpc_options(limits: Limits) -> list[tuple[str, int]]:
    """gRPC core channel arguments of the server's connection hygiene (see `Limits`)."""
    return [
        ("grpc.max_allowed_incoming_connections", limits.grpc_max_connections),
        ("grpc.server_handshake_timeout_ms", int(limits.grpc_handshake_timeout * 1000)),
        ("grpc.max_concurrent_streams", limits.grpc_max_concurrent_streams),
        ("grpc.max_receive_message_length", limits.grpc_max_receive_bytes),
        ("grpc.max_send_message_length", limits.grpc_max_send_bytes),
        # Keepalive enforcement: pings closer than this without calls are strikes; two
        # strikes end the connection (GOAWAY ENHANCE_YOUR_CALM).
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            int(limits.grpc_keepalive_min_ping_interval * 1000),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.max_connection_idle_ms", int(limits.grpc_max_connection_idle * 1000)),
        # The server pings idle clients so dead peers do not hold connections forever.
        ("grpc.keepalive_time_ms", 2 * 3600 * 1000),
        ("grpc.keepalive_timeout_ms", 20 * 1000),
    ]


class ListenError(Exception):
    """An address cannot be listened on: taken by another process, not local, or forbidden."""


def _bind_error(host: str, port: int) -> str | None:
    """Why a listener on (host, port) cannot be had, e.g. 'Address already in use'; or None.

    One plain bind (no SO_REUSEPORT) before grpc's: grpc's own failure says only that
    binding failed, after logging a multi-line core error to stderr.
    """
    if port == 0:
        return None
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):
            return None
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else str(exc)


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ListenError(f"{address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def new_grpc_server(limits: Limits) -> grpc.aio.Server:
    """The gRPC server with the access log and the connection limits; SO_REUSEPORT off.

    grpc turns SO_REUSEPORT on by default on Linux: a second server on the same port would
    then bind too and the kernel would split the calls between two databases at random.
    """
    return grpc.aio.server(
        interceptors=[AccessLogInterceptor()],
        options=[*grpc_options(limits), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=limits.grpc_max_concurrent_rpcs,
    )


def bind_grpc(server: grpc.aio.Server, address: str) -> int:
    """Listen on `address` (port 0 picks a free one) -> the port, or raise ListenError."""
    if why := _bind_error(*_split_address(address)):
        raise ListenError(f"cannot listen on {address} for gRPC: {why}")
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise ListenError(f"cannot listen on {address} for gRPC")
    return bound


def bind_registry(address: str) -> socket.socket:
    """A listening socket for the registry endpoint, or ListenError (no SO_REUSEPORT)."""
    host, port = _split_address(address)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {address} for the registry: {why}") from None


async def start_grpc(services: Services, address: str) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server on `address` (port 0 picks a free one) -> (server, port)."""
    server = new_grpc_server(services.settings.limits)
    port = bind_grpc(server, address)
    register_servicers(server, services)
    await server.start()
    return server, port


async def start_registry(
    services: Services, address: str, sock: socket.socket | None = None
) -> tuple[web.AppRunner, int]:
    """Serve the OCI API on `sock`, or on `address` (port 0 picks one) -> (runner, port)."""
    limits = services.settings.limits
    if sock is None:
        sock = bind_registry(address)
    queries = ServingQueries(services.db)
    # Pushes resolve uncached: whether a repository is a mirror, and what is staged in it,
    # must be read as of the request.
    pusher = Pusher(
        queries,
        Uploads(services.settings.data_dir / "uploads", services.storage),
        PushStore(
            services.db,
            services.content,
            services.committer,
            services.settings.upload_lifetime,
        ),
        services.operations,
        services.push_access,
    )
    app = build_registry_app(ServingCache(queries), services.storage, services.pull_through, pusher)
    runner = web.AppRunner(
        app,
        access_log_class=RegistryAccessLogger,
        keepalive_timeout=limits.http_keepalive_timeout,
    )
    await runner.setup()
    site = GuardedSite(runner, sock, ConnectionGuard(limits))
    await site.start()
    host, _ = _split_address(address)
    bound = sock.getsockname()[1]
    services.registry_host = f"{address.rpartition(':')[0] or host}:{bound}"
    return runner, bound


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop accepting calls and shut down cleanly.

    Both addresses are bound before the database opens and the task runner starts, so a
    server that cannot listen (ListenError) has touched nothing, not even a queued task.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings = dataclasses.replace(settings, limits=fit_to_descriptors(settings.limits))
    server = new_grpc_server(settings.limits)
    bind_grpc(server, settings.grpc_address)
    registry_socket = bind_registry(settings.registry_address)
    async with build_services(settings) as services:
        register_servicers(server, services)
        await server.start()
        registry, _ = await start_registry(services, settings.registry_address, registry_socket)
        log.info(
            "mirror serving gRPC on %s, registry on %s (database %s, blobs in %s)",
            settings.grpc_address,
            services.registry_host,
            services.db.url.render_as_string(hide_password=True),
            services.storage.name,
        )
        try:
            await stop.wait()
            log.info("shutting down")
        finally:
            await server.stop(SHUTDOWN_GRACE)
            await registry.cleanup()
