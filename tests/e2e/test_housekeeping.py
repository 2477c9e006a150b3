"""Garbage collection and repair over the real server, registry, skopeo and both blob stores.

GC: exactly the content no version holds goes (a deleted repository's, a pruned version's, an
object no row names), what is still held stays and pulls, old finished tasks go, and a sync
running at the same time keeps what it relies on. Repair: blobs corrupted or deleted behind
the server's back are fetched again from the upstream; without the upstream they are named.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc
import pytest
from google.protobuf import duration_pb2

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.e2e.conftest import E2E, needs_registry, needs_skopeo
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess
from tests.support.s3 import STORAGE_BACKENDS, StorageView, assert_sound

pytestmark = [needs_registry]

TERMINAL = {pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED}


async def wait_task(channel: grpc.aio.Channel, task: pb.Task, max_wait: float = 60) -> pb.Task:
    stub = pb_grpc.TaskServiceStub(channel)
    async with asyncio.timeout(max_wait):
        while True:
            task = (await stub.GetTask(pb.GetTaskRequest(name=task.name))).task
            if task.state in TERMINAL:
                return task
            await asyncio.sleep(0.05)


async def collect(e2e: E2E, retention: float | None = None) -> pb.Task:
    """Garbage collection with no protection window, to its end."""
    request = pb.CleanupOrphansRequest(orphan_protection_time=duration_pb2.Duration(seconds=0))
    if retention is not None:
        request.task_retention.CopyFrom(duration_pb2.Duration(seconds=int(retention)))
    stub = pb_grpc.HousekeepingServiceStub(e2e.channel)
    task = (await stub.CleanupOrphans(request)).task
    assert task.kind == "gc"
    return await wait_task(e2e.channel, task)


def reports(task: pb.Task) -> dict[str, pb.ProgressReport]:
    return {r.code: r for r in task.progress_reports}


async def delete_repository(e2e: E2E, name: str) -> None:
    await e2e.repositories.DeleteRepository(pb.DeleteRepositoryRequest(name=f"repositories/{name}"))


@STORAGE_BACKENDS
@needs_skopeo
async def test_gc_removes_exactly_what_no_version_holds(
    e2e: E2E,
    upstream_registry: RegistryProcess,
    upstream_name: str,
    storage_view: StorageView,
) -> None:
    base = img.make_layer("gc-shared-base", 4096)
    keep = img.make_image("gc-keep", layers=1, layer_size=4096, shared_base=base)
    gone = img.make_image("gc-gone", layers=1, layer_size=4096, shared_base=base)
    old = img.make_image("gc-old", layers=2, layer_size=4096)
    new = img.make_image("gc-new", layers=1, layer_size=4096)
    url = upstream_registry.url
    await img.push_image(url, f"{upstream_name}/keep", "1", keep)
    await img.push_image(url, f"{upstream_name}/gone", "1", gone)
    await img.push_image(url, f"{upstream_name}/pruned", "t", old)
    await e2e.publish("keep", url, f"{upstream_name}/keep", "gc/keep")
    await e2e.setup("gone", url, f"{upstream_name}/gone")
    await e2e.sync("gone")
    await e2e.setup("pruned", url, f"{upstream_name}/pruned")
    await e2e.repositories.UpdateRepository(
        pb.UpdateRepositoryRequest(
            repository=pb.Repository(name="repositories/pruned", retain_versions=1),
            update_mask={"paths": ["retain_versions"]},
        )
    )
    await e2e.sync("pruned")
    await img.push_image(url, f"{upstream_name}/pruned", "t", new)
    # A mirror sync: version 2 holds only `new`; retain_versions=1 prunes version 1.
    await e2e.sync("pruned", mirror=True)
    await e2e.distribute("pruned", "gc/pruned", repository="repositories/pruned")
    await delete_repository(e2e, "gone")
    # An object no row names (a pull-through fill of content deleted meanwhile, say).
    stray = os.urandom(3000)
    stray_digest = f"sha256:{hashlib.sha256(stray).hexdigest()}"
    storage_view.write(stray_digest, stray)
    before = storage_view.digests()

    task = await collect(e2e, retention=0)

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    held = blob_digests(keep) | blob_digests(new)
    freed = (blob_digests(gone) | blob_digests(old)) - held
    assert storage_view.digests() == before - freed - {stray_digest}
    assert held <= storage_view.digests()
    found = reports(task)
    assert found["gc.blobs"].done == len(freed) + 1
    sizes = {**gone.blobs, **old.blobs}
    assert found["gc.blobs"].done_bytes == sum(len(sizes[d]) for d in freed) + len(stray)
    # Units: the tags and manifests of `gone` and `old`, and their blobs.
    assert found["gc.content"].done == 2 + 2 + len(freed)
    assert found["gc.tasks"].done == 4  # the four syncs; the collection itself stays
    assert_sound(storage_view)
    for base_path in ("gc/keep", "gc/pruned"):
        out = e2e.new_dir()
        (await e2e.skopeo("copy", "--src-tls-verify=false", e2e.ref(base_path, _tag(base_path)),
                          f"dir:{out}")).check()  # fmt: skip

    again = await collect(e2e)
    assert reports(again)["gc.content"].done == 0
    assert reports(again)["gc.blobs"].done == 0


def blob_digests(image: img.Image) -> set[str]:
    return set(image.blobs)


def _tag(base_path: str) -> str:
    return "1" if base_path.endswith("keep") else "t"


async def test_gc_during_a_sync_keeps_what_the_sync_relies_on(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str, storage_view: StorageView
) -> None:
    """The sync found the shared layer stored (no download) and waits on its own new layer
    while GC runs: the shared layer's only holder was a deleted repository, yet it stays."""
    base = img.make_layer("gc-race-base", 8192)
    first = img.make_image("gc-race-first", layers=1, layer_size=4096, shared_base=base)
    second = img.make_image("gc-race-second", layers=1, layer_size=4096, shared_base=base)
    url = upstream_registry.url
    await img.push_image(url, f"{upstream_name}/first", "1", first)
    await img.push_image(url, f"{upstream_name}/second", "1", second)
    await e2e.setup("first", url, f"{upstream_name}/first")
    await e2e.sync("first")
    await delete_repository(e2e, "first")
    async with FaultProxy(url) as proxy:
        await e2e.setup("second", proxy.url, f"{upstream_name}/second")
        own_layer = second.layers[-1].digest
        proxy.block(f"/blobs/{own_layer}", method="GET")
        syncing = await e2e.syncs.StartSync(
            pb.StartSyncRequest(repository="repositories/second", remote="remotes/second")
        )
        await proxy.wait_blocked()

        task = await collect(e2e)
        proxy.release()
        synced = await wait_task(e2e.channel, syncing.task)

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert synced.state == pb.TASK_STATE_COMPLETED, synced.error
    # `first`'s own blobs went; the shared base the running sync relied on did not.
    assert blob_digests(second) <= storage_view.digests()
    gone = blob_digests(first) - blob_digests(second)
    assert not gone & storage_view.digests()
    assert reports(task)["gc.blobs"].done == len(gone)
    assert_sound(storage_view)


@STORAGE_BACKENDS
async def test_repair_restores_corrupt_and_missing_blobs(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str, storage_view: StorageView
) -> None:
    image = img.make_image("repair-one", layers=3, layer_size=4096)
    await img.push_image(upstream_registry.url, upstream_name, "1", image)
    await e2e.setup("fixme", upstream_registry.url, upstream_name)
    await e2e.sync("fixme")
    corrupt, missing = image.layers[0].digest, image.layers[1].digest
    good = storage_view.read(corrupt)
    assert good is not None
    storage_view.write(corrupt, bytes([good[0] ^ 0xFF]) + good[1:])
    storage_view.remove(missing)
    stub = pb_grpc.HousekeepingServiceStub(e2e.channel)

    started = (
        await stub.RepairVersion(pb.RepairVersionRequest(version="repositories/fixme/versions/1"))
    ).task
    task = await wait_task(e2e.channel, started)

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    found = reports(task)
    assert found["repair.verifying"].done == len(blob_digests(image))
    assert found["repair.fetching"].done == 2
    assert blob_digests(image) <= assert_sound(storage_view)


async def test_repair_names_what_it_cannot_repair(
    e2e: E2E, upstream_name: str, storage_view: StorageView
) -> None:
    upstream = RegistryProcess()
    await upstream.astart()
    try:
        image = img.make_image("repair-two", layers=2, layer_size=4096)
        await img.push_image(upstream.url, upstream_name, "1", image)
        await e2e.setup("lost", upstream.url, upstream_name)
        await e2e.sync("lost")
    finally:
        await upstream.astop()
    lost = image.layers[0].digest
    storage_view.remove(lost)
    stub = pb_grpc.HousekeepingServiceStub(e2e.channel)

    started = (
        await stub.RepairVersion(
            pb.RepairVersionRequest(version="repositories/lost/versions/latest")
        )
    ).task
    task = await wait_task(e2e.channel, started)

    assert task.state == pb.TASK_STATE_FAILED
    assert task.error.reason == "BLOBS_UNREPAIRABLE"
    assert task.error.code == "DATA_LOSS"
    assert [w for w in task.warnings if lost in w], task.warnings
    assert len(task.warnings) == 1


async def test_housekeeping_requests_are_validated(e2e: E2E) -> None:
    stub = pb_grpc.HousekeepingServiceStub(e2e.channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CleanupOrphans(
            pb.CleanupOrphansRequest(
                orphan_protection_time=duration_pb2.Duration(seconds=-1), request_id="nope"
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "orphan_protection_time" in (raised.value.details() or "")
    assert "request_id" in (raised.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RepairVersion(pb.RepairVersionRequest(version="repositories/none/versions/1"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
