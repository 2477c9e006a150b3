"""Composition root: database, stores, storage, task runner, gRPC server, registry endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.access.bootstrap import bootstrap_admin
from server.access.interceptor import AccessInterceptor
from server.access.registry import RegistryAccess, RegistryTokens, new_signing_key
from server.access.store import AccessStore
from server.config import Limits, Settings
from server.domain.syncs import SYNC_KIND
from server.housekeeping.collect import GC_KIND, GarbageCollector
from server.housekeeping.repair import REPAIR_KIND, Repairer
from server.metrics import Refresher, serve_metrics, storage_usage
from server.private_files import private_dir, read_or_create, touch_private
from server.registry.accesslog import RegistryAccessLogger
from server.registry.app import build_registry_app
from server.registry.cache import ServingCache
from server.registry.connections import ConnectionGuard, GuardedSite, fit_to_descriptors
from server.registry.ondemand import PullThrough
from server.registry.push import Pusher
from server.services.access import AccessServicer
from server.services.content import ContentServicer
from server.services.distributions import DistributionServicer
from server.services.housekeeping import HousekeepingServicer
from server.services.logging import AccessLogInterceptor
from server.services.operations import ContentOperationServicer
from server.services.reflection import enable_reflection
from server.services.remotes import RemoteServicer
from server.services.repositories import RepositoryServicer
from server.services.schedules import ScheduleServicer
from server.services.sync import SyncServicer
from server.services.tasks import TaskServicer
from server.services.versions import VersionServicer
from server.storage import BlobFetcher, BlobStore, clear_stale, open_blob_store
from server.storage.sendfile import FileSender
from server.storage.uploads import Uploads
from server.store.availability import run_probe
from server.store.commits import VersionCommitter
from server.store.content import ContentStore
from server.store.content_queries import ContentQueries
from server.store.db import Database
from server.store.distributions import DistributionStore
from server.store.guard import BlobGuard
from server.store.operations import ContentOperations, stored_check
from server.store.orphans import OrphanStore
from server.store.processes import ProcessStore
from server.store.push import PushStore
from server.store.remotes import RemoteStore
from server.store.repair_queries import RepairQueries
from server.store.repositories import RepositoryStore
from server.store.schedules import ScheduleStore
from server.store.schema import utcnow
from server.store.sealing import SecretBox, finish_rotation, rotation_keys
from server.store.serving import ServingQueries
from server.store.tasks import HEARTBEAT_STALE_AFTER, TaskStore
from server.store.versions import VersionStore
from server.sync.engine import SyncEngine
from server.sync.hosts import Hosts
from server.tasks.events import TaskEvents
from server.tasks.liveness import is_dead_here, new_worker_id
from server.tasks.runner import TaskRunner
from server.tasks.scheduler import Scheduler

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
    schedules: ScheduleStore
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
    stack = contextlib.AsyncExitStack()
    try:
        await db.migrate()
        access = AccessStore(db)
        await bootstrap_admin(access, settings.admin_token_file)
        sender = FileSender(
            settings.limits.http_sendfile_threads, settings.limits.http_send_stall_timeout
        )
        stack.callback(sender.close)
        storage = await stack.enter_async_context(open_blob_store(settings.storage, sender))
        processes = ProcessStore(db)
        worker_id = new_worker_id()
        # Alone on the storage (SQLite, or no other live process on the PostgreSQL database),
        # every temporary is a dead process's leftover; beside live processes, only ones
        # untouched for a day are.
        alone = db.is_sqlite or not await processes.live_others(
            worker_id,
            utcnow() - HEARTBEAT_STALE_AFTER,
            lambda other: is_dead_here(other, worker_id),
        )
        await clear_stale(storage, 0.0 if alone else STALE_TEMP_SECONDS, time.time())
        fetcher = BlobFetcher(storage)
        secrets = SecretBox.from_file(settings.effective_secret_key_file)
        repositories, versions = RepositoryStore(db), VersionStore(db)
        remotes = RemoteStore(db, secrets)
        content = ContentStore(db)
        guard = BlobGuard(db)
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
            guard,
            backoff_base=settings.retry_backoff,
            limits=settings.limits,
        )
        tasks = TaskStore(db)
        events = TaskEvents()
        collector = GarbageCollector(OrphanStore(db), storage, guard)
        repairer = Repairer(
            RepairQueries(db), remotes, storage, fetcher, hosts, backoff_base=settings.retry_backoff
        )
        runner = TaskRunner(
            tasks,
            events,
            handlers={SYNC_KIND: engine.run, GC_KIND: collector.run, REPAIR_KIND: repairer.run},
            processes=processes,
            workers=settings.workers,
            worker_id=worker_id,
            # Only the embedded SQLite server is alone on its database: it may fail every
            # running task at start. With PostgreSQL other processes may be running tasks.
            fail_all_running_at_start=db.is_sqlite,
        )
        schedules = ScheduleStore(db)
        scheduler = Scheduler(schedules, runner, interval=settings.schedule_interval)
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
            schedules=schedules,
            access=access,
            registry_tokens=RegistryTokens(
                read_or_create(settings.registry_key_file, new_signing_key()),
                settings.registry_token_seconds,
            ),
            registry_host=settings.registry_address,
        )
        await runner.start()
        await scheduler.start()
        probe = asyncio.create_task(run_probe(db.probe, db.availability), name="db-probe")
        try:
            yield services
        finally:
            probe.cancel()
            await scheduler.stop()
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
    pb_grpc.add_HousekeepingServiceServicer_to_server(
        HousekeepingServicer(services.settings, services.tasks, services.versions, services.runner),
        server,
    )
    pb_grpc.add_ContentServiceServicer_to_server(
        ContentServicer(ContentQueries(services.db, services.storage)), server
    )
    pb_grpc.add_ScheduleServiceServicer_to_server(ScheduleServicer(services.schedules), server)
    pb_grpc.add_ContentOperationServiceServicer_to_server(
        ContentOperationServicer(services.operations), server
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


def access_interceptor(settings: Settings) -> AccessInterceptor:
    """The access interceptor of a gRPC server; `bind` it to the access store before start."""
    return AccessInterceptor(
        enabled=not settings.no_auth,
        trust_client_certificates=settings.tls_client_ca is not None,
    )


def new_grpc_server(limits: Limits, access: AccessInterceptor) -> grpc.aio.Server:
    """The gRPC server with the access log, access control and the connection limits;
    SO_REUSEPORT off.

    grpc turns SO_REUSEPORT on by default on Linux: a second server on the same port would
    then bind too and the kernel would split the calls between two databases at random.
    """
    return grpc.aio.server(
        interceptors=[AccessLogInterceptor(), access],
        options=[*grpc_options(limits), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=limits.grpc_max_concurrent_rpcs,
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


def registry_ssl(settings: Settings) -> ssl.SSLContext | None:
    """The registry port's TLS context (None: plaintext)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def bind_grpc(
    server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None = None
) -> int:
    """Listen on `address` (port 0 picks a free one), with TLS when `credentials` are given
    -> the port, or raise ListenError."""
    if why := _bind_error(*_split_address(address)):
        raise ListenError(f"cannot listen on {address} for gRPC: {why}")
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise ListenError(f"cannot listen on {address} for gRPC")
    return bound


def bind_registry(address: str, what: str = "the registry") -> socket.socket:
    """A listening socket for the registry endpoint (or the metrics endpoint), or ListenError
    (no SO_REUSEPORT)."""
    host, port = _split_address(address)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {address} for {what}: {why}") from None


async def start_grpc(services: Services, address: str) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server on `address` (port 0 picks a free one) -> (server, port)."""
    access = access_interceptor(services.settings)
    access.bind(services.access)
    server = new_grpc_server(services.settings.limits, access)
    port = bind_grpc(server, address, grpc_server_credentials(services.settings))
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
    serving = ServingCache(queries)
    settings = services.settings
    access = RegistryAccess(
        services.access, services.registry_tokens, serving.resolve, enabled=not settings.no_auth
    )
    # Pushes resolve uncached: whether a repository is a mirror, and what is staged in it,
    # must be read as of the request.
    pusher = Pusher(
        queries,
        Uploads(settings.data_dir / "uploads", services.storage),
        PushStore(services.db, services.content, services.committer, settings.upload_lifetime),
        services.operations,
        access,
    )
    app = build_registry_app(serving, services.storage, services.pull_through, access, pusher)
    runner = web.AppRunner(
        app,
        access_log_class=RegistryAccessLogger,
        keepalive_timeout=limits.http_keepalive_timeout,
    )
    await runner.setup()
    site = GuardedSite(runner, sock, ConnectionGuard(limits), ssl_context=registry_ssl(settings))
    await site.start()
    host, _ = _split_address(address)
    bound = sock.getsockname()[1]
    services.registry_host = f"{address.rpartition(':')[0] or host}:{bound}"
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
    """Run until SIGINT or SIGTERM, then stop accepting calls and shut down cleanly.

    Both addresses are bound before the database opens and the task runner starts, so a
    server that cannot listen (ListenError) has touched nothing, not even a queued task.
    """
    check_no_auth(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings = dataclasses.replace(settings, limits=fit_to_descriptors(settings.limits))
    access = access_interceptor(settings)
    server = new_grpc_server(settings.limits, access)
    bind_grpc(server, settings.grpc_address, grpc_server_credentials(settings))
    registry_socket = bind_registry(settings.registry_address)
    metrics_socket = None
    if settings.metrics_address:  # off unless asked for: metrics name repositories and hosts
        metrics_socket = bind_registry(settings.metrics_address, "metrics")
    async with build_services(settings) as services, contextlib.AsyncExitStack() as extras:
        access.bind(services.access)
        register_servicers(server, services)
        await server.start()
        registry, _ = await start_registry(services, settings.registry_address, registry_socket)
        if metrics_socket is not None:
            refresher = Refresher(
                services.tasks.count_by_state, lambda: storage_usage(services.storage)
            )
            await extras.enter_async_context(serve_metrics(metrics_socket, refresher))
            log.info("metrics on http://%s/metrics", settings.metrics_address)
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
