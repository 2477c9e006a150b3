"""Platform filters on remotes (real registry, real gRPC server, SQLite and PostgreSQL): what
a filtered sync stores, re-syncs that change the filter, and the same index in a repository
that keeps every platform."""

from __future__ import annotations

import grpc
import pytest

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    counts,
    error_info,
    stored_digests,
    summary,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = REGISTRY_MARKS


async def test_filter_then_widen_then_share(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    index = img.make_index("plat", layers=1)  # amd64, arm64/v8, arm/v7
    await upstream.push("1", index)
    amd64, arm64, arm = (index.child(p) for p in ("linux/amd64", "linux/arm64/v8", "linux/arm/v7"))
    await mirror.setup("narrow", registry.url, upstream_name, platforms=["linux/amd64"])

    run = await mirror.sync("narrow")
    assert run.task.state == pb.TASK_STATE_COMPLETED
    assert summary(await mirror.version("narrow"))["present"] == counts(
        blobs=len(amd64.blobs), manifests=2, tags=1
    )
    assert stored_digests(mirror.data_dir) == set(amd64.blobs)
    listed = await mirror.manifests("narrow")
    assert set(listed) == {index.digest, amd64.digest}
    # The index row keeps its bytes; only the stored child is listed under it.
    assert [(r.os, r.architecture) for r in listed[index.digest].manifests] == [("linux", "amd64")]

    # Widening the filter fetches the new platform only and adds it in a new version.
    await mirror.update_remote("narrow", ["platforms"], platforms=["linux/amd64", "linux/arm64"])
    await mirror.sync("narrow")
    version = await mirror.version("narrow")
    assert version.number == 2
    assert summary(version)["added"] == counts(blobs=len(arm64.blobs), manifests=1)
    assert stored_digests(mirror.data_dir) == set(amd64.blobs) | set(arm64.blobs)

    # Another repository keeps every platform of the same (already stored) index.
    await mirror.setup("wide", registry.url, upstream_name)
    await mirror.sync("wide")
    wide = await mirror.manifests("wide")
    assert set(wide) == {index.digest, amd64.digest, arm64.digest, arm.digest}
    platforms = {(r.os, r.architecture, r.variant) for r in wide[index.digest].manifests}
    assert platforms == {("linux", "amd64", ""), ("linux", "arm64", "v8"), ("linux", "arm", "v7")}


@pytest.mark.parametrize("spec", ["linux", "Linux/AMD64", "linux/arm64/v8/x", "*/amd64"])
async def test_bad_platform_specs_are_rejected(mirror: Mirror, spec: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mirror.create_remote("bad", "https://r.example.com", "lib/app", platforms=[spec])
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = error_info(info.value)
    assert details is not None and details.domain == "mirror.v1"
