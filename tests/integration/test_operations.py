"""Content operations over real gRPC on versions made by real syncs from a real registry:
copy tags out of a mirror into a curated repository (with signatures), tag, untag, add and
remove on top of a base version, roll back; the mirror rule; bad input leaves no version."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import field_mask_pb2

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    error_info,
    small_image,
    summary,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = REGISTRY_MARKS


@dataclass
class Source:
    """A mirror `src` synced from an upstream with a signed image, another image, an index."""

    a: img.Image
    b: img.Image
    sig: img.Image
    index: img.Index

    @property
    def sig_tag(self) -> str:
        return img.cosign_signature_tag(self.a.digest)


async def mirrored_source(mirror: Mirror, registry: RegistryProcess, name: str) -> Source:
    upstream = Upstream(registry.url, name)
    a, b = small_image("ops-a"), small_image("ops-b", media="oci")
    sig = img.make_cosign_signature(a.digest, "ops")
    index = img.make_index("ops-index", platforms=img.PLATFORMS[:2])
    await upstream.push("1.0", a)
    await upstream.push("1.1", b)
    await upstream.push(img.cosign_signature_tag(a.digest), sig)
    await upstream.push("multi", index)
    await mirror.setup("src", registry.url, name)
    run = await mirror.sync("src", mirror=True)
    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    return Source(a, b, sig, index)


def repo(name: str) -> str:
    return f"repositories/{name}"


async def refused(call: object, code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    found = error_info(info.value)
    assert found is not None and found.reason == reason, (found, info.value.details())


async def test_copy_tags_out_of_a_mirror_then_tag_untag_modify_and_roll_back(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    src = await mirrored_source(mirror, registry, upstream_name)
    await mirror.create_repository("curated")
    ops = mirror.operations

    copied = await ops.CopyTags(
        pb.CopyTagsRequest(
            source_version="repositories/src/versions/1", destination=repo("curated"), tags=["1.0"]
        )
    )

    assert copied.changed and copied.version.number == 1
    assert copied.version.source == pb.VERSION_SOURCE_OPERATION
    assert "copy tags ['1.0'] from repositories/src/versions/1" in copied.version.source_detail
    # The tag brings its image and its cosign signature (tag, manifest, blobs).
    assert await mirror.tags("curated") == {"1.0": src.a.digest, src.sig_tag: src.sig.digest}
    assert set(await mirror.manifests("curated")) == {src.a.digest, src.sig.digest}
    assert set(await mirror.blobs("curated")) == set(src.a.blobs) | set(src.sig.blobs)
    assert summary(copied.version)["added"] == {
        "container.tag": 2,
        "container.manifest": 2,
        "container.blob": len(set(src.a.blobs) | set(src.sig.blobs)),
        "container.signature": 1,  # the cosign signature as signature content too
    }

    again = await ops.CopyTags(
        pb.CopyTagsRequest(
            source_version="repositories/src/versions/latest",
            destination=repo("curated"),
            tags=["1.*"],
        )
    )
    assert again.changed and again.version.number == 2  # 1.1 is new, 1.0 is unchanged
    assert set(await mirror.tags("curated")) == {"1.0", "1.1", src.sig_tag}
    unchanged = await ops.CopyTags(
        pb.CopyTagsRequest(
            source_version="repositories/src/versions/1", destination=repo("curated"), tags=["1.0"]
        )
    )
    assert not unchanged.changed and unchanged.version.number == 2

    tagged = await ops.TagManifest(
        pb.TagManifestRequest(repository=repo("curated"), tag="stable", digest=src.a.digest)
    )
    assert tagged.version.number == 3
    assert summary(tagged.version)["added"] == {"container.tag": 1}
    assert (await mirror.tags("curated"))["stable"] == src.a.digest

    moved = await ops.TagManifest(
        pb.TagManifestRequest(repository=repo("curated"), tag="stable", digest=src.b.digest)
    )
    assert moved.version.number == 4
    assert summary(moved.version)["added"] == {"container.tag": 1}
    assert summary(moved.version)["removed"] == {"container.tag": 1}

    untagged = await ops.UntagManifest(
        pb.UntagManifestRequest(repository=repo("curated"), tag="1.1")
    )
    assert untagged.version.number == 5
    assert "1.1" not in await mirror.tags("curated")
    assert src.b.digest in await mirror.manifests("curated")  # untag keeps the manifest

    # Add the multi-arch index from the mirror and remove image A (tag, signature and all)
    # on top of version 3, in one new version.
    modified = await ops.ModifyContent(
        pb.ModifyContentRequest(
            repository=repo("curated"),
            base_version="repositories/curated/versions/3",
            add=["multi"],
            source_version="repositories/src/versions/1",
            remove=["1.0"],
        )
    )
    assert modified.version.number == 6
    assert modified.version.base_version == "repositories/curated/versions/3"
    assert await mirror.tags("curated") == {"multi": src.index.digest, "1.1": src.b.digest}
    assert set(await mirror.manifests("curated")) == {src.b.digest} | set(src.index.manifests)
    assert set(await mirror.blobs("curated")) == set(src.b.blobs) | set(src.index.blobs)

    rolled = await ops.RollbackRepository(
        pb.RollbackRepositoryRequest(version="repositories/curated/versions/1")
    )
    assert rolled.changed and rolled.version.number == 7
    assert rolled.version.source_detail == "rollback to version 1"
    assert await mirror.tags("curated") == await mirror.tags("curated", 1)
    assert await mirror.blobs("curated") == await mirror.blobs("curated", 1)
    assert (await mirror.version("curated", 1)).source == pb.VERSION_SOURCE_OPERATION
    assert (await mirror.version("curated", 0)).source == pb.VERSION_SOURCE_CREATED
    sync_version = await mirror.version("src", 1)
    assert sync_version.source == pb.VERSION_SOURCE_SYNC
    assert sync_version.source_detail == "sync from remotes/src (mirror)"


async def test_the_mirror_rule_and_turning_a_mirror_into_a_push_repository(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    src = await mirrored_source(mirror, registry, upstream_name)
    ops = mirror.operations
    assert (await mirror.repository("src")).mirror

    writes = [
        ops.TagManifest(
            pb.TagManifestRequest(repository=repo("src"), tag="x", digest=src.a.digest)
        ),
        ops.UntagManifest(pb.UntagManifestRequest(repository=repo("src"), tag="1.0")),
        ops.ModifyContent(pb.ModifyContentRequest(repository=repo("src"), remove=["1.1"])),
        ops.CopyTags(
            pb.CopyTagsRequest(
                source_version="repositories/src/versions/1", destination=repo("src")
            )
        ),
    ]
    for call in writes:
        await refused(call, grpc.StatusCode.FAILED_PRECONDITION, "REPOSITORY_IS_MIRROR")
    assert await mirror.version_numbers("src") == [1, 0]

    # A rollback restores what an earlier sync made: allowed on a mirror.
    rolled = await ops.RollbackRepository(
        pb.RollbackRepositoryRequest(version="repositories/src/versions/0")
    )
    assert rolled.version.number == 2 and await mirror.tags("src") == {}

    updated = await mirror.repositories.UpdateRepository(
        pb.UpdateRepositoryRequest(
            repository=pb.Repository(name=repo("src"), mirror=False),
            update_mask=field_mask_pb2.FieldMask(paths=["mirror"]),
        )
    )
    assert not updated.repository.mirror
    tagged = await ops.TagManifest(
        pb.TagManifestRequest(
            repository=repo("src"),
            tag="kept",
            digest=src.b.digest,
            base_version="repositories/src/versions/1",
        )
    )
    assert tagged.version.number == 3
    assert (await mirror.tags("src"))["kept"] == src.b.digest


async def test_bad_input_is_refused_and_leaves_no_version(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    src = await mirrored_source(mirror, registry, upstream_name)
    ops = mirror.operations
    await mirror.create_repository("dest")
    await ops.CopyTags(
        pb.CopyTagsRequest(source_version="repositories/src/versions/1", destination=repo("dest"))
    )
    unknown = "sha256:" + "0" * 64
    cases = [
        (
            ops.TagManifest(
                pb.TagManifestRequest(repository=repo("dest"), tag="t", digest=unknown)
            ),
            grpc.StatusCode.NOT_FOUND,
            "CONTENT_NOT_FOUND",
        ),
        (
            ops.ModifyContent(pb.ModifyContentRequest(repository=repo("dest"), remove=[unknown])),
            grpc.StatusCode.NOT_FOUND,
            "CONTENT_NOT_FOUND",
        ),
        (
            ops.ModifyContent(
                pb.ModifyContentRequest(
                    repository=repo("dest"),
                    add=["nope"],
                    source_version="repositories/src/versions/1",
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "CONTENT_NOT_FOUND",
        ),
        (
            ops.TagManifest(
                pb.TagManifestRequest(
                    repository=repo("dest"),
                    tag="t",
                    digest=src.a.digest,
                    base_version="repositories/src/versions/1",
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "BASE_VERSION_OF_OTHER_REPOSITORY",
        ),
        (
            ops.TagManifest(
                pb.TagManifestRequest(repository=repo("dest"), tag="-bad", digest=src.a.digest)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_TAG",
        ),
        (
            ops.TagManifest(
                pb.TagManifestRequest(repository=repo("dest"), tag="t", digest="sha256:short")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_DIGEST",
        ),
        (
            ops.ModifyContent(
                pb.ModifyContentRequest(
                    repository=repo("dest"),
                    base_version="repositories/dest/versions/9",
                    remove=["1.0"],
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "VERSION_NOT_FOUND",
        ),
        (
            # A child of the index that stays.
            ops.ModifyContent(
                pb.ModifyContentRequest(
                    repository=repo("dest"), remove=[src.index.children[0].digest]
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CONTENT_IN_USE",
        ),
        (
            ops.ModifyContent(
                pb.ModifyContentRequest(repository=repo("dest"), remove=[src.a.config_digest])
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CONTENT_IN_USE",
        ),
        (
            ops.CopyTags(
                pb.CopyTagsRequest(
                    source_version="repositories/src/versions/1",
                    destination=repo("dest"),
                    tags=[src.a.digest],
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_TAG_PATTERN",
        ),
        (
            ops.UntagManifest(pb.UntagManifestRequest(repository=repo("dest"), tag="absent")),
            grpc.StatusCode.NOT_FOUND,
            "CONTENT_NOT_FOUND",
        ),
        (
            ops.RollbackRepository(
                pb.RollbackRepositoryRequest(version="repositories/dest/versions/7")
            ),
            grpc.StatusCode.NOT_FOUND,
            "VERSION_NOT_FOUND",
        ),
    ]
    for call, code, reason in cases:
        await refused(call, code, reason)
    assert await mirror.version_numbers("dest") == [1, 0]
    assert set(await mirror.tags("dest")) == {"1.0", "1.1", "multi", src.sig_tag}
