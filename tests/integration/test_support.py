"""Integration tests of the test-support layer against a real ``docker-registry``.

They prove that the helpers other tests build on work: deterministic images pushed
over the HTTP API come back byte-identical, htpasswd and token auth behave like a real
private registry, the fault proxy injects faults and otherwise passes bytes through,
and tag listing works with more than 100 tags.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess, registry_available
from tests.support.tokens import TokenIssuer, decode_jwt_unverified

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryProcess]:
    """One anonymous registry shared by the tests of this module (sync start/close)."""
    with RegistryProcess() as reg:
        yield reg


def test_images_are_deterministic() -> None:
    a, b = img.make_image(7, media="oci"), img.make_image(7, media="oci")
    assert a.manifest == b.manifest and a.blobs == b.blobs
    assert img.make_image(8).digest != a.digest
    config = json.loads(a.config)
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(layer.blob)).hexdigest() for layer in a.layers
    ]
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    base = img.make_layer("base", 4096)
    one = img.make_image(1, shared_base=base)
    two = img.make_image(2, shared_base=base.blob)
    assert one.layers[0] == two.layers[0] == base
    assert len(set(one.blobs) & set(two.blobs)) == 1


@pytest.mark.parametrize("media", ["docker", "oci"])
async def test_image_roundtrip(registry: RegistryProcess, media: img.Media) -> None:
    image = img.make_image(f"roundtrip-{media}", layers=2, layer_size=8192, media=media)
    digest = await img.push_image(registry.url, f"lib/{media}", "v1", image)
    assert digest == image.digest
    body, media_type, got_digest = await img.get_manifest(registry.url, f"lib/{media}", "v1")
    assert (body, media_type, got_digest) == (image.manifest, image.media_type, image.digest)
    manifest = json.loads(body)
    expected_layer = img.DOCKER_LAYER if media == "docker" else img.OCI_LAYER
    assert {layer["mediaType"] for layer in manifest["layers"]} == {expected_layer}
    for blob_digest, data in image.blobs.items():
        fetched = await img.get_blob(registry.url, f"lib/{media}", blob_digest)
        assert img.digest_of(fetched) == blob_digest and fetched == data


@pytest.mark.parametrize("media", ["oci", "docker"])
async def test_index_roundtrip(registry: RegistryProcess, media: img.Media) -> None:
    index = img.make_index(f"multi-{media}", media=media)
    assert [str(c.platform) for c in index.children] == [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
    ]
    assert await img.push_index(registry.url, "lib/multi", media, index) == index.digest
    async with img.RegistryClient(registry.url) as client:
        body, media_type, digest = await client.get_manifest("lib/multi", media)
        assert (body, media_type, digest) == (index.manifest, index.media_type, index.digest)
        expected_type = img.OCI_INDEX if media == "oci" else img.DOCKER_MANIFEST_LIST
        assert media_type == expected_type
        for entry in json.loads(body)["manifests"]:
            child_body, _, child_digest = await client.get_manifest("lib/multi", entry["digest"])
            assert child_digest == entry["digest"] == img.digest_of(child_body)
        arm = index.child("linux/arm/v7")
        assert json.loads(arm.config)["variant"] == "v7"
        assert await client.blob_exists("lib/multi", arm.layers[0].digest)


async def test_cosign_signature_and_delete(registry: RegistryProcess) -> None:
    image = img.make_image("signed", media="oci")
    sig = img.make_cosign_signature(image.digest, seed=1)
    tag = img.cosign_signature_tag(image.digest)
    assert tag == "sha256-" + image.digest.removeprefix("sha256:") + ".sig"
    async with img.RegistryClient(registry.url) as client:
        await client.push_image("lib/signed", "v1", image)
        await client.push_image("lib/signed", "also-v1", image)
        await client.push_image("lib/signed", tag, sig)
        body, _, _ = await client.get_manifest("lib/signed", tag)
        (layer,) = json.loads(body)["layers"]
        assert layer["mediaType"] == img.COSIGN_SIMPLESIGNING
        assert "dev.cosignproject.cosign/signature" in layer["annotations"]
        payload = json.loads(await client.get_blob("lib/signed", layer["digest"]))
        assert payload["critical"]["image"]["docker-manifest-digest"] == image.digest
        # Deleting "v1" deletes the digest, which takes "also-v1" with it.
        assert await client.delete_tag("lib/signed", "v1") == image.digest
        assert await client.head_manifest("lib/signed", "also-v1") is None
        assert sorted(await client.list_tags("lib/signed")) == [tag]


async def test_stop_and_start_keep_port_and_data() -> None:
    async with RegistryProcess() as reg:
        image = img.make_image("restart")
        await img.push_image(reg.url, "lib/restart", "v1", image)
        port = reg.port
        await reg.astop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await img.get_manifest(reg.url, "lib/restart", "v1")
        await reg.astart()
        assert reg.port == port
        assert (await img.get_manifest(reg.url, "lib/restart", "v1"))[2] == image.digest


async def test_htpasswd_auth() -> None:
    async with RegistryProcess("htpasswd", users={"alice": "wonderland"}) as reg:
        image = img.make_image("htpasswd")
        for bad in (None, ("alice", "wrong"), ("bob", "wonderland")):
            with pytest.raises(img.RegistryHTTPError) as err:
                await img.push_image(reg.url, "private/app", "v1", image, auth=bad)
            assert err.value.status == 401
        assert reg.credentials == ("alice", "wonderland")
        await img.push_image(reg.url, "private/app", "v1", image, auth=reg.credentials)
        got = await img.get_manifest(reg.url, "private/app", "v1", auth=reg.credentials)
        assert got[2] == image.digest


async def test_token_auth_roundtrip() -> None:
    async with RegistryProcess("token", users={"alice": "pw"}) as reg:
        issuer = reg.issuer
        assert issuer is not None
        image = img.make_image("token", media="oci")
        await img.push_image(reg.url, "team/app", "v1", image, auth=("alice", "pw"))
        assert issuer.requests >= 1
        got = await img.get_manifest(reg.url, "team/app", "v1", auth=("alice", "pw"))
        assert got[2] == image.digest

        # The token is a JWT with an x5c chain and the standard claims.
        async with aiohttp.ClientSession() as session:
            params = {"service": issuer.service, "scope": "repository:team/app:pull,push"}
            basic = {"Authorization": img.basic_auth_header(("alice", "pw"))}
            async with session.get(issuer.realm, params=params, headers=basic) as resp:
                assert resp.status == 200
                data = await resp.json()
            header, claims = decode_jwt_unverified(data["token"])
            assert header["alg"] == "ES256" and len(header["x5c"]) == 1
            assert claims["aud"] == issuer.service and claims["iss"] == issuer.issuer
            assert claims["access"] == [
                {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
            ]
            assert data["expires_in"] == 300 and data["access_token"] == data["token"]
            bad = {"Authorization": img.basic_auth_header(("alice", "nope"))}
            async with session.get(issuer.realm, params=params, headers=bad) as resp:
                assert resp.status == 401
            async with session.get(issuer.realm, params=params) as resp:
                assert resp.status == 401  # anonymous not allowed

        with pytest.raises(img.RegistryHTTPError) as err:
            await img.get_manifest(reg.url, "team/app", "v1", auth=("alice", "nope"))
        assert err.value.status == 401

        # Anonymous pull-only tokens once allowed: pull works, push is refused.
        issuer.allow_anonymous = True
        assert (await img.get_manifest(reg.url, "team/app", "v1"))[2] == image.digest
        with pytest.raises(img.RegistryHTTPError) as err:
            await img.push_image(reg.url, "team/app", "v2", img.make_image("anon"))
        assert err.value.status == 401


def test_token_registry_sync_mode() -> None:
    """Sync start(): the owned issuer runs in a background thread."""
    with RegistryProcess("token") as reg:
        assert reg.credentials is not None
        image = img.make_image("sync")
        assert img.push_image_sync(reg.url, "sync/app", "v1", image, reg.credentials) == (
            image.digest
        )
        with pytest.raises(urllib.error.HTTPError) as err, urllib.request.urlopen(reg.url + "/v2/"):
            pass
        assert err.value.code == 401
        err.value.close()


async def test_external_issuer_and_fault_injection(registry: RegistryProcess) -> None:
    async with TokenIssuer({"u": "p"}) as issuer:
        issuer.fail(503, times=1)
        async with aiohttp.ClientSession() as session:
            async with session.get(issuer.realm) as resp:
                assert resp.status == 503
            headers = {"Authorization": img.basic_auth_header(("u", "p"))}
            async with session.get(issuer.realm, headers=headers) as resp:
                assert resp.status == 200
        assert issuer.requests == 2


async def test_fault_proxy(registry: RegistryProcess) -> None:
    image = img.make_image("proxied", layers=1, layer_size=64 * 1024)
    layer = image.layers[0]
    async with FaultProxy(registry.url) as proxy:
        # Pushing through the proxy works: upload Locations are rewritten to the proxy.
        await img.push_image(proxy.url, "lib/proxied", "v1", image)
        assert proxy.hits("PUT", "/blobs/uploads/") == 2
        assert all(registry.url not in p for _, p in proxy.requests)

        proxy.fail("GET", "/manifests/v1", status=429, times=2, headers={"Retry-After": "1"})
        accept = {"Accept": img.DOCKER_MANIFEST}
        url = f"{proxy.url}/v2/lib/proxied/manifests/v1"
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            statuses = []
            for _ in range(3):
                async with session.get(url, headers=accept) as resp:
                    statuses.append(resp.status)
                    if resp.status == 429:
                        assert resp.headers["Retry-After"] == "1"
                    else:
                        assert await resp.read() == image.manifest
            assert statuses == [429, 429, 200]
            assert proxy.hits("GET", "/manifests/v1") == 3

            blob_url = f"{proxy.url}/v2/lib/proxied/blobs/{layer.digest}"
            async with session.head(blob_url) as resp:  # HEAD keeps Content-Length
                assert resp.headers["Content-Length"] == str(layer.size)
            proxy.corrupt("/blobs/")
            async with session.get(blob_url) as resp:
                body = await resp.read()
                assert len(body) == layer.size and body != layer.blob
            proxy.reset("/blobs/", after_bytes=1000)
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.get(blob_url) as resp:
                    await resp.read()
            async with session.get(blob_url) as resp:  # raw gzip bytes pass through
                assert await resp.read() == layer.blob

            proxy.block("/blobs/")
            task = asyncio.create_task(session.get(blob_url))
            await proxy.wait_blocked(1)
            assert not task.done()
            proxy.release()
            async with await task as resp:
                assert await resp.read() == layer.blob

            proxy.slow("/blobs/", bytes_per_sec=1_000_000)
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with session.get(blob_url) as resp:
                assert await resp.read() == layer.blob
            assert loop.time() - started >= 0.9 * layer.size / 1_000_000


async def test_tag_list_pagination(registry: RegistryProcess) -> None:
    repo = "lib/many"
    image = img.make_image("many", layers=1, layer_size=256)
    tags = [f"t{i:03d}" for i in range(105)]
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(repo, "latest", image)
        sem = asyncio.Semaphore(8)

        async def tag(name: str) -> None:
            async with sem:
                await client.put_manifest(repo, name, image.manifest, image.media_type)

        await asyncio.gather(*(tag(t) for t in tags))
        expected = sorted([*tags, "latest"])
        assert sorted(await client.list_tags(repo, n=50)) == expected

        # Distribution 2.8 ignores ?n= for tags (all 106 in one page, no Link) but may
        # paginate in other versions: accept either behaviour from the real registry.
        _, headers, body = await client.request("GET", f"/v2/{repo}/tags/list?n=50")
        page = json.loads(body)["tags"]
        assert len(page) == 50 if "Link" in headers else sorted(page) == expected

        # The catalog does paginate with n and a Link header.
        await client.push_image("lib/zzz-second", "v1", image)
        _, headers, body = await client.request("GET", "/v2/_catalog?n=1")
        assert len(json.loads(body)["repositories"]) == 1
        assert 'rel="next"' in headers["Link"]

    # The fault proxy emulates spec-conformant tag pagination.
    async with FaultProxy(registry.url) as proxy, img.RegistryClient(proxy.url) as client:
        proxy.paginate_tags(50)
        _, headers, body = await client.request("GET", f"/v2/{repo}/tags/list")
        assert json.loads(body)["tags"] == expected[:50]
        assert headers["Link"] == f'</v2/{repo}/tags/list?last={expected[49]}&n=50>; rel="next"'
        assert await client.list_tags(repo) == expected
        assert proxy.hits("GET", "/tags/list") == 4  # 1 + 3 pages (50 + 50 + 6)
        assert await client.list_tags(repo, n=40) == expected
