"""Prometheus metrics: the instruments, the `/metrics` endpoint and the periodic gauges.

Instruments live in the process-wide default registry; code that counts imports them from
here (one source of truth for names and labels). Every label set is bounded by something an
operator controls (RPC methods, registry routes, repositories, remote hosts) or by a fixed
table (status codes, request kinds): nothing a pull client sends becomes a label value
unchecked, so a scanner cannot grow the series without bound.

The endpoint is off unless `MIRROR_METRICS_ADDRESS` / `--metrics-address` is set: metrics
name repositories and upstream hosts, which not every network should see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from server.storage.base import BlobStore

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 10.0  # seconds between two refreshes of the database/storage gauges


RPC_REQUESTS = Counter(
    "mirror_rpc_requests", "gRPC calls by full method name and status code", ["method", "code"]
)
RPC_DURATION = Histogram(
    "mirror_rpc_duration_seconds", "gRPC call duration (streams: until they end)", ["method"]
)
TASKS = Gauge("mirror_tasks", "Tasks in the database by state", ["state"])
TASKS_FINISHED = Counter(
    "mirror_tasks_finished", "Tasks this process finished, by kind and state", ["kind", "state"]
)
SYNC_BYTES = Counter(
    "mirror_sync_downloaded_bytes", "Bytes of blobs downloaded by syncs", ["repository"]
)
SYNC_OBJECTS = Counter(
    "mirror_sync_downloaded_objects",
    "Objects fetched by syncs, by type (blob, manifest)",
    ["repository", "type"],
)
REGISTRY_REQUESTS = Counter(
    "mirror_registry_requests",
    "Registry (pull API) requests by route, method and status",
    ["route", "method", "status"],
)
REGISTRY_BYTES = Counter(
    "mirror_registry_response_bytes", "Body bytes sent by the registry, by route", ["route"]
)
REGISTRY_DURATION = Histogram(
    "mirror_registry_request_duration_seconds", "Registry request duration", ["route"]
)
UPSTREAM_REQUESTS = Counter(
    "mirror_upstream_requests",
    "Requests sent to upstream registries, by host and kind",
    ["host", "kind"],
)
UPSTREAM_RETRIES = Counter(
    "mirror_upstream_retries", "Retried upstream requests, by host and reason", ["host", "reason"]
)
STORAGE_BYTES = Gauge("mirror_storage_used_bytes", "Bytes of blobs in storage")
STORAGE_BLOBS = Gauge("mirror_storage_blobs", "Blobs in storage")

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def http_method_label(method: str) -> str:
    """A client-chosen method as a bounded label value."""
    return method if method in HTTP_METHODS else "OTHER"


async def storage_usage(store: BlobStore) -> tuple[int, int]:
    """(blob count, bytes) of a blob store, whatever its backend."""
    count = size = 0
    async for stat in store.iterate():
        count += 1
        size += stat.size
    return count, size


class Refresher:
    """Refreshes the gauges read from the database and the disk when `/metrics` is scraped,
    at most once per REFRESH_INTERVAL (a scrape storm costs one count and one disk walk)."""

    def __init__(
        self,
        task_counts: Callable[[], Awaitable[dict[str, int]]],
        usage: Callable[[], Awaitable[tuple[int, int]]],
    ) -> None:
        self._task_counts = task_counts
        self._usage = usage
        self._lock = asyncio.Lock()
        self._last = -REFRESH_INTERVAL

    async def refresh(self) -> None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if now - self._last < REFRESH_INTERVAL:
                return
            self._last = now
            try:
                counts = await self._task_counts()
                TASKS.clear()
                for state, value in counts.items():
                    TASKS.labels(state).set(value)
                blobs, used = await self._usage()
                STORAGE_BLOBS.set(blobs)
                STORAGE_BYTES.set(used)
            except Exception as exc:  # a scrape still answers, with the last values
                log.warning("refreshing the database and storage gauges failed: %s", exc)


REFRESHER = web.AppKey("refresher", Refresher)


async def _metrics(request: web.Request) -> web.Response:
    await request.app[REFRESHER].refresh()
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@contextlib.asynccontextmanager
async def serve_metrics(sock: socket.socket, refresher: Refresher) -> AsyncIterator[None]:
    """Serve `/metrics` on a bound socket for the life of the block."""
    app = web.Application()
    app[REFRESHER] = refresher
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield
    finally:
        await runner.cleanup()
