"""make bench counts upstream requests from the registry's own access log (no proxy in the
timed path): the counts must match what a client really sent, by kind, with body bytes."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from benchmarks.accesslog import REGISTRY_CONFIG, AccessLogCounter
from tests.support import images as img
from tests.support.registry import RegistryProcess, registry_available

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]


async def test_counts_come_from_the_registry_access_log() -> None:
    image = img.make_image("bench-counts", layers=2, layer_size=2048)
    async with RegistryProcess(extra_config=REGISTRY_CONFIG) as registry:
        await img.push_image(registry.url, "bench/counts", "v1", image)
        counter = AccessLogCounter(registry.log_path)
        counter.reset()  # the pushes before this point are not counted
        accept = {"Accept": ", ".join(img.ALL_MANIFEST_TYPES)}
        base = f"{registry.url}/v2/bench/counts"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/tags/list") as resp:
                assert resp.status == 200
            for _ in range(3):
                async with http.head(f"{base}/manifests/v1", headers=accept) as resp:
                    assert resp.status == 200
            async with http.get(f"{base}/manifests/{image.digest}", headers=accept) as resp:
                assert resp.status == 200
            for layer in image.layers:
                async with http.get(f"{base}/blobs/{layer.digest}") as resp:
                    assert await resp.read() == layer.blob
            async with http.get(f"{base}/manifests/nope", headers=accept) as resp:
                assert resp.status == 404
        await asyncio.sleep(0.2)  # the registry writes a line after it answered
        stats = counter.stats()
    assert stats["requests"] == {
        "tag_list": 1,
        "manifest_head": 3,
        "manifest_get": 2,
        "blob_head": 0,
        "blob_get": 2,
        "other": 0,
    }
    assert stats["bytes"]["blob_get"] == sum(len(layer.blob) for layer in image.layers)
    assert stats["statuses"] == {"GET 200": 4, "HEAD 200": 3, "GET 404": 1}
