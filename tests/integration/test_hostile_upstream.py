"""Attacks by an upstream: each test scripts a hostile upstream (tests/support/hostile.py),
asserts the refusal (a clear task error, never INTERNAL, nothing sent where it must not go)
and that the server meanwhile answers a normal client (health, a clean sync)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json

import grpc
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import mirror_pb2 as pb
from server.config import Settings
from tests.integration.sync_helpers import Mirror, error_info
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.support import images as img
from tests.support.hostile import HostileUpstream

NAME = "app"


def _image(seed: str) -> img.Image:
    return img.make_image(seed, layers=1, layer_size=512)


def _serve(up: HostileUpstream, image: img.Image, tag: str = "v1") -> str:
    return up.image(NAME, tag, image.manifest, media_type=image.media_type, blobs=image.blobs)


async def _healthy(mirror: Mirror) -> None:
    """The normal client: a health check answers SERVING within a second."""
    reply = await health_pb2_grpc.HealthStub(mirror.channel).Check(
        health_pb2.HealthCheckRequest(), timeout=1.0
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def _failed_sync(mirror: Mirror, name: str, url: str, **remote: object) -> pb.Task:
    remote.setdefault("max_retries", 0)
    await mirror.setup(name, url, NAME, **remote)
    task = (await mirror.sync(name)).task
    assert task.state == pb.TASK_STATE_FAILED, task
    assert task.error.code != "INTERNAL", task.error
    return task


async def _clean_sync(mirror: Mirror, up: HostileUpstream, name: str) -> None:
    """A well-behaved upstream next to the hostile one still syncs."""
    image = _image(f"clean-{name}")
    _serve(up, image, "clean")
    await mirror.setup(name, up.url, NAME, include_tags=["clean"], max_retries=0)
    task = (await mirror.sync(name)).task
    assert task.state == pb.TASK_STATE_COMPLETED, task.error


# ---------------------------------------------------------------------------- origins
async def test_tag_list_link_to_another_host_is_refused(mirror: Mirror) -> None:
    async with HostileUpstream() as up, HostileUpstream("127.0.0.3") as elsewhere:
        for target in (
            f"{elsewhere.url}/v2/{NAME}/tags/list?last=a",  # another host
            f"https://{up.netloc}/v2/{NAME}/tags/list?last=a",  # same host, another scheme
            f"http://127.0.0.1:{elsewhere.port}/v2/{NAME}/tags/list",  # another port
        ):
            up.json(
                f"/v2/{NAME}/tags/list",
                {"name": NAME, "tags": ["a"]},
                headers={"Link": f'<{target}>; rel="next"'},
            )
            name = f"link{len(up.requests)}"
            task = await _failed_sync(mirror, name, up.url, include_tags=["*"])
            assert task.error.reason == "UPSTREAM_LINK_REFUSED", task.error
        assert elsewhere.requests == []
        await _healthy(mirror)


async def test_credentials_go_only_to_the_registry_origin(mirror: Mirror) -> None:
    """Blob GETs redirect to another port of the same host (a CDN-like hop): the hop is
    followed, but Authorization goes only to the registry's own scheme+host+port."""
    image = _image("creds")
    async with HostileUpstream() as up, HostileUpstream() as cdn:
        expected = "Basic " + base64.b64encode(b"puller:pw").decode()

        async def guarded(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != expected:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            return web.Response(
                body=image.manifest,
                headers={"Content-Type": image.media_type, "Docker-Content-Digest": image.digest},
            )

        for method in ("GET", "HEAD"):
            up.route(method, f"/v2/{NAME}/manifests/v1", guarded)
            up.route(method, f"/v2/{NAME}/manifests/{image.digest}", guarded)
        for digest, data in image.blobs.items():
            cdn.json(f"/cdn/{digest}", data, content_type="application/octet-stream")

            async def redirect(request: web.Request, d: str = digest) -> web.StreamResponse:
                raise web.HTTPTemporaryRedirect(f"{cdn.url}/cdn/{d}")

            up.route("GET", f"/v2/{NAME}/blobs/{digest}", redirect)
        await mirror.setup(
            "creds", up.url, NAME, include_tags=["v1"], username="puller", password="pw"
        )
        task = (await mirror.sync("creds")).task
        assert task.state == pb.TASK_STATE_COMPLETED, task.error
        assert len(cdn.requests) == len(image.blobs)
        assert all("Authorization" not in headers for _, _, headers in cdn.requests)
        assert any(h.get("Authorization") == expected for _, _, h in up.requests)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """127.0.0.2 plays the private network here, so upstreams on 127.0.0.1 are "public"
    (the only addresses a test may use are loopback ones)."""
    limits = dataclasses.replace(
        settings.limits,
        private_networks=("127.0.0.2/32",),
        max_tag_list_pages=50,
        max_tag_list_bytes=4 * 1024 * 1024,
        metadata_timeout=1.0,
    )
    return dataclasses.replace(settings, limits=limits)


async def test_public_upstream_may_not_redirect_to_a_private_address(mirror: Mirror) -> None:
    image = _image("redirect-private")
    async with HostileUpstream() as up, HostileUpstream("127.0.0.2") as private:
        _serve(private, image)

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{private.url}{request.path}")

        for method in ("GET", "HEAD"):
            up.route(method, f"/v2/{NAME}/manifests/v1", redirect)
        task = await _failed_sync(mirror, "redir", up.url, include_tags=["v1"])
        assert task.error.reason == "UPSTREAM_PRIVATE_ADDRESS_REFUSED", task.error
        assert "127.0.0.2" in task.error.message
        assert private.requests == []
        await _healthy(mirror)
        await _clean_sync(mirror, up, "redir-clean")


@pytest.mark.parametrize("realm_host", ["127.0.0.2", "localhost"])
async def test_public_upstream_may_not_hand_a_private_token_realm(
    mirror: Mirror, realm_host: str
) -> None:
    async with HostileUpstream() as up, HostileUpstream("127.0.0.2") as private:
        realm = f"http://{realm_host}:{private.port}/token"

        async def challenge(request: web.Request) -> web.StreamResponse:
            return web.Response(
                status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'}
            )

        for method in ("GET", "HEAD"):
            up.route(method, f"/v2/{NAME}/manifests/v1", challenge)
        task = await _failed_sync(mirror, "realm", up.url, include_tags=["v1"])
        assert task.error.reason == "UPSTREAM_REALM_REFUSED", task.error
        assert private.requests == []
        await _healthy(mirror)


# ---------------------------------------------------------------------------- strict JSON
def _manifest_bytes(image: img.Image, mutate: str) -> bytes:
    text = image.manifest.decode()
    if mutate == "duplicate-layers":
        return text.replace('"layers":', '"layers": [], "layers":', 1).encode()
    if mutate == "case-variant":
        return text.replace('"layers":', '"Layers": [], "layers":', 1).encode()
    if mutate == "deep":
        return (text[:-1] + ', "annotations": {"x": ' + "[" * 5000 + "]" * 5000 + "}}").encode()
    raise AssertionError(mutate)


@pytest.mark.parametrize("mutate", ["duplicate-layers", "case-variant", "deep"])
async def test_ambiguous_or_deep_manifests_are_refused(mirror: Mirror, mutate: str) -> None:
    image = _image(f"strict-{mutate}")
    data = _manifest_bytes(image, mutate)
    async with HostileUpstream() as up:
        up.image(NAME, "v1", data, media_type=image.media_type, blobs=image.blobs)
        task = await _failed_sync(mirror, "strict", up.url, include_tags=["v1"])
        assert task.error.reason == "UPSTREAM_MANIFEST_INVALID", task.error
        assert task.error.code == "FAILED_PRECONDITION"
        await _healthy(mirror)
        await _clean_sync(mirror, up, "strict-clean")


async def test_case_variant_keys_in_an_index_are_refused(mirror: Mirror) -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": img.OCI_INDEX,
        "manifests": [],
        "Manifests": [{"mediaType": img.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1}],
    }
    async with HostileUpstream() as up:
        up.image(NAME, "v1", json.dumps(index).encode(), media_type=img.OCI_INDEX)
        task = await _failed_sync(mirror, "caseidx", up.url, include_tags=["v1"])
        assert task.error.reason == "UPSTREAM_MANIFEST_INVALID", task.error
        assert "case" in task.error.message


async def test_deep_tag_list_is_a_clear_error(mirror: Mirror) -> None:
    async with HostileUpstream() as up:
        body = b'{"name": "app", "tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        up.json(f"/v2/{NAME}/tags/list", body)
        task = await _failed_sync(mirror, "deeptags", up.url, include_tags=["*"])
        assert task.error.reason == "UPSTREAM_TAG_LIST_INVALID", task.error
        await _healthy(mirror)


# ---------------------------------------------------------------------------- bounds
async def test_declared_blob_size_over_the_maximum_is_refused(mirror: Mirror) -> None:
    image = _image("huge-declared")
    doc = json.loads(image.manifest)
    doc["layers"][0]["size"] = 2**62
    data = json.dumps(doc).encode()
    async with HostileUpstream() as up:
        up.image(NAME, "v1", data, media_type=image.media_type, blobs=image.blobs)
        task = await _failed_sync(mirror, "huge", up.url, include_tags=["v1"])
        assert task.error.reason == "UPSTREAM_BLOB_TOO_LARGE", task.error
        blob_gets = [p for m, p, _ in up.requests if "/blobs/" in p]
        assert blob_gets == []  # refused before any download
        await _healthy(mirror)


async def test_nested_indexes_are_bounded(mirror: Mirror) -> None:
    """An index of an index of ... (deeper than max_index_depth = 4) is refused."""
    image = _image("deep-index")
    async with HostileUpstream() as up:
        child = (image.digest, image.media_type, len(image.manifest))
        _serve(up, image, "leaf")
        for level in range(6):
            doc = {
                "schemaVersion": 2,
                "mediaType": img.OCI_INDEX,
                "manifests": [{"mediaType": child[1], "digest": child[0], "size": child[2]}],
            }
            data = json.dumps(doc).encode()
            digest = up.image(NAME, f"level{level}", data, media_type=img.OCI_INDEX)
            child = (digest, img.OCI_INDEX, len(data))
        task = await _failed_sync(mirror, "deepidx", up.url, include_tags=["level5"])
        assert task.error.reason == "UPSTREAM_INDEX_TOO_DEEP", task.error
        await _healthy(mirror)
        # Depth 4 is within the limit.
        await mirror.setup("okidx", up.url, NAME, include_tags=["level3"], max_retries=0)
        task = (await mirror.sync("okidx")).task
        assert task.state == pb.TASK_STATE_COMPLETED, task.error


async def test_tag_list_pages_are_bounded(mirror: Mirror) -> None:
    """A tag list that pages forever (a new `last` each time) stops at max_tag_list_pages."""
    async with HostileUpstream() as up:

        async def endless(request: web.Request) -> web.StreamResponse:
            page = int(request.query.get("page", "0"))
            link = f'</v2/{NAME}/tags/list?page={page + 1}>; rel="next"'
            return web.json_response({"name": NAME, "tags": [f"t{page}"]}, headers={"Link": link})

        up.route("GET", f"/v2/{NAME}/tags/list", endless)
        task = await _failed_sync(mirror, "endless", up.url, include_tags=["*"])
        assert task.error.reason == "UPSTREAM_TAG_LIST_TOO_LONG", task.error
        pages = [p for _, p, _ in up.requests if "/tags/list" in p]
        assert len(pages) == 50  # the test's max_tag_list_pages
        await _healthy(mirror)


async def test_tag_list_bytes_are_bounded(mirror: Mirror) -> None:
    async with HostileUpstream() as up:
        # Two pages of ~2.6 MB: each under the per-page cap, together over the test's 4 MiB.
        tags = [f"tag-{i:08d}-xxxxxxxxx" for i in range(2 * 100_000)]
        up.route("GET", f"/v2/{NAME}/tags/list", _pages(tags, 100_000))
        task = await _failed_sync(mirror, "bigtags", up.url, include_tags=["*"])
        assert task.error.reason == "UPSTREAM_RESPONSE_TOO_LARGE", task.error
        await _healthy(mirror)


async def test_stalled_metadata_request_hits_the_default_deadline(mirror: Mirror) -> None:
    """A manifest GET that never answers ends at metadata_timeout (1 s here), not never."""
    released = asyncio.Event()
    async with HostileUpstream() as up:
        stalled = asyncio.Event()

        async def stall(request: web.Request) -> web.StreamResponse:
            stalled.set()
            # Never answers while the sync waits; let go once the test is done, so the fake
            # upstream's shutdown need not wait out a long sleep.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), 30)
            return web.Response(status=500)

        for method in ("GET", "HEAD"):
            up.route(method, f"/v2/{NAME}/manifests/v1", stall)
        try:
            task = await _failed_sync(mirror, "stall", up.url, include_tags=["v1"])
        finally:
            released.set()
        assert stalled.is_set()
        assert task.error.code == "UNAVAILABLE", task.error
        await _healthy(mirror)


# ---------------------------------------------------------------------------- bounded work
def _pages(tags: list[str], size: int):  # type: ignore[no-untyped-def]
    async def page(request: web.Request) -> web.StreamResponse:
        start = int(request.query.get("start", "0"))
        headers = {}
        if start + size < len(tags):
            headers["Link"] = f'</v2/{NAME}/tags/list?start={start + size}>; rel="next"'
        body = {"name": NAME, "tags": tags[start : start + size]}
        return web.json_response(body, headers=headers)

    return page


async def test_too_many_tag_patterns_are_invalid(mirror: Mirror) -> None:
    """35,000 include_tags (the issue's remote) is INVALID_ARGUMENT, one violation."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mirror.create_remote(
            "many", "http://127.0.0.1:9", NAME, include_tags=[f"v{i}.*" for i in range(35_000)]
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info is not None and "256" in caught.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mirror.create_remote("long", "http://127.0.0.1:9", NAME, include_tags=["v" * 129])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _healthy(mirror)


async def test_filtering_100k_tags_keeps_the_server_responsive(mirror: Mirror) -> None:
    """A 100k-tag listing filtered by 256 wildcard patterns: health checks answer within a
    second all along, and the filter selects exactly the tags the patterns match."""
    image = _image("many-tags")
    async with HostileUpstream() as up:
        tags = [f"{i % 997}-build-{i:06d}" for i in range(100_000)]
        # Pages of 10k tags, ~1.7 MB in all.
        up.route("GET", f"/v2/{NAME}/tags/list", _pages([*tags, "keep-me"], 10_000))
        _serve(up, image, "keep-me")
        patterns = ["keep-*", *[f"nomatch{i}-*[0-9]?x" for i in range(254)], "*-zz*"]
        await mirror.setup("many", up.url, NAME, include_tags=patterns, max_retries=0)
        task = await mirror.start_sync("many")
        checks = 0
        while (await mirror.get_task(task.name)).state not in (
            pb.TASK_STATE_COMPLETED,
            pb.TASK_STATE_FAILED,
        ):
            await _healthy(mirror)
            checks += 1
            await asyncio.sleep(0.02)
        final = await mirror.wait(task.name)
        assert final.state == pb.TASK_STATE_COMPLETED, final.error
        version = await mirror.version("many")
        assert version.content_summary.present["container.tag"] == 1
        assert checks > 0
