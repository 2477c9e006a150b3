"""The Versions and Content APIs over versions made by real syncs: deleting versions (latest
refused, middle ones folded into the next), diffs across versions, and retain_versions."""

from __future__ import annotations

import grpc
import pytest

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    TAG,
    Mirror,
    Upstream,
    counts,
    error_info,
    small_image,
    summary,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support.registry import RegistryProcess

pytestmark = REGISTRY_MARKS


async def sync_ok(mirror: Mirror, repo: str, *, mirror_mode: bool = False) -> list[str]:
    run = await mirror.sync(repo, mirror=mirror_mode)
    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    return list(run.task.created_resources)


def tags_of(changes: list[pb.ContentChange], kind: int) -> dict[str, str]:
    return {
        c.content.tag.name: c.content.tag.manifest_digest
        for c in changes
        if c.kind == kind and c.content.WhichOneof("content") == "tag"
    }


def digests_of(changes: list[pb.ContentChange], kind: int, which: str) -> set[str]:
    return {
        getattr(c.content, which).digest
        for c in changes
        if c.kind == kind and c.content.WhichOneof("content") == which
    }


async def test_delete_and_diff_versions_after_syncs(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    a, a2, b, c = (small_image(f"versions-{s}") for s in ("a", "a2", "b", "c"))
    await upstream.push("a", a)
    await upstream.push("b", b)
    await mirror.setup("hist", registry.url, upstream_name)
    assert await sync_ok(mirror, "hist", mirror_mode=True) == ["repositories/hist/versions/1"]
    await upstream.push("c", c)
    assert await sync_ok(mirror, "hist", mirror_mode=True) == ["repositories/hist/versions/2"]
    await upstream.delete("b")
    await upstream.push("a", a2)
    assert await sync_ok(mirror, "hist", mirror_mode=True) == ["repositories/hist/versions/3"]
    assert await mirror.tags("hist", 1) == {"a": a.digest, "b": b.digest}
    assert await mirror.tags("hist", 2) == {"a": a.digest, "b": b.digest, "c": c.digest}
    assert await mirror.tags("hist", 3) == {"a": a2.digest, "c": c.digest}
    assert summary(await mirror.version("hist", 3)) == {
        "added": counts(blobs=2, manifests=1, tags=1),
        "removed": counts(blobs=4, manifests=2, tags=2),
        "present": counts(blobs=4, manifests=2, tags=2),
    }

    # The latest version cannot go.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mirror.delete_version("hist", 3)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(err.value)
    assert info is not None and info.domain == "mirror.v1"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mirror.versions.DeleteVersion(
            pb.DeleteVersionRequest(name="repositories/hist/versions/latest")
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Diff v1 -> v3: a moved, b gone, c new.
    changes, diff_summary = await mirror.diff("hist", 1, 3)
    assert tags_of(changes, pb.CHANGE_KIND_ADDED) == {"a": a2.digest, "c": c.digest}
    assert tags_of(changes, pb.CHANGE_KIND_REMOVED) == {"a": a.digest, "b": b.digest}
    assert digests_of(changes, pb.CHANGE_KIND_ADDED, "manifest") == {a2.digest, c.digest}
    assert digests_of(changes, pb.CHANGE_KIND_REMOVED, "manifest") == {a.digest, b.digest}
    assert digests_of(changes, pb.CHANGE_KIND_ADDED, "blob") == set(a2.blobs) | set(c.blobs)
    assert digests_of(changes, pb.CHANGE_KIND_REMOVED, "blob") == set(a.blobs) | set(b.blobs)
    assert len(changes) == 16
    assert dict(diff_summary.added) == counts(blobs=4, manifests=2, tags=2)
    assert dict(diff_summary.removed) == counts(blobs=4, manifests=2, tags=2)
    tag_changes, tag_summary = await mirror.diff("hist", 1, 3, TAG)
    assert {c.content.WhichOneof("content") for c in tag_changes} == {"tag"}
    assert dict(tag_summary.added) == {TAG: 2} and dict(tag_summary.removed) == {TAG: 2}

    # Delete the middle version: its changes fold into version 3, whose base becomes 1.
    await mirror.delete_version("hist", 2)
    assert await mirror.version_numbers("hist") == [3, 1, 0]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mirror.version("hist", 2)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    v3 = await mirror.version("hist", 3)
    assert v3.base_version == "repositories/hist/versions/1"
    assert summary(v3) == {
        "added": counts(blobs=4, manifests=2, tags=2),
        "removed": counts(blobs=4, manifests=2, tags=2),
        "present": counts(blobs=4, manifests=2, tags=2),
    }
    assert await mirror.tags("hist", 3, pb.MEMBERSHIP_ADDED) == {"a": a2.digest, "c": c.digest}
    assert await mirror.tags("hist", 3, pb.MEMBERSHIP_REMOVED) == {"a": a.digest, "b": b.digest}
    assert await mirror.tags("hist", 3) == {"a": a2.digest, "c": c.digest}
    assert await mirror.tags("hist", 1) == {"a": a.digest, "b": b.digest}
    assert set(await mirror.blobs("hist", 3)) == set(a2.blobs) | set(c.blobs)
    assert await mirror.diff("hist", 1, 3) == (changes, diff_summary)
    assert (await mirror.repository("hist")).latest_version_number == 3

    # Version 0 may go too once it is not the latest: version 1 then has no base.
    await mirror.delete_version("hist", 0)
    v1 = await mirror.version("hist", 1)
    assert v1.base_version == ""
    assert summary(v1) == {
        "added": counts(blobs=4, manifests=2, tags=2),
        "removed": {},
        "present": counts(blobs=4, manifests=2, tags=2),
    }
    assert await mirror.version_numbers("hist") == [3, 1]


async def test_retain_versions_prunes_after_each_sync(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    await mirror.create_repository("kept", retain_versions=2)
    await mirror.create_remote("kept", registry.url, upstream_name)
    images = [small_image(f"retain-{i}") for i in range(3)]

    await upstream.push("t0", images[0])
    assert await sync_ok(mirror, "kept") == ["repositories/kept/versions/1"]
    assert await mirror.version_numbers("kept") == [1, 0]
    await upstream.push("t1", images[1])
    assert await sync_ok(mirror, "kept") == ["repositories/kept/versions/2"]
    assert await mirror.version_numbers("kept") == [2, 1]
    await upstream.push("t2", images[2])
    assert await sync_ok(mirror, "kept") == ["repositories/kept/versions/3"]
    assert await mirror.version_numbers("kept") == [3, 2]

    # Version 2 now starts from nothing; its content is unchanged.
    v2 = await mirror.version("kept", 2)
    assert v2.base_version == ""
    assert summary(v2) == {
        "added": counts(blobs=4, manifests=2, tags=2),
        "removed": {},
        "present": counts(blobs=4, manifests=2, tags=2),
    }
    assert await mirror.tags("kept", 2) == {"t0": images[0].digest, "t1": images[1].digest}
    v3 = await mirror.version("kept", 3)
    assert v3.base_version == "repositories/kept/versions/2"
    assert summary(v3) == {
        "added": counts(blobs=2, manifests=1, tags=1),
        "removed": {},
        "present": counts(blobs=6, manifests=3, tags=3),
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mirror.version("kept", 1)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # A sync that changes nothing creates no version and prunes nothing.
    assert await sync_ok(mirror, "kept") == []
    assert await mirror.version_numbers("kept") == [3, 2]
