"""Registry answers to odd or hostile requests: nosniff everywhere, `n=0`, RFC 9110 Range
rules, and pull-through failures that tell a puller nothing about the upstream."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from protos import mirror_pb2 as pb
from tests.e2e.conftest import E2E, needs_registry
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess

pytestmark = [pytest.mark.registry, needs_registry]


async def request(
    e2e: E2E, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with e2e.http.request(
        method, URL(e2e.url(path), encoded=True), headers=headers or {}
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


@pytest.fixture
async def image(e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str) -> img.Image:
    image = img.make_image("hostile-http", layers=1, layer_size=4096)
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("app", upstream_registry.url, upstream_name, "h/app")
    return image


async def test_nosniff_on_every_response(e2e: E2E, image: img.Image) -> None:
    layer = image.layers[0].digest
    cases = [
        ("GET", "/v2/", 200),
        ("GET", "/v2/_catalog", 200),
        ("GET", "/v2/h/app/tags/list", 200),
        ("GET", "/v2/h/app/manifests/v1", 200),
        ("HEAD", "/v2/h/app/manifests/v1", 200),
        ("GET", f"/v2/h/app/blobs/{layer}", 200),
        ("GET", f"/v2/h/app/blobs/{layer}", 200),
        ("GET", "/v2/h/app/manifests/nope", 404),
        ("GET", "/v2/h/app/blobs/sha256:zz", 400),
        ("GET", "/v2/no/such/path/at/all", 404),
        ("PUT", "/v2/h/app/manifests/v1", 400),  # a push repository: an empty manifest
        ("PATCH", "/v2/h/app/manifests/v1", 405),
        ("GET", "/v2/h%2fapp/tags/list", 400),
    ]
    for method, path, status in cases:
        got, headers, _ = await request(e2e, method, path)
        assert got == status, (method, path)
        assert headers.get("X-Content-Type-Options") == "nosniff", (method, path)


async def test_catalog_and_tags_with_n_zero(e2e: E2E, image: img.Image) -> None:
    """`n=0` is an empty page (was 500 for the catalog: an empty page indexed at [-1])."""
    status, headers, body = await request(e2e, "GET", "/v2/_catalog?n=0")
    assert (status, json.loads(body)) == (200, {"repositories": []})
    assert "Link" not in headers
    status, headers, body = await request(e2e, "GET", "/v2/h/app/tags/list?n=0")
    assert (status, json.loads(body)) == (200, {"name": "h/app", "tags": []})
    assert "Link" not in headers
    status, _, body = await request(e2e, "GET", "/v2/_catalog?n=1")
    assert (status, json.loads(body)) == (200, {"repositories": ["h/app"]})


async def test_range_follows_rfc9110(e2e: E2E, image: img.Image) -> None:
    """`bytes=-0` selects nothing: 416. Several ranges or a malformed value are ignored: 200
    with the whole blob. A single valid range still gets 206."""
    layer = image.layers[0]
    size = len(layer.blob)
    path = f"/v2/h/app/blobs/{layer.digest}"
    status, headers, _ = await request(e2e, "GET", path, {"Range": "bytes=-0"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"
    for spec in ("bytes=0-1,5-6", "bytes=0-1, 3-", "bytes=abc", "items=0-5", "bytes=9-2", "="):
        status, headers, body = await request(e2e, "GET", path, {"Range": spec})
        assert (status, body) == (200, layer.blob), spec
        assert "Content-Range" not in headers, spec
    status, _, body = await request(e2e, "GET", path, {"Range": "bytes=1-3"})
    assert (status, body) == (206, layer.blob[1:4])


@pytest.fixture
async def proxy(upstream_registry: RegistryProcess) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream_registry.url) as proxy:
        yield proxy


async def test_pull_through_errors_say_nothing_of_the_upstream(
    e2e: E2E, proxy: FaultProxy, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    """An ON_DEMAND layer whose upstream answers 500 with a page of its own: the puller gets
    the spec's UNAVAILABLE with the generic message, no host, no upstream body; a manifest
    GET meanwhile answers normally."""
    image = img.make_image("quiet-errors", layers=1, layer_size=4096)
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.publish("quiet", proxy.url, upstream_name, "q/app", pb.POLICY_ON_DEMAND)
    secret = b"internal-build-host-17 stack trace: token=abc"
    proxy.fail("GET", "/blobs/", status=500, times=None, body=secret)
    status, headers, body = await request(e2e, "GET", f"/v2/q/app/blobs/{image.layers[0].digest}")
    assert status == 503
    error = json.loads(body)["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert error["message"] == "upstream unavailable"
    assert error["detail"] == {}
    assert secret not in body and proxy.host.encode() not in body
    assert proxy.host.split(":")[-1].encode() not in body  # not even the port
    assert headers.get("X-Content-Type-Options") == "nosniff"
    status, _, body = await request(e2e, "GET", "/v2/q/app/manifests/v1")
    assert (status, body) == (200, image.manifest)


async def test_unparsable_requests_get_json_and_no_log_flood(
    e2e: E2E, caplog: pytest.LogCaptureFixture
) -> None:
    """200 requests aiohttp cannot parse (a bad method, a 10 kB header line): each gets a
    400 with the spec's JSON and nosniff, never its own bytes echoed; the log gets one counted
    line, not a traceback each; a normal GET meanwhile answers 200."""
    host, port = e2e.endpoint.rsplit(":", 1)
    payloads = [
        b"GARBAGE-<script>\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX: " + b"<b>" * 4000 + b"\r\n\r\n",
    ]
    with caplog.at_level(logging.DEBUG):
        for n in range(200):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(payloads[n % 2])
            answer = await reader.read()
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), head
            assert b"X-Content-Type-Options: nosniff" in head
            assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
            assert b"<" not in body
        status, _, _ = await request(e2e, "GET", "/v2/")
        assert status == 200
    reports = [r for r in caplog.records if "unparsable registry requests" in r.getMessage()]
    assert len(reports) == 1
    assert not [r for r in caplog.records if "Error handling request" in r.getMessage()]
