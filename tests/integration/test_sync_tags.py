"""Tags across syncs: added, moved and deleted upstream in additive and mirror mode; include
and exclude filters (wildcards, literals, digests); tag list pagination."""

from __future__ import annotations

import pytest

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    assert_storage_sound,
    check_event_order,
    counts,
    small_image,
    summary,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import proxy_fixture as proxy_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess

pytestmark = REGISTRY_MARKS


@pytest.mark.parametrize("mirror_mode", [False, True], ids=["additive", "mirror"])
async def test_tag_added_moved_and_deleted_upstream(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str, mirror_mode: bool
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    base = img.make_layer("tags-base", 1024)
    a, b, c, d, e = (small_image(f"tags-{s}", shared_base=base) for s in "abcde")
    await upstream.push("keep", a)
    await upstream.push("move", b)
    await upstream.push("drop", c)
    await mirror.setup("tags", registry.url, upstream_name)
    first = await mirror.sync("tags", mirror=mirror_mode)
    assert first.task.state == pb.TASK_STATE_COMPLETED, first.task.error
    v1 = upstream.expected()
    await mirror.assert_matches("tags", v1)
    # 3 images of config + own layer + the shared base.
    assert summary(await mirror.version("tags", 1))["present"] == counts(7, 3, 3)

    await upstream.push("new", d)  # added
    await upstream.push("move", e)  # moved: same name, another manifest
    assert await upstream.delete("drop") == c.digest  # deleted (by digest)
    assert upstream.tags == {"keep": a.digest, "move": e.digest, "new": d.digest}

    second = await mirror.sync("tags", mirror=mirror_mode)

    check_event_order(second.events)
    assert second.task.state == pb.TASK_STATE_COMPLETED, second.task.error
    assert list(second.task.created_resources) == ["repositories/tags/versions/2"]
    version = await mirror.version("tags", 2)
    assert version.base_version == "repositories/tags/versions/1"
    assert await mirror.tags("tags", 2, pb.MEMBERSHIP_ADDED) == {"move": e.digest, "new": d.digest}
    # d and e bring their config and own layer; the base layer is already there.
    added = counts(blobs=4, manifests=2, tags=2)
    if mirror_mode:
        expected = upstream.expected()
        await mirror.assert_matches("tags", expected)
        assert await mirror.tags("tags", 2, pb.MEMBERSHIP_REMOVED) == {
            "move": b.digest,
            "drop": c.digest,
        }
        removed_manifests = await mirror.manifests("tags", 2, pb.MEMBERSHIP_REMOVED)
        assert set(removed_manifests) == {b.digest, c.digest}
        removed_blobs = await mirror.blobs("tags", 2, pb.MEMBERSHIP_REMOVED)
        assert set(removed_blobs) == (set(b.blobs) | set(c.blobs)) - {base.digest}
        assert summary(version) == {
            "added": added,
            "removed": counts(blobs=4, manifests=2, tags=2),
            "present": counts(blobs=7, manifests=3, tags=3),
        }
        assert (await mirror.repository("tags")).mirror is True
    else:
        # Additive: the deleted tag stays, the moved tag is replaced by name.
        assert await mirror.tags("tags") == {
            "keep": a.digest,
            "move": e.digest,
            "drop": c.digest,
            "new": d.digest,
        }
        assert await mirror.tags("tags", 2, pb.MEMBERSHIP_REMOVED) == {"move": b.digest}
        manifests = await mirror.manifests("tags")
        assert set(manifests) == {a.digest, b.digest, c.digest, d.digest, e.digest}
        assert await mirror.manifests("tags", 2, pb.MEMBERSHIP_REMOVED) == {}
        assert summary(version) == {
            "added": added,
            "removed": counts(tags=1),
            "present": counts(blobs=11, manifests=5, tags=4),
        }
        assert (await mirror.repository("tags")).mirror is False
    assert_storage_sound(mirror.data_dir)


async def push_release_tags(url: str, name: str) -> Upstream:
    upstream = Upstream(url, name)
    for tag in ("1.0", "1.1", "1.2-rc1", "2.0", "2.1-rc2", "latest"):
        await upstream.push(tag, small_image(f"filters-{tag}", layer_size=256))
    return upstream


@pytest.mark.parametrize("mirror_mode", [False, True], ids=["additive", "mirror"])
async def test_wildcard_include_and_exclude(
    mirror: Mirror,
    proxy: FaultProxy,
    registry: RegistryProcess,
    upstream_name: str,
    mirror_mode: bool,
) -> None:
    upstream = await push_release_tags(registry.url, upstream_name)
    await mirror.setup(
        "filtered", proxy.url, upstream_name, include_tags=["1.*"], exclude_tags=["*-rc*"]
    )

    run = await mirror.sync("filtered", mirror=mirror_mode)

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    await mirror.assert_matches("filtered", upstream.expected(["1.0", "1.1"]))
    assert proxy.hits("GET", "/tags/list") == 1
    # Only the selected tags are looked at upstream.
    assert proxy.hits("HEAD", "/manifests/") == 2
    assert proxy.hits("HEAD", "/manifests/1.2-rc1") == 0

    # Widen the filter: every tag but the release candidates.
    await mirror.update_remote("filtered", ["include_tags"], include_tags=[])
    wide = await mirror.sync("filtered", mirror=mirror_mode)
    assert wide.task.state == pb.TASK_STATE_COMPLETED, wide.task.error
    await mirror.assert_matches("filtered", upstream.expected(["1.0", "1.1", "2.0", "latest"]))

    # Narrow it again to 2.*: mirror mode drops what no longer matches, additive keeps it.
    await mirror.update_remote("filtered", ["include_tags"], include_tags=["2.*"])
    narrow = await mirror.sync("filtered", mirror=mirror_mode)
    assert narrow.task.state == pb.TASK_STATE_COMPLETED, narrow.task.error
    removal_warnings = [w for w in narrow.task.warnings if "mirror mode removed" in w]
    if mirror_mode:
        assert removal_warnings == [
            "mirror mode removed 3 tag(s) that the remote's upstream no longer lists "
            "or its filters no longer select"
        ]
        assert list(narrow.task.created_resources) == ["repositories/filtered/versions/3"]
        await mirror.assert_matches("filtered", upstream.expected(["2.0"]))
        assert summary(await mirror.version("filtered", 3))["removed"] == counts(6, 3, 3)
    else:
        assert removal_warnings == []
        assert list(narrow.task.created_resources) == []
        assert (await mirror.repository("filtered")).latest_version_number == 2
        await mirror.assert_matches("filtered", upstream.expected(["1.0", "1.1", "2.0", "latest"]))


async def test_a_glob_that_matches_no_upstream_tag_warns(
    mirror: Mirror, registry: RegistryProcess, upstream_name: str
) -> None:
    await push_release_tags(registry.url, upstream_name)
    await mirror.setup("noglob", registry.url, upstream_name, include_tags=["3.*", "1.0"])

    run = await mirror.sync("noglob")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert list(run.task.warnings) == [
        "include_tags entry '3.*' matches none of the 6 upstream tags"
    ]
    warned = [e.warning for e in run.events if e.kind == pb.TASK_EVENT_KIND_WARNING]
    assert warned == list(run.task.warnings)
    assert set(await mirror.tags("noglob")) == {"1.0"}


async def test_literal_include_list_never_lists_tags(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_release_tags(registry.url, upstream_name)
    await mirror.setup(
        "literal",
        proxy.url,
        upstream_name,
        include_tags=["1.0", "2.0", "1.2-rc1", "absent"],
        exclude_tags=["*-rc*"],
    )

    run = await mirror.sync("literal")

    task = run.task
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert proxy.hits(None, "/tags/list") == 0, proxy.requests
    await mirror.assert_matches("literal", upstream.expected(["1.0", "2.0"]))
    assert proxy.hits("HEAD", "/manifests/1.2-rc1") == 0
    # The missing literal tag is a warning, not a failure.
    assert any("absent" in w for w in task.warnings), list(task.warnings)
    warned = [e.warning for e in run.events if e.kind == pb.TASK_EVENT_KIND_WARNING]
    assert any("absent" in w for w in warned), warned
    listing = {r.code: r for r in task.progress_reports}["sync.listing_tags"]
    assert listing.state == pb.PROGRESS_STATE_SKIPPED


async def test_digest_include_syncs_an_untagged_manifest(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_release_tags(registry.url, upstream_name)
    index = img.make_index("untagged", img.PLATFORMS[:2], media="oci", layer_size=256)
    await upstream.push(None, index)  # pushed by digest only: no tag reaches it
    await mirror.setup("bydigest", proxy.url, upstream_name, include_tags=["2.0", index.digest])

    run = await mirror.sync("bydigest")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert proxy.hits(None, "/tags/list") == 0
    expected = upstream.expected(["2.0"], digests=[index.digest])
    await mirror.assert_matches("bydigest", expected)
    assert await mirror.tags("bydigest") == {"2.0": upstream.tags["2.0"]}
    manifests = await mirror.manifests("bydigest")
    assert {ref.digest for ref in manifests[index.digest].manifests} == {
        child.digest for child in index.children
    }
    assert summary(await mirror.version("bydigest"))["present"] == counts(
        blobs=2 + 4, manifests=1 + 3, tags=1
    )
    assert_storage_sound(mirror.data_dir)


async def test_paginated_tag_list_is_followed_to_the_end(
    mirror: Mirror, proxy: FaultProxy, registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    names = [f"t{i:03d}" for i in range(105)]
    images = [small_image(f"page-{i}", layer_size=128) for i in range(3)]
    for i, image in enumerate(images):
        await upstream.push_tags(names[i::3], image)
    assert len(upstream.tags) == 105
    proxy.paginate_tags(25)
    await mirror.setup("paged", proxy.url, upstream_name, exclude_tags=["t10[0-2]"])

    run = await mirror.sync("paged")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert proxy.hits("GET", "/tags/list") == 5  # 25 + 25 + 25 + 25 + 5
    wanted = [n for n in names if n not in ("t100", "t101", "t102")]
    assert len(wanted) == 102
    assert await mirror.tags("paged") == {n: upstream.tags[n] for n in wanted}
    assert summary(await mirror.version("paged"))["present"] == counts(
        blobs=6, manifests=3, tags=102
    )
