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
from tests.support.serverproc import ServerProcess

pytestmark = REGISTRY_MARKS

TRIALS = int(os.environ.get("MIRROR_CRASH_TRIALS", "20"))
SEED = int(os.environ.get("MIRROR_CRASH_SEED", str(int(time.time()))))
LAYERS = 3
LAYER_SIZE = 192 * 1024
UPSTREAM = "crash/app"
TERMINAL = {pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED}


@dataclass
class Report:
    """What the trials found, per backend and database."""

    trials: int = 0
    killed_running: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class FilesystemView:
    """The test's own look at the filesystem backend's data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.blobs = data_dir / "blobs"
        self.tmp = data_dir / "tmp"

    async def objects(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if self.blobs.exists():
            for path in self.blobs.rglob("*"):
                if path.is_file():
                    found[f"{path.parent.parent.name}:{path.name}"] = path.read_bytes()
        return found

    async def temporaries(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir()) if self.tmp.exists() else []


@pytest.fixture(scope="module")
def registry() -> AsyncIterator[RegistryProcess]:
    with RegistryProcess() as reg:
        yield reg


@pytest.fixture(scope="module")
def images(registry: RegistryProcess) -> list[img.Image]:
    """One distinct image per trial (plus the warm-up), so every trial downloads."""
    built = [
        img.make_image(f"crash-{i}", layers=LAYERS, layer_size=LAYER_SIZE)
        for i in range(TRIALS + 1)
    ]
    for i, image in enumerate(built):
        img.push_image_sync(registry.url, UPSTREAM, f"t{i}", image)
    return built


async def check_invariants(
    channel: grpc.aio.Channel, view: FilesystemView, repositories: list[str]
) -> list[str]:
    """Every violation of the crash invariants, as sentences."""
    problems: list[str] = []
    objects = await view.objects()
    for name, data in objects.items():
        algorithm, _, hex_ = name.partition(":")
        if hashlib.new(algorithm, data).hexdigest() != hex_:
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
                if digest.replace(":", ":", 1) not in objects:
                    problems.append(f"{version.name} holds {digest}, which is not stored")
    return problems


async def run_trials(
    database_url: str, tmp_path: Path, registry: RegistryProcess, images: list[img.Image]
) -> Report:
    rng = random.Random(SEED)
    report = Report()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    view = FilesystemView(data_dir)
    server = ServerProcess(data_dir, database_url)
    async with FaultProxy(registry.url) as proxy:
        # Stretch the download stage so kills land in every stage, not mostly the commit.
        proxy.slow("/blobs/", bytes_per_sec=4 * 1024 * 1024, method="GET")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.target) as channel:
                duration = await _warm_up(channel, proxy.url)
            repositories = ["warmup"]
            for i in range(1, TRIALS + 1):
                repo = f"crash-{i}"
                repositories.append(repo)
                async with grpc.aio.insecure_channel(server.target) as channel:
                    await _create(channel, repo, proxy.url, f"t{i}")
                    task = await _start_sync(channel, repo)
                    await asyncio.sleep(rng.uniform(0.0, duration * 0.9))
                server.kill()
                restart = time.monotonic()
                await server.start()
                report.restart_seconds.append(time.monotonic() - restart)
                report.trials += 1
                async with grpc.aio.insecure_channel(server.target) as channel:
                    tasks = pb_grpc.TaskServiceStub(channel)
                    ended = (await tasks.GetTask(pb.GetTaskRequest(name=task.name))).task
                    if ended.state == pb.TASK_STATE_FAILED:
                        report.killed_running += 1
                    elif ended.state != pb.TASK_STATE_COMPLETED:
                        report.violations.append(
                            f"trial {i}: killed task is {pb.TaskState.Name(ended.state)} "
                            "after the restart"
                        )
                    if left := await view.temporaries():
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


async def _create(channel: grpc.aio.Channel, name: str, url: str, tag: str) -> None:
    await pb_grpc.RepositoryServiceStub(channel).CreateRepository(
        pb.CreateRepositoryRequest(repository_id=name)
    )
    await pb_grpc.RemoteServiceStub(channel).CreateRemote(
        pb.CreateRemoteRequest(
            remote_id=name, remote=pb.Remote(url=url, upstream_name=UPSTREAM, include_tags=[tag])
        )
    )


async def _start_sync(channel: grpc.aio.Channel, name: str) -> pb.Task:
    response = await pb_grpc.SyncServiceStub(channel).StartSync(
        pb.StartSyncRequest(repository=f"repositories/{name}", remote=f"remotes/{name}")
    )
    return response.task


async def _sync(channel: grpc.aio.Channel, name: str) -> pb.Task:
    task = await _start_sync(channel, name)
    stub = pb_grpc.TaskServiceStub(channel)
    async with asyncio.timeout(60):
        while True:
            task = (await stub.GetTask(pb.GetTaskRequest(name=task.name))).task
            if task.state in TERMINAL:
                return task
            await asyncio.sleep(0.05)


async def _warm_up(channel: grpc.aio.Channel, url: str) -> float:
    """One full sync: how long a sync takes here (the range of the random kill times)."""
    await _create(channel, "warmup", url, "t0")
    started = time.monotonic()
    task = await _sync(channel, "warmup")
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_kill_during_sync_filesystem(
    kind: str, tmp_path: Path, registry: RegistryProcess, images: list[img.Image]
) -> None:
    async with fresh_database_url(kind, tmp_path) as url:
        report = await run_trials(url, tmp_path, registry, images)
    print(
        f"\ncrash test filesystem/{kind}: {report.trials} trials "
        f"({report.killed_running} killed mid-sync), {len(report.violations)} violations, "
        f"seed {SEED}, restarts {sum(report.restart_seconds):.1f} s"
    )
    assert report.trials == TRIALS
    assert report.violations == []
