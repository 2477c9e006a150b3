"""Sync tasks as a user follows them: event streams, late and mid-sync watchers, cancelling a
download in flight, one sync per repository at a time and parallel syncs of different ones."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    EventCollector,
    Mirror,
    Upstream,
    assert_storage_sound,
    blob_path,
    check_event_order,
    error_info,
    eventually,
    nanos,
    small_image,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import proxy_fixture as proxy_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess

pytestmark = REGISTRY_MARKS

STAGES = [
    "sync.listing_tags",
    "sync.resolving_tags",
    "sync.fetching_manifests",
    "sync.downloading_blobs",
    "sync.saving",
]


async def push_some(url: str, name: str, seed: str = "tasks") -> Upstream:
    upstream = Upstream(url, name)
    await upstream.push("one", small_image(f"{seed}-1"))
    await upstream.push("two", small_image(f"{seed}-2", media="oci"))
    await upstream.push("multi", img.make_index(f"{seed}-m", img.PLATFORMS[:2], layer_size=256))
    return upstream


async def test_sync_stream_reports_stages_in_order(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_some(registry.url, upstream_name)
    expected = upstream.expected()
    await mirror.setup("streamed", registry.url, upstream_name)
    # Unknown names are refused before any task exists.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mirror.start_sync("streamed", "missing")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(err.value)
    assert info is not None and info.domain == "mirror.v1"
    assert list((await mirror.tasks.ListTasks(pb.ListTasksRequest())).tasks) == []
    request = pb.SyncRequest(
        repository="repositories/streamed",
        remote="remotes/streamed",
        request_id=str(uuid.uuid4()),
    )

    events = [e async for e in mirror.syncs.Sync(request)]

    check_event_order(events)
    final = events[-1].task
    assert events[-1].kind == pb.TASK_EVENT_KIND_FINISHED
    assert final.state == pb.TASK_STATE_COMPLETED, final.error
    assert final.kind == "sync"
    assert list(final.created_resources) == ["repositories/streamed/versions/1"]
    assert list(final.reserved_resources) == ["repositories/streamed"]
    assert not final.HasField("error")
    assert nanos(final.create_time) <= nanos(final.start_time) <= nanos(final.finish_time)
    assert [r.code for r in final.progress_reports] == STAGES
    assert {r.code: r.state for r in final.progress_reports} == dict.fromkeys(
        STAGES, pb.PROGRESS_STATE_COMPLETED
    )
    reports = {r.code: r for r in final.progress_reports}
    tags = reports["sync.resolving_tags"]
    assert (tags.done, tags.total, tags.unit) == (3, 3, "tags")
    manifests = reports["sync.fetching_manifests"]
    assert manifests.unit == "manifests"
    assert manifests.done == manifests.total == len(expected.manifests)
    assert reports["sync.downloading_blobs"].unit == "blobs"
    blobs = reports["sync.downloading_blobs"]
    assert blobs.done == blobs.total == len(expected.blobs)
    assert blobs.done_bytes == blobs.total_bytes == sum(map(len, expected.blobs.values()))
    # Every event carries a full snapshot of the same task.
    assert all(e.task.parameters["repository"] == "repositories/streamed" for e in events)
    # GetTask agrees with the last event.
    assert await mirror.get_task(final.name) == final

    # The same request_id again starts nothing: it watches the finished task (one snapshot).
    again = [e async for e in mirror.syncs.Sync(request)]
    assert [e.kind for e in again] == [pb.TASK_EVENT_KIND_SNAPSHOT]
    assert again[0].task == final
    listed = await mirror.tasks.ListTasks(pb.ListTasksRequest())
    assert [t.name for t in listed.tasks] == [final.name]
    assert await mirror.version_numbers("streamed") == [1, 0]


async def test_watchers_mid_sync_and_after_the_end(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    await push_some(registry.url, upstream_name)
    await mirror.setup("watched", proxy.url, upstream_name)
    proxy.block("/blobs/")
    request = pb.SyncRequest(repository="repositories/watched", remote="remotes/watched")
    stream = EventCollector(mirror.syncs.Sync(request))
    watcher: EventCollector | None = None
    try:
        name = (await stream.first()).task.name
        await proxy.wait_blocked(1)
        running = await mirror.get_task(name)
        assert running.state == pb.TASK_STATE_RUNNING
        watcher = EventCollector(mirror.tasks.WatchTask(pb.WatchTaskRequest(name=name)))
        snapshot = await watcher.first()
        assert snapshot.kind == pb.TASK_EVENT_KIND_SNAPSHOT
        assert snapshot.task.state == pb.TASK_STATE_RUNNING
        assert list(snapshot.task.created_resources) == []
        # Hold the sync past a watcher poll interval before letting it finish.
        await asyncio.sleep(1.2)
        assert proxy.blocked >= 1
    finally:
        proxy.release()
    events = await stream.finish()
    watched = await watcher.finish()

    for seen in (events, watched):
        check_event_order(seen)
        assert seen[-1].kind == pb.TASK_EVENT_KIND_FINISHED
        assert seen[-1].task.state == pb.TASK_STATE_COMPLETED, seen[-1].task.error
        assert list(seen[-1].task.created_resources) == ["repositories/watched/versions/1"]

    late = await mirror.watch(name)
    assert len(late) == 1
    assert late[0].kind == pb.TASK_EVENT_KIND_SNAPSHOT
    assert late[0].task.state == pb.TASK_STATE_COMPLETED
    assert list(late[0].task.created_resources) == ["repositories/watched/versions/1"]


async def test_cancel_mid_download(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    image = img.make_image("cancel-me", layers=1, layer_size=64 * 1024, media="oci")
    await upstream.push("big", image)
    layer = image.layers[0].digest
    await mirror.setup("cancel", proxy.url, upstream_name)
    # The config is held before it reaches upstream; the layer trickles in (~4 s).
    proxy.block(f"/blobs/{image.config_digest}")
    proxy.slow(f"/blobs/{layer}", bytes_per_sec=16 * 1024)
    tmp = mirror.data_dir / "tmp"
    try:
        task = await mirror.start_sync("cancel")
        assert task.state == pb.TASK_STATE_QUEUED
        await proxy.wait_blocked(1)
        # Wait until the layer's temp file is open and bytes are flowing (writes are
        # buffered per MiB, so the file itself may still be empty): the cancel lands mid-blob.
        await eventually(lambda: any(tmp.iterdir()))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        cancel = await mirror.tasks.CancelTask(pb.CancelTaskRequest(name=task.name))
        assert cancel.task.state in (pb.TASK_STATE_CANCELED, pb.TASK_STATE_RUNNING)
        final = await mirror.wait(task.name, max_wait=10)
        elapsed = time.monotonic() - started
    finally:
        proxy.release()

    assert final.state == pb.TASK_STATE_CANCELED, final
    assert elapsed < 10
    assert final.error.code == "CANCELLED", final.error
    assert list(final.created_resources) == []
    assert await mirror.version_numbers("cancel") == [0]
    assert (await mirror.repository("cancel")).latest_version_number == 0
    assert not blob_path(mirror.data_dir, layer).exists()
    assert not blob_path(mirror.data_dir, image.config_digest).exists()
    assert assert_storage_sound(mirror.data_dir) == set()
    states = {r.code: r.state for r in final.progress_reports}
    assert pb.PROGRESS_STATE_RUNNING not in states.values(), states

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mirror.tasks.CancelTask(pb.CancelTaskRequest(name=task.name))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    proxy.clear()
    again = await mirror.sync("cancel")
    assert again.task.state == pb.TASK_STATE_COMPLETED, again.task.error
    assert list(again.task.created_resources) == ["repositories/cancel/versions/1"]
    assert assert_storage_sound(mirror.data_dir) == set(image.blobs)


async def test_syncs_of_one_repository_run_one_after_the_other(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    await push_some(registry.url, upstream_name)
    await mirror.setup("serial", proxy.url, upstream_name)
    proxy.block("/blobs/")
    try:
        first, second = await asyncio.gather(
            mirror.start_sync("serial"), mirror.start_sync("serial")
        )
        assert first.name != second.name
        await proxy.wait_blocked(1)
        await asyncio.sleep(0.3)  # time enough for a second worker to (wrongly) start
        states = sorted([(await mirror.get_task(t.name)).state for t in (first, second)])
        assert states == [pb.TASK_STATE_QUEUED, pb.TASK_STATE_RUNNING]
        # A third one, cancelled while it waits, ends at once and never runs.
        third = await mirror.start_sync("serial", mirror=True)
        cancelled = await mirror.tasks.CancelTask(pb.CancelTaskRequest(name=third.name))
        assert cancelled.task.state == pb.TASK_STATE_CANCELED
        listed = await mirror.tasks.ListTasks(
            pb.ListTasksRequest(reserved_resource="repositories/serial")
        )
        assert listed.tasks[0].name == third.name  # newest first
        assert {t.name for t in listed.tasks[1:]} == {first.name, second.name}
    finally:
        proxy.release()
    done = [await mirror.wait(t.name) for t in (first, second)]

    assert [t.state for t in done] == [pb.TASK_STATE_COMPLETED] * 2, [t.error for t in done]
    earlier, later = sorted(done, key=lambda t: nanos(t.start_time))
    assert nanos(later.start_time) >= nanos(earlier.finish_time)
    assert list(earlier.created_resources) == ["repositories/serial/versions/1"]
    assert list(later.created_resources) == []  # nothing changed in between
    assert await mirror.version_numbers("serial") == [1, 0]
    never = await mirror.watch(third.name)
    assert [e.kind for e in never] == [pb.TASK_EVENT_KIND_SNAPSHOT]
    assert never[0].task.state == pb.TASK_STATE_CANCELED
    assert not never[0].task.HasField("start_time")
    assert never[0].task.error.code == "CANCELLED"
    assert (await mirror.repository("serial")).mirror is False


async def test_concurrent_syncs_of_shared_content_fetch_each_blob_once(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_some(registry.url, upstream_name, seed="shared")
    expected = upstream.expected()
    await mirror.setup("first", proxy.url, upstream_name)
    await mirror.setup("second", proxy.url, upstream_name)
    proxy.block("/blobs/")
    try:
        tasks = await asyncio.gather(mirror.start_sync("first"), mirror.start_sync("second"))
        for task in tasks:
            await mirror.wait_for_state(task.name, [pb.TASK_STATE_RUNNING])
        await proxy.wait_blocked(len(expected.blobs))
        await asyncio.sleep(0.2)
    finally:
        proxy.release()
    done = [await mirror.wait(t.name) for t in tasks]

    assert [t.state for t in done] == [pb.TASK_STATE_COMPLETED] * 2, [t.error for t in done]
    for digest in expected.blobs:
        assert proxy.hits("GET", f"/blobs/{digest}") == 1, digest
    for repo in ("first", "second"):
        await mirror.assert_matches(repo, expected)
    assert assert_storage_sound(mirror.data_dir) == set(expected.blobs)


async def test_syncs_of_different_repositories_overlap(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    other_name = upstream_name + "-other"
    await push_some(registry.url, upstream_name, seed="overlap-a")
    await push_some(registry.url, other_name, seed="overlap-b")
    await mirror.setup("left", proxy.url, upstream_name)
    await mirror.setup("right", proxy.url, other_name)
    proxy.block("/blobs/")
    try:
        left, right = await asyncio.gather(mirror.start_sync("left"), mirror.start_sync("right"))
        for task in (left, right):
            await mirror.wait_for_state(task.name, [pb.TASK_STATE_RUNNING])
        await eventually(
            lambda: bool(
                proxy.hits("GET", f"/v2/{upstream_name}/blobs/")
                and proxy.hits("GET", f"/v2/{other_name}/blobs/")
            )
        )
        # Both are downloading at the same moment.
        for task in (left, right):
            assert (await mirror.get_task(task.name)).state == pb.TASK_STATE_RUNNING
    finally:
        proxy.release()
    a, b = [await mirror.wait(t.name) for t in (left, right)]

    assert a.state == b.state == pb.TASK_STATE_COMPLETED, (a.error, b.error)
    assert nanos(a.start_time) < nanos(b.finish_time)
    assert nanos(b.start_time) < nanos(a.finish_time)
    assert list(a.created_resources) == ["repositories/left/versions/1"]
    assert list(b.created_resources) == ["repositories/right/versions/1"]
    assert_storage_sound(mirror.data_dir)


def blobs_done(task: pb.Task) -> int | None:
    for report in task.progress_reports:
        if report.code == "sync.downloading_blobs":
            return report.done
    return None


# The watcher logic is the same on both databases; this slow (~4 s) case runs on SQLite only.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_progress_never_goes_back_while_a_download_stalls(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    image = img.make_image("stall", layers=2, layer_size=1024, media="oci")
    await upstream.push("v1", image)
    first, second = (layer.digest for layer in image.layers)
    await mirror.setup("stall", proxy.url, upstream_name)
    proxy.block(f"/blobs/{first}")
    trickle = proxy.slow(f"/blobs/{second}", bytes_per_sec=10)  # stalls the sync
    request = pb.SyncRequest(repository="repositories/stall", remote="remotes/stall")
    stream = EventCollector(mirror.syncs.Sync(request))

    async def persisted_one() -> bool:
        return blobs_done(await mirror.get_task(name)) == 1

    try:
        name = (await stream.first()).task.name
        await eventually(lambda: any(blobs_done(e.task) is not None for e in stream.events))
        # The config blob is done at once; wait until the server has persisted that.
        await eventually(persisted_one)
        # Let the first layer finish: an advance the server publishes (the last event is
        # more than 0.25 s old) but does not persist yet; then the sync stalls.
        await asyncio.sleep(max(0.0, stream.last_event_at + 0.35 - time.monotonic()))
        proxy.release()
        await asyncio.sleep(1.4)
    finally:
        proxy.release()
        trickle.bytes_per_sec = 1e9
    events = await stream.finish()

    assert events[-1].task.state == pb.TASK_STATE_COMPLETED, events[-1].task.error
    check_event_order(events)
