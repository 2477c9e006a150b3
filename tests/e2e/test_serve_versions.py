"""A distribution pinned to a version keeps serving it; one on the repository follows syncs."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, check_oci_layout, needs_registry, needs_skopeo
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = [pytest.mark.registry, needs_registry]


async def manifest_digest(e2e: E2E, base_path: str, tag: str) -> tuple[str, bytes]:
    async with e2e.http.get(
        e2e.url(f"/v2/{base_path}/manifests/{tag}"),
        headers={"Accept": ", ".join(img.ALL_MANIFEST_TYPES)},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["Docker-Content-Digest"], await resp.read()


@pytest.mark.skopeo
@needs_skopeo
async def test_pinned_distribution_keeps_serving_its_version(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    a = img.make_image("versions-a", layers=1, media="oci")
    b = img.make_image("versions-b", layers=1, media="oci")
    assert a.digest != b.digest
    await img.push_image(upstream_registry.url, upstream_name, "app", a)
    await e2e.setup("r", upstream_registry.url, upstream_name)
    first = await e2e.sync("r")
    assert "repositories/r/versions/1" in first.created_resources

    pinned = await e2e.distribute("pinned", "pinned", version="repositories/r/versions/1")
    latest = await e2e.distribute("latest", "latest", repository="repositories/r")
    assert pinned.version == "repositories/r/versions/1"
    assert pinned.repository == ""
    assert latest.repository == "repositories/r"
    assert latest.version == ""
    for base in ("pinned", "latest"):
        assert (await e2e.inspect(base, "app"))["Digest"] == a.digest

    await img.push_image(upstream_registry.url, upstream_name, "app", b)  # re-tag upstream
    second = await e2e.sync("r")
    assert "repositories/r/versions/2" in second.created_resources

    assert (await e2e.inspect("pinned", "app"))["Digest"] == a.digest
    assert (await e2e.inspect("latest", "app"))["Digest"] == b.digest
    assert await manifest_digest(e2e, "pinned", "app") == (a.digest, a.manifest)
    assert await manifest_digest(e2e, "latest", "app") == (b.digest, b.manifest)
    check_oci_layout(await e2e.copy_oci("pinned", "app", "pinned"), a)
    check_oci_layout(await e2e.copy_oci("latest", "app", "latest"), b)

    # Content is looked up within the served version: B is unknown to the pinned one.
    async with e2e.http.get(e2e.url(f"/v2/pinned/manifests/{b.digest}")) as resp:
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    async with e2e.http.get(e2e.url(f"/v2/pinned/blobs/{b.layers[0].digest}")) as resp:
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["code"] == "BLOB_UNKNOWN"
