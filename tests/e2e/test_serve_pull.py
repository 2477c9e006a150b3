"""Pull what a distribution serves with the real skopeo: byte-identical to what was pushed.

Flow: push generated images to a real docker-registry, sync them over gRPC (IMMEDIATE),
publish the repository at ``mirror/app`` and pull with ``skopeo inspect`` / ``skopeo copy
--all --preserve-digests``. The OCI layout skopeo writes must hold exactly the pushed
manifests, configs and layers (every file re-hashing to its name).

A Docker manifest list is copied to ``dir:`` instead of ``oci:``: skopeo 1.9.3 itself refuses
to write a Docker list into an OCI layout without converting it ("Manifest list must be
converted ... Instructed to preserve digests"), whatever the source registry.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import (
    E2E,
    check_dir_layout,
    check_oci_layout,
    needs_registry,
    needs_skopeo,
)
from tests.support import images as img
from tests.support.registry import RegistryProcess
from tests.support.s3 import SERVING_BACKENDS

pytestmark = [pytest.mark.registry, needs_registry, pytest.mark.skopeo, needs_skopeo]

BASE = "mirror/app"

BUILDERS = {
    "docker-schema2": lambda: img.make_image("pull-docker", layers=2, layer_size=2048),
    "oci-image": lambda: img.make_image("pull-oci", layers=2, layer_size=2048, media="oci"),
    "oci-index": lambda: img.make_index("pull-index", media="oci"),
}


async def push(registry: RegistryProcess, name: str, tag: str, artifact: img.Image | img.Index):
    if isinstance(artifact, img.Index):
        digest = await img.push_index(registry.url, name, tag, artifact)
    else:
        digest = await img.push_image(registry.url, name, tag, artifact)
    assert digest == artifact.digest


@SERVING_BACKENDS
@pytest.mark.parametrize("kind", list(BUILDERS))
async def test_skopeo_inspect_and_copy_all_are_byte_identical(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str, kind: str
) -> None:
    artifact = BUILDERS[kind]()
    await push(upstream_registry, upstream_name, "v1", artifact)
    await e2e.publish("app", upstream_registry.url, upstream_name, BASE)

    info = await e2e.inspect(BASE, "v1")
    assert info["Digest"] == artifact.digest
    assert info["Name"] == f"{e2e.endpoint}/{BASE}"
    assert info["RepoTags"] == ["v1"]
    assert await e2e.inspect_raw(BASE, "v1") == artifact.manifest

    out = await e2e.copy_oci(BASE, "v1")
    check_oci_layout(out, artifact)

    if isinstance(artifact, img.Index):
        await check_one_platform(e2e, artifact)


async def check_one_platform(e2e: E2E, index: img.Index) -> None:
    """Without ``--all`` skopeo resolves the index to one child, fetched by digest."""
    arm64 = index.child("linux/arm64/v8")
    override = ("--override-arch", "arm64", "--override-variant", "v8")
    info = await e2e.inspect(BASE, "v1", *override)
    assert info["Digest"] == index.digest
    assert info["Architecture"] == "arm64"
    assert set(info["Layers"]) == {layer.digest for layer in arm64.layers}  # type: ignore[arg-type]

    out = e2e.new_dir("arm64")
    result = await e2e.skopeo(
        *override,
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        e2e.ref(BASE, "v1"),
        f"oci:{out}",
    )
    result.check()
    check_oci_layout(out, arm64)


async def test_skopeo_copy_all_of_a_docker_manifest_list_is_byte_identical(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    mlist = img.make_index("pull-list", media="docker")
    assert len(mlist.children) == 3
    await push(upstream_registry, upstream_name, "v1", mlist)
    await e2e.publish("app", upstream_registry.url, upstream_name, BASE)

    info = await e2e.inspect(BASE, "v1")
    assert info["Digest"] == mlist.digest
    raw = await e2e.inspect_raw(BASE, "v1")
    assert raw == mlist.manifest
    assert json.loads(raw)["mediaType"] == img.DOCKER_MANIFEST_LIST

    out = e2e.new_dir("dir")
    (await e2e.copy(BASE, "v1", f"dir:{out}")).check()
    check_dir_layout(out, mlist)
