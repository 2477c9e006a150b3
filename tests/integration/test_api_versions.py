"""VersionService (Get/List/Delete) acceptance tests against the real server.

Reading and the error paths need nothing but the empty version 0. Deleting a version that
is not the latest needs real versions, made by syncing tiny images from a real
``docker-registry`` (skipped where it is not installed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from client import AsyncMirrorClient
from protos import mirror_pb2 as pb
from tests.integration.api_helpers import fails
from tests.support import images as img
from tests.support.registry import RegistryProcess, registry_available

TAG = "container.tag"
MANIFEST = "container.manifest"
BLOB = "container.blob"


async def test_version_errors_on_a_new_repository(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        err = await fails(
            client.get_version("codzo", 5), grpc.StatusCode.NOT_FOUND, "VERSION_NOT_FOUND"
        )
        assert err.metadata.get("version") == "repositories/codzo/versions/5"
        await fails(
            client.delete_version("codzo", 5), grpc.StatusCode.NOT_FOUND, "VERSION_NOT_FOUND"
        )
        err = await fails(
            client.delete_version("codzo", 0),
            grpc.StatusCode.FAILED_PRECONDITION,
            "VERSION_IS_LATEST",
        )
        assert err.metadata.get("version") == "repositories/codzo/versions/0"
        await fails(
            client.list_versions("ghost"), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        await fails(
            client.get_version("ghost", 0), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        await fails(
            client.delete_version("ghost", 0), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        # Version 0 is still there.
        assert (await client.get_version("codzo", 0)).name == "repositories/codzo/versions/0"


# ------------------------------------------------------------------ with real versions


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryProcess]:
    if not registry_available():
        pytest.skip("docker-registry is not installed")
    with RegistryProcess() as reg:
        yield reg


async def sync_to_end(client: AsyncMirrorClient, repository: str, remote: str) -> pb.Task:
    async with asyncio.timeout(60):
        events = [event async for event in client.sync(repository, remote)]
    task = events[-1].task
    assert task.state == pb.TASK_STATE_COMPLETED, task
    return task


@pytest.mark.registry
# The second sync starts from a version that holds tags, which reaches the SQLAlchemy
# `Result.tuples()` deprecation reported by the sync tests (tests/integration/sync_*);
# tolerate exactly that warning here: this module tests versions, not that bug.
@pytest.mark.filterwarnings(
    r"ignore:The Result\.tuples\(\) method is deprecated:DeprecationWarning"
)
async def test_list_and_delete_versions(
    grpc_target: str, admin_token: str, registry: RegistryProcess
) -> None:
    upstream = "api-tests/versions"
    await img.push_image(registry.url, upstream, "one", img.make_image("one", 1, 256))
    await img.push_image(registry.url, upstream, "two", img.make_image("two", 1, 256))
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_repository("other")
        await client.create_remote("up", registry.url, upstream, include_tags=["one"])
        await sync_to_end(client, "codzo", "up")
        await client.update_remote("up", include_tags=["two"])
        task = await sync_to_end(client, "codzo", "up")
        assert "repositories/codzo/versions/2" in task.created_resources

        repo = await client.get_repository("codzo")
        assert repo.latest_version == "repositories/codzo/versions/2"
        assert repo.latest_version_number == 2
        v1 = await client.get_version("codzo", 1)
        assert v1.base_version == "repositories/codzo/versions/0"
        assert (v1.content_summary.added[TAG], v1.content_summary.present[TAG]) == (1, 1)
        v2 = await client.get_version("codzo", "latest")
        assert v2.name == "repositories/codzo/versions/2"
        assert v2.base_version == "repositories/codzo/versions/1"
        assert v2.content_summary.added[TAG] == 1
        assert v2.content_summary.present[TAG] == 2  # additive sync keeps tag "one"

        # Newest first, in pages; tokens are bound to the parent, not to the page size.
        page1 = await client.list_versions("codzo", page_size=2)
        assert [v.number for v in page1.versions] == [2, 1]
        assert page1.next_page_token
        page2 = await client.list_versions("codzo", page_size=2, page_token=page1.next_page_token)
        assert [v.number for v in page2.versions] == [0]
        assert page2.next_page_token == ""
        bigger = await client.list_versions("codzo", page_size=50, page_token=page1.next_page_token)
        assert [v.number for v in bigger.versions] == [0]
        err = await fails(
            client.list_versions("other", page_size=2, page_token=page1.next_page_token),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert [f for f, _ in err.field_violations] == ["page_token"]

        # A pinned version cannot go while a distribution serves it.
        await client.create_distribution("pin", "pin", version="repositories/codzo/versions/1")
        await fails(
            client.delete_version("codzo", 1),
            grpc.StatusCode.FAILED_PRECONDITION,
            "VERSION_DISTRIBUTED",
        )
        await client.delete_distribution("pin")

        # Deleting version 1 folds its changes into version 2.
        await client.delete_version("repositories/codzo/versions/1")
        await fails(client.get_version("codzo", 1), grpc.StatusCode.NOT_FOUND, "VERSION_NOT_FOUND")
        folded = await client.get_version("codzo", 2)
        assert folded.base_version == "repositories/codzo/versions/0"
        assert folded.content_summary.present == v2.content_summary.present
        assert folded.content_summary.added[TAG] == 2
        assert folded.content_summary.added[MANIFEST] == 2
        assert folded.content_summary.added[BLOB] == v2.content_summary.present[BLOB]
        assert folded.create_time == v2.create_time
        listed = await client.list_versions("codzo")
        assert [v.number for v in listed.versions] == [2, 0]

        # Version 0 may go too once it is not the latest; the latest never.
        await client.delete_version("codzo", 0)
        alone = await client.get_version("codzo", 2)
        assert alone.base_version == ""
        assert alone.content_summary.present == v2.content_summary.present
        assert [v.number for v in (await client.list_versions("codzo")).versions] == [2]
        await fails(
            client.delete_version("codzo", 2),
            grpc.StatusCode.FAILED_PRECONDITION,
            "VERSION_IS_LATEST",
        )
        assert (await client.get_repository("codzo")).latest_version_number == 2
