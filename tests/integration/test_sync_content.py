"""Sync content end to end: what a first sync stores, that a re-sync fetches nothing, and
what the on-demand policies leave for later. Real registry, real gRPC server, bytes on disk."""

from __future__ import annotations

import pytest

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    LAYER_SIZE,
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    assert_storage_sound,
    check_event_order,
    config_digests,
    counts,
    layer_digests,
    summary,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import proxy_fixture as proxy_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess
from tests.support.s3 import STORAGE_BACKENDS

pytestmark = REGISTRY_MARKS


async def push_mixed(url: str, name: str) -> Upstream:
    """A docker schema2 image and an OCI image sharing a base layer, a 3-platform OCI index
    and a 2-platform docker manifest list."""
    upstream = Upstream(url, name)
    base = img.make_layer("shared-base", LAYER_SIZE)
    await upstream.push(
        "docker", img.make_image("docker", media="docker", shared_base=base, layer_size=LAYER_SIZE)
    )
    await upstream.push(
        "oci", img.make_image("oci", media="oci", shared_base=base, layer_size=LAYER_SIZE)
    )
    await upstream.push("multi-oci", img.make_index("multi-oci", media="oci"))
    await upstream.push(
        "multi-docker", img.make_index("multi-docker", img.PLATFORMS[:2], media="docker")
    )
    return upstream


@STORAGE_BACKENDS
async def test_first_sync_stores_exactly_what_was_pushed(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_mixed(registry.url, upstream_name)
    expected = upstream.expected()
    # Two images sharing a base layer (7 distinct blobs), 3 x 2 and 2 x 2 for the indexes.
    assert expected.counts() == counts(blobs=17, manifests=9, tags=4)
    await mirror.setup("mixed", registry.url, upstream_name)

    run = await mirror.sync("mixed")

    check_event_order(run.events)
    task = run.task
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert list(task.created_resources) == ["repositories/mixed/versions/1"]
    assert task.parameters["repository"] == "repositories/mixed"
    assert task.parameters["remote"] == "remotes/mixed"
    repo = await mirror.repository("mixed")
    assert repo.latest_version == "repositories/mixed/versions/1"
    assert repo.latest_version_number == 1
    assert repo.mirror is False

    version = await mirror.version("mixed", 1)
    assert version.base_version == "repositories/mixed/versions/0"
    assert summary(version) == {
        "added": expected.counts(),
        "removed": {},
        "present": expected.counts(),
    }
    assert await mirror.version_numbers("mixed") == [1, 0]
    await mirror.assert_matches("mixed", expected)

    manifests = await mirror.manifests("mixed")
    # Images: config and blobs are those of the pushed manifest.
    for tag in ("docker", "oci"):
        image = upstream.artifacts[upstream.tags[tag]]
        assert isinstance(image, img.Image)
        got = manifests[image.digest]
        assert got.size == image.size
        assert got.config_digest == image.config_digest
        assert sorted(got.blobs) == sorted(image.blobs)
        assert list(got.manifests) == []
    # Indexes: every child with its platform.
    for tag in ("multi-oci", "multi-docker"):
        index = upstream.artifacts[upstream.tags[tag]]
        assert isinstance(index, img.Index)
        got = manifests[index.digest]
        assert got.media_type == index.media_type
        assert got.config_digest == ""
        assert list(got.blobs) == []
        children = {
            ref.digest: (ref.media_type, ref.os, ref.architecture, ref.variant)
            for ref in got.manifests
        }
        assert children == {
            child.digest: (
                child.media_type,
                child.platform.os,
                child.platform.architecture,
                child.platform.variant or "",
            )
            for child in index.children
            if child.platform is not None
        }
        for child in index.children:
            assert sorted(manifests[child.digest].blobs) == sorted(child.blobs)

    # Blobs: declared sizes and media types, all stored, byte-identical on disk.
    declared: dict[str, set[str]] = {}
    for artifact in upstream.artifacts.values():
        images = artifact.children if isinstance(artifact, img.Index) else (artifact,)
        for image in images:
            declared.setdefault(image.config_digest, set()).add(image.config_media_type)
            for layer in image.layers:
                declared.setdefault(layer.digest, set()).add(
                    img.DOCKER_LAYER if image.media_type == img.DOCKER_MANIFEST else img.OCI_LAYER
                )
    for digest, blob in (await mirror.blobs("mixed")).items():
        assert blob.stored, digest
        assert blob.media_type in declared[digest], (digest, blob.media_type)
    stored = assert_storage_sound(mirror.storage)
    assert stored == set(expected.blobs)
    for digest, data in expected.blobs.items():
        assert mirror.storage.read(digest) == data

    # The ADDED membership of version 1 is everything it holds.
    added = await mirror.list_content("mixed", 1, membership=pb.MEMBERSHIP_ADDED)
    assert len(added) == sum(expected.counts().values())
    removed = await mirror.list_content("mixed", 1, membership=pb.MEMBERSHIP_REMOVED)
    assert removed == []


@STORAGE_BACKENDS
async def test_resync_without_changes_fetches_no_manifest_and_no_blob(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_mixed(registry.url, upstream_name)
    await mirror.setup("again", proxy.url, upstream_name)
    first = await mirror.sync("again")
    assert first.task.state == pb.TASK_STATE_COMPLETED, first.task.error
    assert proxy.hits("GET", "/blobs/") == len(upstream.expected().blobs)
    proxy.clear_log()

    second = await mirror.sync("again")

    check_event_order(second.events)
    assert second.task.state == pb.TASK_STATE_COMPLETED, second.task.error
    assert list(second.task.created_resources) == []
    assert (await mirror.repository("again")).latest_version_number == 1
    assert await mirror.version_numbers("again") == [1, 0]
    assert proxy.hits("GET", "/manifests/") == 0, proxy.requests
    assert proxy.hits("GET", "/blobs/") == 0, proxy.requests
    assert proxy.hits("HEAD", "/blobs/") == 0, proxy.requests
    assert proxy.hits("GET", "/tags/list") == 1
    assert proxy.hits("HEAD", "/manifests/") == len(upstream.tags)
    await mirror.assert_matches("again", upstream.expected())
    assert_storage_sound(mirror.storage)


@STORAGE_BACKENDS
@pytest.mark.parametrize(
    "policy", [pb.POLICY_ON_DEMAND, pb.POLICY_STREAMED], ids=["on_demand", "streamed"]
)
async def test_deferred_policies_record_layers_but_store_only_configs(
    mirror: Mirror,
    proxy: FaultProxy,
    registry: RegistryProcess,
    upstream_name: str,
    policy: pb.Policy,
) -> None:
    upstream = await push_mixed(registry.url, upstream_name)
    await mirror.setup("lazy", proxy.url, upstream_name, policy=policy)

    run = await mirror.sync("lazy")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert list(run.task.created_resources) == ["repositories/lazy/versions/1"]
    expected = upstream.expected()
    version = await mirror.version("lazy")
    assert summary(version)["present"] == expected.counts()
    await mirror.assert_matches("lazy", expected)
    layers = layer_digests(upstream.artifacts.values())
    configs = config_digests(upstream.artifacts.values())
    assert layers | configs == set(expected.blobs) and not layers & configs
    blobs = await mirror.blobs("lazy")
    assert {d for d, b in blobs.items() if b.stored} == configs
    assert {d for d, b in blobs.items() if not b.stored} == layers
    stored = assert_storage_sound(mirror.storage)
    assert stored == configs
    for digest in layers:
        assert mirror.storage.read(digest) is None
        assert proxy.hits("GET", f"/blobs/{digest}") == 0
    for digest in configs:
        assert mirror.storage.read(digest) == expected.blobs[digest]
    # Every manifest still records its layers.
    manifests = await mirror.manifests("lazy")
    docker = upstream.artifacts[upstream.tags["docker"]]
    assert sorted(manifests[docker.digest].blobs) == sorted(docker.blobs)

    # Switching the remote to IMMEDIATE fetches the layers; the content (so the version) stays.
    await mirror.update_remote("lazy", ["policy"], policy=pb.POLICY_IMMEDIATE)
    proxy.clear_log()
    eager = await mirror.sync("lazy")
    assert eager.task.state == pb.TASK_STATE_COMPLETED, eager.task.error
    assert list(eager.task.created_resources) == []
    assert proxy.hits("GET", "/blobs/") == len(layers)
    assert proxy.hits("GET", "/manifests/") == 0
    assert all(b.stored for b in (await mirror.blobs("lazy")).values())
    assert assert_storage_sound(mirror.storage) == set(expected.blobs)
