"""Upstream faults through the fault proxy: transient ones are retried, corrupt bytes fail the
sync with DATA_LOSS and leave nothing behind, persistent 5xx give up after max_retries."""

from __future__ import annotations

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    assert_storage_sound,
    blob_path,
    check_event_order,
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


async def push_two(url: str, name: str) -> tuple[Upstream, img.Image]:
    upstream = Upstream(url, name)
    image = img.make_image("faults-main", layers=2, layer_size=4096, media="oci")
    await upstream.push("main", image)
    await upstream.push("side", small_image("faults-side"))
    return upstream, image


async def test_rate_limited_blob_gets_are_retried(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream, _ = await push_two(registry.url, upstream_name)
    expected = upstream.expected()
    proxy.fail("GET", "/blobs/", status=429, times=2, headers={"Retry-After": "0"})
    await mirror.setup("flaky", proxy.url, upstream_name)

    run = await mirror.sync("flaky")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert list(run.task.created_resources) == ["repositories/flaky/versions/1"]
    assert proxy.hits("GET", "/blobs/") == len(expected.blobs) + 2
    await mirror.assert_matches("flaky", expected)
    assert assert_storage_sound(mirror.data_dir) == set(expected.blobs)
    downloads = {r.code: r for r in run.task.progress_reports}["sync.downloading_blobs"]
    assert downloads.done == downloads.total == len(expected.blobs)
    assert downloads.done_bytes == downloads.total_bytes == sum(map(len, expected.blobs.values()))


async def test_connection_reset_mid_blob_is_retried(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream, image = await push_two(registry.url, upstream_name)
    expected = upstream.expected()
    layer = image.layers[1].digest
    proxy.reset(f"/blobs/{layer}", after_bytes=1000, times=1, method="GET")
    await mirror.setup("reset", proxy.url, upstream_name)

    run = await mirror.sync("reset")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert proxy.hits("GET", f"/blobs/{layer}") == 2
    await mirror.assert_matches("reset", expected)
    assert assert_storage_sound(mirror.data_dir) == set(expected.blobs)
    downloads = {r.code: r for r in run.task.progress_reports}["sync.downloading_blobs"]
    # The bytes of the cut attempt are not counted twice.
    assert downloads.done_bytes == downloads.total_bytes


async def test_corrupt_blob_fails_with_data_loss_and_stores_nothing(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream, image = await push_two(registry.url, upstream_name)
    bad = image.layers[0].digest
    proxy.corrupt(f"/blobs/{bad}", times=None, method="GET")
    await mirror.setup("corrupt", proxy.url, upstream_name)
    # A corrupt manifest fails the same way, before any blob is fetched.
    other = Upstream(registry.url, upstream_name + "-manifest")
    broken = small_image("faults-broken-manifest")
    await other.push("v1", broken)
    proxy.corrupt(f"/manifests/{broken.digest}", times=None, method="GET")
    await mirror.setup("badmanifest", proxy.url, other.name)
    bad_manifest = (await mirror.sync("badmanifest")).task
    assert bad_manifest.state == pb.TASK_STATE_FAILED
    assert bad_manifest.error.code == "DATA_LOSS", bad_manifest.error
    assert bad_manifest.error.reason == "DIGEST_MISMATCH", bad_manifest.error
    assert await mirror.version_numbers("badmanifest") == [0]
    assert proxy.hits("GET", f"/v2/{other.name}/blobs/") == 0
    assert assert_storage_sound(mirror.data_dir) == set()

    run = await mirror.sync("corrupt")

    check_event_order(run.events)
    task = run.task
    assert task.state == pb.TASK_STATE_FAILED
    assert task.error.code == "DATA_LOSS", task.error
    assert task.error.reason == "DIGEST_MISMATCH", task.error
    assert bad in task.error.message or bad in task.error.metadata.values(), task.error
    assert list(task.created_resources) == []
    assert proxy.hits("GET", f"/blobs/{bad}") >= 1
    assert (await mirror.repository("corrupt")).latest_version_number == 0
    assert await mirror.version_numbers("corrupt") == [0]
    assert not blob_path(mirror.data_dir, bad).exists()
    assert bad not in assert_storage_sound(mirror.data_dir)
    failed = {r.code: r.state for r in task.progress_reports}
    assert failed["sync.downloading_blobs"] == pb.PROGRESS_STATE_FAILED

    # Once the upstream serves good bytes again the same sync succeeds.
    proxy.clear()
    again = await mirror.sync("corrupt")
    assert again.task.state == pb.TASK_STATE_COMPLETED, again.task.error
    assert list(again.task.created_resources) == ["repositories/corrupt/versions/1"]
    await mirror.assert_matches("corrupt", upstream.expected())
    assert blob_path(mirror.data_dir, bad).read_bytes() == image.layers[0].blob
    assert_storage_sound(mirror.data_dir)


async def test_server_errors_give_up_after_max_retries_and_4xx_at_once(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    _, image = await push_two(registry.url, upstream_name)
    proxy.fail("GET", f"/manifests/{image.digest}", status=500, times=None)
    await mirror.setup("broken", proxy.url, upstream_name, max_retries=1)

    run = await mirror.sync("broken")

    task = run.task
    assert task.state == pb.TASK_STATE_FAILED
    assert task.error.code == "UNAVAILABLE", task.error
    assert task.error.reason.startswith("UPSTREAM_"), task.error
    assert "500" in task.error.message, task.error
    assert proxy.hits("GET", f"/manifests/{image.digest}") == 2  # one try + one retry
    assert list(task.created_resources) == []
    assert await mirror.version_numbers("broken") == [0]
    assert_storage_sound(mirror.data_dir)

    # Errors that are not worth a retry, or an upstream that is not there at all.
    await mirror.create_repository("nowhere")
    await mirror.create_remote("unknown-name", proxy.url, upstream_name + "/never-pushed")
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    await mirror.create_remote("no-server", "http://127.0.0.1:9", upstream_name, max_retries=0)

    unknown = (await mirror.sync("nowhere", "unknown-name")).task
    assert unknown.state == pb.TASK_STATE_FAILED
    assert unknown.error.code == "FAILED_PRECONDITION", unknown.error
    assert unknown.error.reason == "UPSTREAM_NAME_UNKNOWN", unknown.error
    assert proxy.hits("GET", f"/v2/{upstream_name}/never-pushed/tags/list") == 1  # no retry

    refused = (await mirror.sync("nowhere", "no-server")).task
    assert refused.state == pb.TASK_STATE_FAILED
    assert refused.error.code == "UNAVAILABLE", refused.error
    assert refused.error.reason.startswith("UPSTREAM_"), refused.error
    assert await mirror.version_numbers("nowhere") == [0]
