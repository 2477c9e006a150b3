"""`kill -9` of a real server process at random moments of syncs, then a restart.

After each restart: the killed sync is FAILED (or COMPLETED, when it had finished), no
version's closure has a missing or corrupt blob, no object under a final name fails to hash
to it, no temporary upload of the dead process is left, and the next sync completes. The
trials, violations and seed are printed (`-s`) so a failure can be replayed with
MIRROR_CRASH_SEED.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.conftest import fresh_database_url
from tests.integration.sync_helpers import REGISTRY_MARKS
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess
from tests.support.s3 import (
    CREDENTIALS,
    FilesystemView,
    MotoServer,
    S3View,
    StorageView,
    moto_available,
)
from tests.support.serverproc import ServerProcess

# Each trial restarts a real server process (a few seconds each on a loaded 2-core machine):
# the per-test timeout of the suite (120 s) is too short for 20 of them.
pytestmark = [*REGISTRY_MARKS, pytest.mark.timeout(900)]

TRIALS = int(os.environ.get("MIRROR_CRASH_TRIALS", "20"))
S3_TRIALS = int(os.environ.get("MIRROR_CRASH_S3_TRIALS", "5"))  # per database: 10 on S3
SEED = int(os.environ.get("MIRROR_CRASH_SEED", str(int(time.time()))))
SMALL_LAYER = 192 * 1024
BIG_LAYER = 9 * 1024 * 1024  # above the S3 part size: a multipart upload to interrupt
TERMINAL = {pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED}


@dataclass
class Report:
    """What the trials found, per backend and database."""

    trials: int = 0
    killed_running: int = 0
    killed_queued: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def registry() -> AsyncIterator[RegistryProcess]:
    with RegistryProcess() as reg:
        yield reg


_PUSHED: set[str] = set()


def upstream_for(registry: RegistryProcess, backend: str) -> str:
    """An upstream repository with one distinct image per trial (plus the warm-up), so every
    trial downloads. S3 images carry a layer above the part size (a multipart upload)."""
    upstream = f"crash/{backend}"
    if upstream not in _PUSHED:
        for i in range((TRIALS if backend == "fs" else S3_TRIALS) + 1):
            layers = [img.make_layer(f"crash-{backend}-{i}-small", SMALL_LAYER)]
            if backend == "s3":
                layers.append(img.make_layer(f"crash-{backend}-{i}-big", BIG_LAYER, files=1))
            else:
                layers.append(img.make_layer(f"crash-{backend}-{i}-more", SMALL_LAYER))
            image = img.make_image(f"crash-{backend}-{i}", layers=1, layer_size=SMALL_LAYER,
                                   shared_base=layers)  # fmt: skip
            with warnings.catch_warnings():
                # aiohttp warns that a 9 MiB bytes body may block its loop: a test upload.
                warnings.simplefilter("ignore", ResourceWarning)
                img.push_image_sync(registry.url, upstream, f"t{i}", image)
        _PUSHED.add(upstream)
    return upstream


async def check_invariants(
    channel: grpc.aio.Channel, view: StorageView, repositories: list[str]
) -> list[str]:
    """Every violation of the crash invariants, as sentences."""
    problems: list[str] = []
    objects = await asyncio.to_thread(view.digests)
    for name in objects:
        algorithm, _, hex_ = name.partition(":")
        data = await asyncio.to_thread(view.read, name)
        if data is None or hashlib.new(algorithm, data).hexdigest() != hex_:
            problems.append(f"object {name} does not hash to its name")
    versions = pb_grpc.VersionServiceStub(channel)
    content = pb_grpc.ContentServiceStub(channel)
    for repo in repositories:
        listed = await versions.ListVersions(
            pb.ListVersionsRequest(parent=f"repositories/{repo}", page_size=100)
        )
        for version in listed.versions:
            page = await content.ListContent(
                pb.ListContentRequest(
                    parent=version.name, content_type="container.blob", page_size=1000
                )
            )
            for unit in page.content:
                digest = unit.blob.digest
                if digest not in objects:
                    problems.append(f"{version.name} holds {digest}, which is not stored")
    return problems


async def run_trials(
    trials: int,
    server: ServerProcess,
    view: StorageView,
    registry: RegistryProcess,
    upstream: str,
) -> Report:
    rng = random.Random(SEED)
    report = Report()
    async with FaultProxy(registry.url) as proxy:
        # Stretch the download stage so kills land in every stage, not mostly the commit.
        proxy.slow("/blobs/", bytes_per_sec=4 * 1024 * 1024, method="GET")
        await server.start()
        try:
            async with server.channel() as channel:
                duration = await _warm_up(channel, proxy.url, upstream)
            repositories = ["warmup"]
            for i in range(1, trials + 1):
                repo = f"crash-{i}"
                repositories.append(repo)
                async with server.channel() as channel:
                    await _create(channel, repo, proxy.url, upstream, f"t{i}")
                    task = await _start_sync(channel, repo)
                    await asyncio.sleep(rng.uniform(0.0, duration * 0.9))
                killed_at = time.time()
                server.kill()
                restart = time.monotonic()
                await server.start()
                report.restart_seconds.append(time.monotonic() - restart)
                report.trials += 1
                async with server.channel() as channel:
                    tasks = pb_grpc.TaskServiceStub(channel)
                    ended = (await tasks.GetTask(pb.GetTaskRequest(name=task.name))).task
                    started = (
                        ended.start_time.ToNanoseconds() / 1e9
                        if ended.HasField("start_time")
                        else 0
                    )
                    if ended.state in (pb.TASK_STATE_QUEUED, pb.TASK_STATE_RUNNING) and (
                        not started or started > killed_at
                    ):
                        # Killed before any worker claimed it: the queue is durable and the
                        # new server runs it, to the end.
                        report.killed_queued += 1
                        ended = await _wait(channel, task)
                        if ended.state != pb.TASK_STATE_COMPLETED:
                            report.violations.append(f"trial {i}: queued task ended {ended.error}")
                    elif ended.state == pb.TASK_STATE_FAILED:
                        report.killed_running += 1
                    elif ended.state != pb.TASK_STATE_COMPLETED:
                        report.violations.append(
                            f"trial {i}: killed task is {pb.TaskState.Name(ended.state)} "
                            "after the restart"
                        )
                    if left := await asyncio.to_thread(view.temporaries):
                        report.violations.append(f"trial {i}: temporaries left: {left}")
                    report.violations += [
                        f"trial {i}: {p}"
                        for p in await check_invariants(channel, view, repositories)
                    ]
                    final = await _sync(channel, repo)
                    if final.state != pb.TASK_STATE_COMPLETED:
                        report.violations.append(f"trial {i}: next sync ended {final.error}")
                    report.violations += [
                        f"trial {i} (after the next sync): {p}"
                        for p in await check_invariants(channel, view, [repo])
                    ]
        finally:
            server.stop()
    return report


async def _create(channel: grpc.aio.Channel, name: str, url: str, upstream: str, tag: str) -> None:
    await pb_grpc.RepositoryServiceStub(channel).CreateRepository(
        pb.CreateRepositoryRequest(repository_id=name)
    )
    await pb_grpc.RemoteServiceStub(channel).CreateRemote(
        pb.CreateRemoteRequest(
            remote_id=name, remote=pb.Remote(url=url, upstream_name=upstream, include_tags=[tag])
        )
    )


async def _start_sync(channel: grpc.aio.Channel, name: str) -> pb.Task:
    response = await pb_grpc.SyncServiceStub(channel).StartSync(
        pb.StartSyncRequest(repository=f"repositories/{name}", remote=f"remotes/{name}")
    )
    return response.task


async def _sync(channel: grpc.aio.Channel, name: str) -> pb.Task:
    return await _wait(channel, await _start_sync(channel, name))


async def _wait(channel: grpc.aio.Channel, task: pb.Task) -> pb.Task:
    stub = pb_grpc.TaskServiceStub(channel)
    async with asyncio.timeout(60):
        while True:
            task = (await stub.GetTask(pb.GetTaskRequest(name=task.name))).task
            if task.state in TERMINAL:
                return task
            await asyncio.sleep(0.05)


async def _warm_up(channel: grpc.aio.Channel, url: str, upstream: str) -> float:
    """One full sync: how long a sync takes here (the range of the random kill times)."""
    await _create(channel, "warmup", url, upstream, "t0")
    started = time.monotonic()
    task = await _sync(channel, "warmup")
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("backend", ["fs", "s3"])
async def test_kill_during_sync(
    backend: str,
    kind: str,
    tmp_path: Path,
    registry: RegistryProcess,
    request: pytest.FixtureRequest,
) -> None:
    trials = TRIALS if backend == "fs" else S3_TRIALS
    upstream = await asyncio.to_thread(upstream_for, registry, backend)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    view: StorageView = FilesystemView(data_dir)
    env: dict[str, str] = {}
    if backend == "s3":
        if not moto_available():
            pytest.skip("moto[server] is not installed")
        moto: MotoServer = request.getfixturevalue("moto_server")
        bucket = moto.new_bucket()
        view = S3View(moto, bucket, "mirror/")
        env = {
            **CREDENTIALS,
            "MIRROR_STORAGE_URL": f"s3://{bucket}/mirror",
            "MIRROR_S3_ENDPOINT_URL": moto.url,
            "MIRROR_S3_ADDRESSING": "path",
        }
    async with fresh_database_url(kind, tmp_path) as url:
        server = ServerProcess(data_dir, url, env)
        report = await run_trials(trials, server, view, registry, upstream)
    print(
        f"\ncrash test {backend}/{kind}: {report.trials} trials "
        f"({report.killed_running} killed mid-sync, {report.killed_queued} before a worker "
        f"claimed them), {len(report.violations)} violations, "
        f"seed {SEED}, restarts {sum(report.restart_seconds):.1f} s"
    )
    assert report.trials == trials
    assert report.violations == []
