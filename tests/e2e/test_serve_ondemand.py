"""Pull-through of layers a sync left upstream: ON_DEMAND stores them on first pull (and
serves them without the upstream afterwards), STREAMED never stores them; concurrent pulls of
one missing blob fetch it once; a corrupt upstream blob never reaches a client whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from protos import mirror_pb2 as pb
from tests.e2e.conftest import (
    E2E,
    blob_path,
    check_oci_layout,
    config_digests,
    layer_digests,
    needs_registry,
    needs_skopeo,
    stored_digests,
)
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess
from tests.support.s3 import SERVING_BACKENDS, STORAGE_BACKENDS

pytestmark = [pytest.mark.registry, needs_registry]

BASE = "mirror/app"


@pytest.fixture
async def proxy(upstream_registry: RegistryProcess) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream_registry.url) as proxy:
        yield proxy


def blob_get(digest: str) -> str:
    return f"/blobs/{digest}"


@pytest.mark.skopeo
@needs_skopeo
@SERVING_BACKENDS
async def test_on_demand_stores_layers_on_first_pull_and_survives_upstream_stop(
    e2e: E2E, upstream_name: str
) -> None:
    index = img.make_index("ondemand-index", media="oci", layers=2, layer_size=4096)
    layers = layer_digests(index)
    async with RegistryProcess() as upstream:  # this test stops its upstream
        await img.push_index(upstream.url, upstream_name, "v1", index)
        await e2e.publish("app", upstream.url, upstream_name, BASE, pb.POLICY_ON_DEMAND)

        before = stored_digests(e2e.storage)
        assert before.isdisjoint(layers), "ON_DEMAND sync downloaded layers"
        assert before <= config_digests(index)
        listed = await e2e.blobs("app")
        assert set(listed) == set(index.blobs)
        assert {d for d, b in listed.items() if not b.stored} == layers

        first = await e2e.copy_oci(BASE, "v1", "first")
        check_oci_layout(first, index)
        after = stored_digests(e2e.storage)  # every blob re-hashes to its name
        assert layers <= after
        for digest in layers:
            assert e2e.storage.read(digest) == index.blobs[digest]
        assert all(b.stored for b in (await e2e.blobs("app")).values())

        await upstream.astop()
        assert not upstream.running
        second = await e2e.copy_oci(BASE, "v1", "second")
        check_oci_layout(second, index)
        info = await e2e.inspect(BASE, "v1")
        assert info["Digest"] == index.digest


@pytest.mark.skopeo
@needs_skopeo
@STORAGE_BACKENDS
async def test_streamed_pull_never_stores_layers(
    e2e: E2E, proxy: FaultProxy, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    image = img.make_image("streamed", layers=3, layer_size=4096, media="oci")
    layers = layer_digests(image)
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("app", proxy.url, upstream_name, BASE, pb.POLICY_STREAMED)
    assert stored_digests(e2e.storage).isdisjoint(layers)

    proxy.clear_log()
    for label in ("first", "second"):
        out = await e2e.copy_oci(BASE, "v1", label)
        check_oci_layout(out, image)
        assert stored_digests(e2e.storage).isdisjoint(layers), f"{label} pull stored a layer"
    for digest in layers:
        assert proxy.hits("GET", blob_get(digest)) == 2, "each pull streams from upstream"
    listed = await e2e.blobs("app")
    assert not any(listed[d].stored for d in layers)


async def _on_demand_layer(
    e2e: E2E,
    proxy: FaultProxy,
    upstream_registry: RegistryProcess,
    upstream_name: str,
    layer_size: int,
) -> img.Layer:
    """A one-layer image synced ON_DEMAND through ``proxy``: its layer is not stored yet."""
    image = img.make_image(f"concurrent-{layer_size}", layers=1, layer_size=layer_size)
    (layer,) = image.layers
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("app", proxy.url, upstream_name, BASE, pb.POLICY_ON_DEMAND)
    assert e2e.storage.read(layer.digest) is None
    proxy.clear_log()
    return layer


async def _get(e2e: E2E, digest: str) -> tuple[int, bytes]:
    """GET a blob of BASE; a body cut short reads as status -1."""
    async with e2e.http.get(e2e.url(f"/v2/{BASE}/blobs/{digest}")) as resp:
        try:
            return resp.status, await resp.read()
        except aiohttp.ClientPayloadError:
            return -1, b""


@STORAGE_BACKENDS
async def test_pull_arriving_during_a_fill_waits_for_it(
    e2e: E2E, proxy: FaultProxy, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    """A second GET of a missing blob while the first one's upstream fetch is in flight
    waits for that fill and is served from storage: one upstream GET."""
    layer = await _on_demand_layer(e2e, proxy, upstream_registry, upstream_name, 64 * 1024)
    proxy.block(blob_get(layer.digest), method="GET")
    first = asyncio.create_task(_get(e2e, layer.digest))
    await proxy.wait_blocked(1)
    second = asyncio.create_task(_get(e2e, layer.digest))
    await asyncio.sleep(0.3)  # time for a second upstream fetch to show up, if one is made
    assert proxy.blocked == 1
    proxy.release()
    assert await asyncio.gather(first, second) == [(200, layer.blob)] * 2
    assert proxy.hits("GET", blob_get(layer.digest)) == 1
    assert e2e.storage.read(layer.digest) == layer.blob
    assert layer.digest in stored_digests(e2e.storage)


async def test_parallel_pulls_of_a_missing_blob_fetch_it_once(
    e2e: E2E, proxy: FaultProxy, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    """Two parallel GETs of a missing blob share one upstream fetch. They are lined up behind
    a first fill that fails, so both start at the same moment (deterministically)."""
    layer = await _on_demand_layer(e2e, proxy, upstream_registry, upstream_name, 1024)
    sub = blob_get(layer.digest)
    proxy.block(sub, method="GET")
    proxy.corrupt(sub, times=1, method="GET")  # the first fill fails
    first = asyncio.create_task(_get(e2e, layer.digest))
    await proxy.wait_blocked(1)
    pulls = [asyncio.create_task(_get(e2e, layer.digest)) for _ in range(2)]
    await asyncio.sleep(0.5)  # both parallel GETs now wait for the first fill
    assert proxy.hits("GET", sub) == 1
    proxy.release()

    status, _ = await first
    assert status >= 400  # one chunk, corrupt: an error status, nothing sent
    assert await asyncio.gather(*pulls) == [(200, layer.blob)] * 2
    assert blob_path(e2e.data_dir, layer.digest).read_bytes() == layer.blob
    assert layer.digest in stored_digests(e2e.data_dir)
    # the failed fill, then one fetch for both parallel GETs
    assert proxy.hits("GET", sub) == 2


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(False, id="one-chunk"),  # fails before a byte went out: an error status
        pytest.param(True, id="many-chunks"),  # bytes went out first: a short body
    ],
)
async def test_corrupt_upstream_blob_is_never_served_whole_nor_stored(
    e2e: E2E,
    proxy: FaultProxy,
    upstream_registry: RegistryProcess,
    upstream_name: str,
    chunked: bool,
) -> None:
    image = img.make_image(
        f"corrupt-{chunked}", layers=1, layer_size=256 * 1024 if chunked else 1024
    )
    (layer,) = image.layers
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("app", proxy.url, upstream_name, BASE, pb.POLICY_ON_DEMAND)
    proxy.corrupt(blob_get(layer.digest), times=None, method="GET")
    if chunked:  # 64 KiB pieces, paced: the server reads (and forwards) several chunks
        proxy.slow(blob_get(layer.digest), bytes_per_sec=1024 * 1024, method="GET")
    url = e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")

    status, length, body, error = 0, None, b"", None
    async with e2e.http.get(url) as resp:
        status, length = resp.status, resp.content_length
        try:
            body = await resp.read()
        except aiohttp.ClientPayloadError as exc:
            error = exc
    assert proxy.hits("GET", blob_get(layer.digest)) >= 1
    if chunked:
        assert status == 200
        assert length == layer.size
        assert error is not None, "a corrupt blob reached the client complete"
    else:
        assert status >= 400
        assert error is None
        assert "errors" in json.loads(body)
    assert not blob_path(e2e.data_dir, layer.digest).exists()
    assert layer.digest not in stored_digests(e2e.data_dir)  # temp dir empty, too

    proxy.clear()  # the upstream heals: the next pull gets (and stores) the real bytes
    async with e2e.http.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == layer.blob
    assert blob_path(e2e.data_dir, layer.digest).read_bytes() == layer.blob
