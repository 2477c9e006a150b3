"""Normal-client latency while the server is under each attack of issue 10.

`.venv/bin/python -m benchmarks.hostile [--samples N]` starts the server in-process (SQLite, a
temporary data dir, real gRPC and registry ports on loopback), publishes one image synced from a
scripted upstream (`tests/support/hostile.py`), then for each attack class measures N gRPC
health checks and N manifest GETs of a normal client on 127.0.0.1 (a new connection each) and
prints p50 / p99 / max in milliseconds, with the count of failed normal calls. Attackers use
other loopback addresses (127.0.0.2, ...); nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.app import build_services, start_grpc, start_registry
from server.config import Settings
from tests.support import images as img
from tests.support.hostile import HostileUpstream
from tests.support.slowclient import SlowClients

HALF_HEADER = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"
HALF_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM"


@dataclasses.dataclass
class Target:
    grpc: str
    registry: str
    image: img.Image
    channel: grpc.aio.Channel


async def _sync(target: Target, name: str, url: str, upstream: str, **remote: object) -> pb.Task:
    stubs = (
        pb_grpc.RepositoryServiceStub(target.channel),
        pb_grpc.RemoteServiceStub(target.channel),
        pb_grpc.SyncServiceStub(target.channel),
    )
    await stubs[0].CreateRepository(pb.CreateRepositoryRequest(repository_id=name))
    await stubs[1].CreateRemote(
        pb.CreateRemoteRequest(
            remote_id=name,
            remote=pb.Remote(url=url, upstream_name=upstream, max_retries=0, **remote),  # type: ignore[arg-type]
        )
    )
    last = None
    request = pb.SyncRequest(repository=f"repositories/{name}", remote=f"remotes/{name}")
    async for event in stubs[2].Sync(request):
        last = event
    assert last is not None
    return last.task


async def _normal(target: Target, samples: int) -> tuple[list[float], int]:
    """Latencies (ms) of `samples` health checks and `samples` manifest GETs; failures."""
    times: list[float] = []
    failures = 0
    url = f"http://{target.registry}/v2/bench/app/manifests/v1"
    for _ in range(samples):
        started = time.perf_counter()
        try:
            async with grpc.aio.insecure_channel(target.grpc) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            times.append((time.perf_counter() - started) * 1000)
        except grpc.aio.AioRpcError:
            failures += 1
        started = time.perf_counter()
        try:
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    assert resp.status == 200
                    await resp.read()
            times.append((time.perf_counter() - started) * 1000)
        except (aiohttp.ClientError, TimeoutError, AssertionError):
            failures += 1
    return times, failures


def _report(name: str, times: list[float], failures: int) -> dict[str, object]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    row = {
        "attack": name,
        "calls": len(times) + failures,
        "failed": failures,
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p99_ms": round(p99, 2),
        "max_ms": round(ordered[-1], 2) if ordered else None,
    }
    print(json.dumps(row))
    return row


@asynccontextmanager
async def _slowloris(target: Target) -> AsyncIterator[None]:
    reg_port = int(target.registry.rsplit(":", 1)[1])
    grpc_port = int(target.grpc.rsplit(":", 1)[1])
    async with (
        SlowClients("127.0.0.1", reg_port, count=500, payload=HALF_HEADER),
        SlowClients("127.0.0.1", grpc_port, count=500, payload=HALF_PREFACE),
    ):
        yield


@asynccontextmanager
async def _background(work: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    task = asyncio.create_task(work())
    await asyncio.sleep(0.05)
    try:
        yield
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def main(samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            grpc_address="127.0.0.1:0",
            registry_address="127.0.0.1:0",
            data_dir=Path(tmp) / "data",
            workers=4,
            retry_backoff=0.01,
        )
        async with build_services(settings) as services, HostileUpstream() as up:
            grpc_server, grpc_port = await start_grpc(services, "127.0.0.1:0")
            runner, reg_port = await start_registry(services, "127.0.0.1:0")
            image = img.make_image("bench-hostile", layers=1, layer_size=1024)
            up.image("app", "v1", image.manifest, media_type=image.media_type, blobs=image.blobs)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                target = Target(f"127.0.0.1:{grpc_port}", f"127.0.0.1:{reg_port}", image, channel)
                await _sync(target, "bench", up.url, "app")
                await pb_grpc.DistributionServiceStub(channel).CreateDistribution(
                    pb.CreateDistributionRequest(
                        distribution_id="bench",
                        distribution=pb.Distribution(
                            base_path="bench/app", repository="repositories/bench"
                        ),
                    )
                )
                _report("none (baseline)", *await _normal(target, samples))
                async with _slowloris(target):
                    _report("slow-loris 500+500 connections", *await _normal(target, samples))

                tags = [f"{i % 997}-build-{i:06d}" for i in range(100_000)]
                up.json("/v2/many/tags/list", {"name": "many", "tags": tags})
                patterns = [f"nomatch{i}-*[0-9]?x" for i in range(256)]

                async def many() -> object:
                    return await _sync(target, "many", up.url, "many", include_tags=patterns)

                async with _background(many):
                    _report("100k-tag listing x 256 patterns", *await _normal(target, samples))

                deep = b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
                up.image("deep", "v1", deep, media_type=img.OCI_MANIFEST)

                async def hostile_syncs() -> object:
                    for n in range(1000):
                        await _sync(target, f"deep{n}", up.url, "deep", include_tags=["v1"])
                    return None

                async with _background(hostile_syncs):
                    _report("deep-JSON manifests, sync after sync", *await _normal(target, samples))
            await grpc_server.stop(None)
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    asyncio.run(main(parser.parse_args().samples))
