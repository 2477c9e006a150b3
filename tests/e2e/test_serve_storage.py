"""How stored blobs leave the server on each backend, and the one download path they share.

S3: a blob GET is redirected to a short-lived presigned URL (default) or streamed through the
server (`s3_serve=stream`, Range honoured). Filesystem and S3 alike: a sync and a pull of the
same missing digest download it once; a STREAMED pull whose client went away stops its
upstream download unless another client shares it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from protos import mirror_pb2 as pb
from server.app import Services
from tests.e2e.conftest import E2E, needs_registry, stored_digests
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess
from tests.support.s3 import STORAGE_BACKENDS, MotoServer

pytestmark = [pytest.mark.registry, needs_registry]

BASE = "mirror/app"


@pytest.fixture
async def proxy(upstream_registry: RegistryProcess) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream_registry.url) as proxy:
        yield proxy


async def _synced_layer(
    e2e: E2E, registry: RegistryProcess, upstream_name: str, size: int = 64 * 1024
) -> img.Layer:
    image = img.make_image(f"storage-{size}", layers=1, layer_size=size)
    await img.push_image(registry.url, upstream_name, "v1", image)
    await e2e.publish("app", registry.url, upstream_name, BASE)
    return image.layers[0]


@pytest.mark.parametrize("storage_backend", ["s3"], indirect=True)
async def test_s3_blob_get_redirects_to_a_short_lived_presigned_url(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str, moto_server: MotoServer
) -> None:
    layer = await _synced_layer(e2e, upstream_registry, upstream_name)
    url = e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")

    async with e2e.http.get(url, allow_redirects=False) as resp:
        assert resp.status == 307
        assert resp.headers["Docker-Content-Digest"] == layer.digest
        location = resp.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == moto_server.url
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["300"]
    assert "X-Amz-Signature" in query
    assert "mirror-test-secret" not in location
    async with e2e.http.get(location) as followed:
        assert followed.status == 200
        assert await followed.read() == layer.blob

    # HEAD answers here, with the size, and sends nobody elsewhere.
    async with e2e.http.head(url, allow_redirects=False) as head:
        assert head.status == 200
        assert head.headers["Content-Length"] == str(len(layer.blob))


@pytest.mark.parametrize("storage_backend", ["s3-stream"], indirect=True)
async def test_s3_stream_through_serves_bytes_and_ranges(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    layer = await _synced_layer(e2e, upstream_registry, upstream_name)
    url = e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")
    size = len(layer.blob)

    async with e2e.http.get(url, allow_redirects=False) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(size)
        assert await resp.read() == layer.blob
    cases = {
        "bytes=10-19": (206, layer.blob[10:20], f"bytes 10-19/{size}"),
        "bytes=-5": (206, layer.blob[-5:], f"bytes {size - 5}-{size - 1}/{size}"),
        f"bytes={size - 3}-": (206, layer.blob[-3:], f"bytes {size - 3}-{size - 1}/{size}"),
        "bytes=-0": (416, None, f"bytes */{size}"),
        f"bytes={size}-": (416, None, f"bytes */{size}"),
        "bytes=0-1,5-6": (200, layer.blob, None),  # multi-range: ignored (RFC 9110 14.2)
    }
    for header, (status, body, content_range) in cases.items():
        async with e2e.http.get(url, headers={"Range": header}) as resp:
            assert resp.status == status, header
            if body is not None:
                assert await resp.read() == body, header
            assert resp.headers.get("Content-Range") == content_range, header


@STORAGE_BACKENDS
async def test_a_sync_and_a_pull_of_the_same_missing_digest_download_it_once(
    e2e: E2E, proxy: FaultProxy, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    image = img.make_image("sync-and-pull", layers=1, layer_size=256 * 1024)
    (layer,) = image.layers
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("app", proxy.url, upstream_name, BASE, pb.POLICY_ON_DEMAND)
    await e2e.setup("eager", proxy.url, upstream_name, pb.POLICY_IMMEDIATE)
    assert e2e.storage.read(layer.digest) is None
    proxy.clear_log()
    blob = f"/blobs/{layer.digest}"
    proxy.block(blob, method="GET")

    async def pull() -> tuple[int, bytes]:
        async with e2e.http.get(e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")) as resp:
            return resp.status, await resp.read()

    pulled = asyncio.create_task(pull())
    await proxy.wait_blocked(1)
    synced = asyncio.create_task(e2e.sync("eager"))
    await asyncio.sleep(0.5)  # the sync reaches its blob step and joins the pull's download
    assert proxy.blocked == 1
    proxy.release()

    assert await pulled == (200, layer.blob)
    task = await synced
    assert list(task.created_resources) == ["repositories/eager/versions/1"]
    assert proxy.hits("GET", blob) == 1
    assert e2e.storage.read(layer.digest) == layer.blob
    assert layer.digest in stored_digests(e2e.storage)


async def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    """Poll `condition` (a fact of the server under test that has no event to wait on)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true after {seconds}s")


@STORAGE_BACKENDS
async def test_streamed_pull_abandoned_by_its_client_stops_the_upstream_download(
    e2e: E2E,
    services: Services,
    proxy: FaultProxy,
    upstream_registry: RegistryProcess,
    upstream_name: str,
) -> None:
    image = img.make_image("streamed-gone", layers=1, layer_size=1000 * 1024)
    (layer,) = image.layers
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    # Public: the two clients below are anonymous pullers.
    await e2e.publish("app", proxy.url, upstream_name, BASE, pb.POLICY_STREAMED, public=True)
    blob = f"/blobs/{layer.digest}"
    proxy.slow(blob, bytes_per_sec=32 * 1024, method="GET")  # ~30 s for the whole layer
    url = e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")

    # Two clients share one download; the first leaves after its first bytes.
    proxy.block(blob, method="GET")
    async with aiohttp.ClientSession() as leaver_http, aiohttp.ClientSession() as stayer_http:
        leaving = asyncio.create_task(leaver_http.get(url))
        staying = asyncio.create_task(stayer_http.get(url))
        await proxy.wait_blocked(1)
        await asyncio.sleep(0.3)  # the second GET joins the first's download
        assert proxy.blocked == 1
        proxy.release()
        first = await leaving
        assert first.status == 200
        await first.content.readexactly(64 * 1024)
        first.close()  # the first client disconnects
        await asyncio.sleep(1.0)
        assert services.fetcher.in_flight() == 1, "the other client still needs the download"
        second = await staying
        assert second.status == 200
        await second.content.readexactly(64 * 1024)
        second.close()  # now the last client is gone too
        # The whole layer would take half a minute more at this rate; the download stops.
        await _wait_for(lambda: services.fetcher.in_flight() == 0, seconds=10)
    assert proxy.hits("GET", blob) == 1
    assert e2e.storage.read(layer.digest) is None
    assert stored_digests(e2e.storage).isdisjoint({layer.digest})


async def test_a_slow_drip_upstream_is_cut_off_during_pull_through(
    e2e: E2E,
    services: Services,
    proxy: FaultProxy,
    upstream_registry: RegistryProcess,
    upstream_name: str,
) -> None:
    """The pull-through download has the sync's cut-off: after a grace period the blob must
    arrive at a minimum average rate (shortened here; defaults 60 s and 32 KiB/s)."""
    image = img.make_image("slow-drip", layers=1, layer_size=256 * 1024)
    (layer,) = image.layers
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("app", proxy.url, upstream_name, BASE, pb.POLICY_ON_DEMAND)
    services.fetcher.grace_seconds = 0.5
    services.fetcher.min_throughput = 1 << 20  # this layer must be done within 0.75 s
    blob = f"/blobs/{layer.digest}"
    proxy.slow(blob, bytes_per_sec=16 * 1024, method="GET", times=1)  # would take 16 s

    async with e2e.http.get(e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")) as resp:
        try:
            body = await resp.read()
        except aiohttp.ClientPayloadError:
            body = None  # bytes went out before the cut: a short body
    assert resp.status != 200 or body is None, "a cut-off download was served whole"
    await _wait_for(lambda: services.fetcher.in_flight() == 0, seconds=5)
    assert e2e.storage.read(layer.digest) is None

    # The next pull, at full speed, works and stores the layer.
    async with e2e.http.get(e2e.url(f"/v2/{BASE}/blobs/{layer.digest}")) as resp:
        assert resp.status == 200
        assert await resp.read() == layer.blob
    assert e2e.storage.read(layer.digest) == layer.blob
