"""No cross-repository influence: what one repository's upstream declares never changes what
another repository serves, and on-demand layers stay fetchable from the remote they were
synced from after the repository is re-pointed or that remote is deleted."""

from __future__ import annotations

import json

import pytest

from protos import mirror_pb2 as pb
from tests.e2e.conftest import E2E, blob_path, needs_registry
from tests.support import images as img
from tests.support.hostile import HostileUpstream
from tests.support.registry import RegistryProcess

pytestmark = [pytest.mark.registry, needs_registry]


async def _get(e2e: E2E, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    async with e2e.http.request(method, e2e.url(path)) as resp:
        body = b""
        try:
            body = await resp.read()
        except Exception:  # a pull-through that fails mid-body cuts the connection
            body = b"<cut>"
        return resp.status, dict(resp.headers), body


async def test_lying_size_of_a_shared_layer_stays_in_its_repository(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    """A hostile ON_DEMAND upstream declares a shared layer's size as 1 and is synced first;
    the honest repository still answers that layer with its true size and bytes, HEAD and
    GET, before and after the liar's failed pull."""
    image = img.make_image("cross-repo-shared", layers=1, layer_size=4096)
    layer = image.layers[0]
    lie = json.loads(image.manifest)
    lie["layers"][0]["size"] = 1
    lie_bytes = json.dumps(lie).encode()
    async with HostileUpstream() as liar:
        liar.image("app", "v1", lie_bytes, media_type=image.media_type, blobs=image.blobs)
        await e2e.publish("liar", liar.url, "app", "liar/app", pb.POLICY_ON_DEMAND)
        await img.push_image(upstream_registry.url, upstream_name, "v1", image)
        await e2e.publish(
            "honest", upstream_registry.url, upstream_name, "honest/app", pb.POLICY_ON_DEMAND
        )
        path = f"/v2/honest/app/blobs/{layer.digest}"
        status, headers, _ = await _get(e2e, "HEAD", path)
        assert (status, headers["Content-Length"]) == (200, str(len(layer.blob)))

        status, _, body = await _get(e2e, "GET", f"/v2/liar/app/blobs/{layer.digest}")
        assert body != layer.blob  # the lie cannot be served whole
        assert not blob_path(e2e.data_dir, layer.digest).exists()  # nor stored

        status, headers, body = await _get(e2e, "GET", path)
        assert status == 200
        assert headers["Content-Length"] == str(len(layer.blob))
        assert body == layer.blob
        assert blob_path(e2e.data_dir, layer.digest).read_bytes() == layer.blob


async def test_on_demand_layers_follow_the_remote_they_came_from(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    """Version 1 comes from remote A (ON_DEMAND, layers not stored) and is pinned; the
    repository is then synced from remote B (another upstream) and A is deleted. Version 1's
    layers are still pulled through A: one after the re-pointing, one after the deletion."""
    first = img.make_image("source-a", layers=2, layer_size=2048)
    await img.push_image(upstream_registry.url, upstream_name, "v1", first)
    await e2e.setup("app", upstream_registry.url, upstream_name, pb.POLICY_ON_DEMAND)
    await e2e.sync("app")
    await e2e.distribute("pinned", "pinned/app", version="repositories/app/versions/1")

    other = img.make_image("source-b", layers=1, layer_size=1024)
    async with HostileUpstream() as b:
        b.image("other", "v1", other.manifest, media_type=other.media_type, blobs=other.blobs)
        await e2e.remotes.CreateRemote(
            pb.CreateRemoteRequest(
                remote_id="b",
                remote=pb.Remote(
                    url=b.url, upstream_name="other", policy=pb.POLICY_ON_DEMAND, max_retries=0
                ),
            )
        )
        await e2e.sync("app", remote="b")  # the repository now points at B
        for number, layer in enumerate(first.layers):
            if number == 1:
                await e2e.remotes.DeleteRemote(pb.DeleteRemoteRequest(name="remotes/app"))
                listed = await e2e.remotes.ListRemotes(pb.ListRemotesRequest())
                assert [r.name for r in listed.remotes] == ["remotes/b"]
            status, _, body = await _get(e2e, "GET", f"/v2/pinned/app/blobs/{layer.digest}")
            assert (status, body) == (200, layer.blob), number
        assert not any(first.layers[0].digest in p for _, p, _ in b.requests)
        # The user's name is free again for a new remote.
        await e2e.remotes.CreateRemote(
            pb.CreateRemoteRequest(
                remote_id="app",
                remote=pb.Remote(url=b.url, upstream_name="other", policy=pb.POLICY_ON_DEMAND),
            )
        )
