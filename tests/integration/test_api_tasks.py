"""TaskService (and SyncService.StartSync) acceptance tests against the real server.

Syncs run against upstreams that cannot succeed, so no registry is needed:

* a *dead* remote on a loopback port nothing listens on, with ``max_retries=0``: the task
  fails within milliseconds;
* a *hanging* remote on a loopback socket that accepts connections and never answers: the
  task stays RUNNING until it is cancelled, which lets a second task on the same repository
  stay QUEUED deterministically.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from client import AsyncMirrorClient, MirrorClientError
from protos import mirror_pb2 as pb
from tests.integration.api_helpers import dead_url, fails, when

FINAL = (pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED)


@pytest.fixture
async def hanging_url() -> AsyncIterator[str]:
    """An http URL whose server accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def watch_to_end(client: AsyncMirrorClient, name: str) -> list[pb.WatchTaskResponse]:
    """Every event of a task until its stream ends."""
    async with asyncio.timeout(30):
        return [event async for event in client.watch_task(name)]


async def wait_for_state(client: AsyncMirrorClient, name: str, state: int) -> pb.Task:
    async with asyncio.timeout(15):
        while (task := await client.get_task(name)).state != state:
            assert task.state not in FINAL, task
            await asyncio.sleep(0.02)
    return task


async def test_failed_sync_task_get_watch_list_cancel(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_remote("dead", dead_url(), "library/hello-world", max_retries=0)

        queued = await client.start_sync("codzo", "dead")
        assert queued.name.startswith("tasks/")
        task_id = queued.name.removeprefix("tasks/")
        assert str(uuid.UUID(task_id)) == task_id
        assert queued.kind == "sync"
        assert queued.state == pb.TASK_STATE_QUEUED
        assert queued.parameters["repository"] == "repositories/codzo"
        assert queued.parameters["remote"] == "remotes/dead"
        assert list(queued.reserved_resources) == ["repositories/codzo"]
        when(queued.create_time)

        # The task may fail before the watch starts: then its one event is the snapshot.
        events = await watch_to_end(client, queued.name)
        assert events, "the stream ended without any event"
        assert events[0].kind == pb.TASK_EVENT_KIND_SNAPSHOT
        if len(events) > 1:
            assert events[-1].kind == pb.TASK_EVENT_KIND_FINISHED
        assert [e.kind for e in events[1:-1]].count(pb.TASK_EVENT_KIND_FINISHED) == 0
        assert all(e.task.name == queued.name for e in events)
        final = events[-1].task
        assert final.state == pb.TASK_STATE_FAILED
        assert final.HasField("error")
        assert final.error.code and final.error.reason and final.error.message
        assert list(final.created_resources) == []

        got = await client.get_task(queued.name)
        assert got.state == pb.TASK_STATE_FAILED
        assert got.error == final.error
        assert when(got.create_time) <= when(got.start_time) <= when(got.finish_time)
        assert got.parameters == queued.parameters
        assert await client.get_task(task_id) == got  # bare uuid accepted by the client

        # A watcher of a finished task gets one event and the end of the stream.
        late = await watch_to_end(client, queued.name)
        assert len(late) == 1
        assert late[0].task.state == pb.TASK_STATE_FAILED

        listed = await client.list_tasks()
        assert [t.name for t in listed.tasks] == [queued.name]
        assert listed.tasks[0] == got

        err = await fails(
            client.cancel_task(queued.name), grpc.StatusCode.FAILED_PRECONDITION, "TASK_FINISHED"
        )
        assert err.metadata.get("task") == queued.name
        assert (await client.get_task(queued.name)).state == pb.TASK_STATE_FAILED

        # A failed sync creates no version.
        repo = await client.get_repository("codzo")
        assert repo.latest_version == "repositories/codzo/versions/0"


async def test_list_tasks_order_filters_and_pages(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("one")
        await client.create_repository("two")
        await client.create_remote("dead", dead_url(), "library/hello-world", max_retries=0)
        started = []
        for repository in ("one", "two", "one"):
            task = await client.start_sync(repository, "dead")
            await watch_to_end(client, task.name)
            started.append(task.name)
        newest_first = list(reversed(started))

        listed = await client.list_tasks()
        assert [t.name for t in listed.tasks] == newest_first
        stamps = [when(t.create_time) for t in listed.tasks]
        assert stamps == sorted(stamps, reverse=True)

        one = await client.list_tasks(reserved_resource="repositories/one")
        assert [t.name for t in one.tasks] == [started[2], started[0]]
        failed = await client.list_tasks(state="failed")
        assert [t.name for t in failed.tasks] == newest_first
        assert list((await client.list_tasks(state="running")).tasks) == []
        assert list((await client.list_tasks(state="queued")).tasks) == []

        page1 = await client.list_tasks(page_size=2)
        assert [t.name for t in page1.tasks] == newest_first[:2]
        assert page1.next_page_token
        page2 = await client.list_tasks(page_size=2, page_token=page1.next_page_token)
        assert [t.name for t in page2.tasks] == newest_first[2:]
        assert page2.next_page_token == ""
        # Another page size is fine; other filters are not.
        other_size = await client.list_tasks(page_size=10, page_token=page1.next_page_token)
        assert [t.name for t in other_size.tasks] == newest_first[2:]
        err = await fails(
            client.list_tasks(
                page_size=2, page_token=page1.next_page_token, reserved_resource="repositories/one"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert [f for f, _ in err.field_violations] == ["page_token"]


async def test_cancel_queued_and_running_tasks(
    grpc_target: str, admin_token: str, hanging_url: str
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_remote("slow", hanging_url, "library/hello-world", max_retries=0)

        running = await client.start_sync("codzo", "slow")
        await wait_for_state(client, running.name, pb.TASK_STATE_RUNNING)
        # One task writes a repository at a time: the second one waits in the queue.
        queued = await client.start_sync("codzo", "slow")
        await asyncio.sleep(0.2)
        assert (await client.get_task(queued.name)).state == pb.TASK_STATE_QUEUED
        listed = await client.list_tasks(state="queued")
        assert [t.name for t in listed.tasks] == [queued.name]

        # Resources in use by active tasks cannot go.
        await fails(
            client.delete_repository("codzo"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "REPOSITORY_BUSY",
        )
        await fails(
            client.delete_remote("slow"), grpc.StatusCode.FAILED_PRECONDITION, "REMOTE_IN_USE"
        )

        canceled = await client.cancel_task(queued.name)
        assert canceled.state == pb.TASK_STATE_CANCELED
        assert canceled.error.reason == "TASK_CANCELED"
        assert canceled.HasField("finish_time")
        assert (await client.get_task(queued.name)).state == pb.TASK_STATE_CANCELED
        await fails(
            client.cancel_task(queued.name), grpc.StatusCode.FAILED_PRECONDITION, "TASK_FINISHED"
        )
        events = await watch_to_end(client, queued.name)
        assert [e.task.state for e in events] == [pb.TASK_STATE_CANCELED]

        # A watcher of the running task sees it snapshot RUNNING, then finish CANCELED.
        async with asyncio.timeout(30), client.watch_task(running.name) as stream:
            first = await anext(stream)
            assert first.kind == pb.TASK_EVENT_KIND_SNAPSHOT
            assert first.task.state == pb.TASK_STATE_RUNNING
            stopping = await client.cancel_task(running.name)
            assert stopping.state in (pb.TASK_STATE_RUNNING, pb.TASK_STATE_CANCELED)
            events = [event async for event in stream]
        assert events[-1].kind == pb.TASK_EVENT_KIND_FINISHED
        assert events[-1].task.state == pb.TASK_STATE_CANCELED
        assert events[-1].task.error.reason == "TASK_CANCELED"
        assert [e.kind for e in events].count(pb.TASK_EVENT_KIND_FINISHED) == 1
        assert (await client.get_task(running.name)).state == pb.TASK_STATE_CANCELED

        # Nothing active any more: both may be deleted now.
        await client.delete_remote("slow")
        await client.delete_repository("codzo")


# Independent of the database: the SQLite run is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_cancel_right_after_start(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_remote("dead", dead_url(), "library/hello-world", max_retries=0)
        task = await client.start_sync("codzo", "dead")
        try:
            answer = await client.cancel_task(task.name)
        except MirrorClientError as err:  # it finished first
            assert err.code is grpc.StatusCode.FAILED_PRECONDITION, str(err)
            assert err.reason == "TASK_FINISHED"
        else:
            assert answer.state in (pb.TASK_STATE_CANCELED, pb.TASK_STATE_RUNNING)
        final = (await watch_to_end(client, task.name))[-1].task
        assert final.state in (pb.TASK_STATE_CANCELED, pb.TASK_STATE_FAILED)


async def test_not_found_tasks_and_sync_targets(grpc_target: str, admin_token: str) -> None:
    name = f"tasks/{uuid.uuid4()}"
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        for call in (client.get_task(name), client.cancel_task(name)):
            err = await fails(call, grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
            assert err.metadata.get("task") == name
        await fails(watch_to_end(client, name), grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")

        await client.create_repository("codzo")
        await client.create_remote("dead", dead_url(), "library/hello-world", max_retries=0)
        await fails(
            client.start_sync("ghost", "dead"), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        await fails(
            client.start_sync("codzo", "ghost"), grpc.StatusCode.NOT_FOUND, "REMOTE_NOT_FOUND"
        )
        assert list((await client.list_tasks()).tasks) == []

        # The same request_id returns the task already started.
        request_id = str(uuid.uuid4())
        first = await client.start_sync("codzo", "dead", request_id=request_id)
        again = await client.start_sync("codzo", "dead", request_id=request_id)
        assert again.name == first.name
        await watch_to_end(client, first.name)
        assert [t.name for t in (await client.list_tasks()).tasks] == [first.name]
