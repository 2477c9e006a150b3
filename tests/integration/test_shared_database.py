"""Two server processes on one PostgreSQL database and one storage root.

DESIGN.md promises that several servers may share a database: every task runs exactly once,
and one repository is written by one task at a time. Two full service stacks (task runner,
gRPC server) share the database here, each with its own worker id, as two processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import select

from client.auth import aio_interceptors, read_token_file
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.app import build_services, start_grpc
from server.config import Settings
from server.store.db import Database
from server.store.schema import TaskRow
from tests.support import images as img
from tests.support.registry import RegistryProcess, registry_available

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]

TERMINAL = {pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED}
REPOSITORIES = ("alpha", "beta", "gamma")


@contextlib.asynccontextmanager
async def server(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    """One service stack -> (gRPC target, its task runner's worker id). Both stacks share
    the data dir, so the admin token the first one wrote serves both."""
    async with build_services(settings) as services:
        grpc_server, port = await start_grpc(services, "127.0.0.1:0")
        try:
            yield f"127.0.0.1:{port}", services.runner.worker_id
        finally:
            await grpc_server.stop(None)


async def wait_all(stub: pb_grpc.TaskServiceStub, names: list[str]) -> list[pb.Task]:
    deadline = time.monotonic() + 60
    while True:
        tasks = [(await stub.GetTask(pb.GetTaskRequest(name=n))).task for n in names]
        if all(t.state in TERMINAL for t in tasks):
            return tasks
        assert time.monotonic() < deadline, [pb.TaskState.Name(t.state) for t in tasks]
        await asyncio.sleep(0.2)


# Several servers share a PostgreSQL database; a SQLite database has one server.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_servers_share_one_database(database_url: str, settings: Settings) -> None:
    registry = RegistryProcess()
    await registry.astart()
    try:
        for i, name in enumerate(REPOSITORIES):
            image = img.make_image(f"shared-{i}", layers=2, layer_size=32 * 1024)
            await img.push_image(registry.url, f"lib/{name}", "1.0", image)
        # Same database and storage root; one task at a time each, so while one server is
        # busy the other must take the queued work.
        one = dataclasses.replace(settings, workers=1)
        async with server(one) as (first, first_worker), server(one) as (second, _):
            token = read_token_file(settings.admin_token_file)
            async with (
                grpc.aio.insecure_channel(first, interceptors=aio_interceptors(token)) as a,
                grpc.aio.insecure_channel(second, interceptors=aio_interceptors(token)) as b,
            ):
                repos = pb_grpc.RepositoryServiceStub(a)
                remotes = pb_grpc.RemoteServiceStub(b)
                for name in REPOSITORIES:
                    await repos.CreateRepository(pb.CreateRepositoryRequest(repository_id=name))
                    await remotes.CreateRemote(
                        pb.CreateRemoteRequest(
                            remote_id=name,
                            remote=pb.Remote(url=registry.url, upstream_name=f"lib/{name}"),
                        )
                    )
                # Two syncs per repository, started alternately through both servers.
                names = []
                for round_ in range(2):
                    for i, name in enumerate(REPOSITORIES):
                        channel = (a, b)[(round_ + i) % 2]
                        started = await pb_grpc.SyncServiceStub(channel).StartSync(
                            pb.StartSyncRequest(
                                repository=f"repositories/{name}", remote=f"remotes/{name}"
                            )
                        )
                        names.append(started.task.name)
                tasks = await wait_all(pb_grpc.TaskServiceStub(a), names)

                assert [pb.TaskState.Name(t.state) for t in tasks] == ["TASK_STATE_COMPLETED"] * 6
                for name in REPOSITORIES:
                    mine = sorted(
                        (t for t in tasks if t.parameters["repository"] == f"repositories/{name}"),
                        key=lambda t: t.start_time.ToNanoseconds(),
                    )
                    # One task at a time per repository: the second started after the first ended.
                    assert mine[1].start_time.ToNanoseconds() >= mine[0].finish_time.ToNanoseconds()
                    # The first created version 1; the second found nothing new.
                    assert [list(t.created_resources) for t in mine] == [
                        [f"repositories/{name}/versions/1"],
                        [],
                    ]
                    versions = await pb_grpc.VersionServiceStub(b).ListVersions(
                        pb.ListVersionsRequest(parent=f"repositories/{name}")
                    )
                    assert [v.number for v in versions.versions] == [1, 0]
        # Each task ran on exactly one worker, and both servers took work from the queue.
        db = Database(database_url)
        try:
            async with db.session() as session:
                rows = (await session.execute(select(TaskRow.uid, TaskRow.worker))).all()
        finally:
            await db.dispose()
        assert len(rows) == 6 and all(worker for _, worker in rows)
        workers = {worker for _, worker in rows}
        assert first_worker in workers
        assert len(workers) == 2, workers
    finally:
        await registry.aclose()
