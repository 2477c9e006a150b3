"""RepositoryService acceptance tests through the asyncio client against the real server.

Also covers version 0, which every repository is created with (VersionService reads).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import field_mask_pb2

from client import AsyncMirrorClient
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.integration.api_helpers import fails, when


async def test_create_get_and_duplicate_repository(grpc_target: str, admin_token: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        created = await client.create_repository(
            "codzo", description="hello-world mirror", retain_versions=3
        )
        after = datetime.now(UTC) + timedelta(seconds=2)

        assert created.name == "repositories/codzo"
        assert str(uuid.UUID(created.uid)) == created.uid
        assert created.description == "hello-world mirror"
        assert created.retain_versions == 3
        assert created.latest_version == "repositories/codzo/versions/0"
        assert created.latest_version_number == 0
        assert created.versions == "repositories/codzo"
        assert created.mirror is False
        assert before <= when(created.create_time) <= after
        assert when(created.update_time) == when(created.create_time)

        fetched = await client.get_repository("repositories/codzo")
        assert fetched == created
        assert await client.get_repository("codzo") == created  # short id accepted

        err = await fails(
            client.create_repository("codzo", description="second"),
            grpc.StatusCode.ALREADY_EXISTS,
            "REPOSITORY_EXISTS",
        )
        assert err.metadata.get("repository") == "repositories/codzo"
        assert await client.get_repository("codzo") == created

        # Every repository starts with an empty version 0 as its latest version.
        repo = created
        version = await client.get_version(repo.latest_version)
        assert version.name == "repositories/codzo/versions/0"
        assert version.number == 0
        assert version.base_version == ""
        assert when(version.create_time) == when(repo.create_time)
        summary = version.content_summary
        assert not any(summary.added.values())
        assert not any(summary.removed.values())
        assert not any(summary.present.values())

        assert await client.get_version("codzo", "latest") == version
        assert await client.get_version("codzo", 0) == version
        listed = await client.list_versions("codzo")
        assert list(listed.versions) == [version]
        assert listed.next_page_token == ""


async def test_update_repository_changes_only_masked_fields(
    grpc_target: str, admin_token: str
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        created = await client.create_repository("codzo", description="one", retain_versions=2)
        await asyncio.sleep(0.01)

        updated = await client.update_repository("codzo", description="two")
        assert updated.description == "two"
        assert updated.retain_versions == 2
        assert updated.uid == created.uid
        assert updated.create_time == created.create_time
        assert when(updated.update_time) > when(created.update_time)
        assert updated.latest_version == created.latest_version
        assert await client.get_repository("codzo") == updated
        await asyncio.sleep(0.01)

        again = await client.update_repository("codzo", retain_versions=0)
        assert (again.description, again.retain_versions) == ("two", 0)
        assert when(again.update_time) > when(updated.update_time)

        # Both fields populated, only one in the mask: the other one must not change.
        stub = pb_grpc.RepositoryServiceStub(client.channel)
        response = await stub.UpdateRepository(
            pb.UpdateRepositoryRequest(
                repository=pb.Repository(
                    name="repositories/codzo", description="three", retain_versions=9
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["retain_versions"]),
            )
        )
        assert (response.repository.description, response.repository.retain_versions) == (
            "two",
            9,
        )

        # Output-only fields in the request are ignored, never applied.
        response = await stub.UpdateRepository(
            pb.UpdateRepositoryRequest(
                repository=pb.Repository(
                    name="repositories/codzo",
                    uid="not-the-uid",
                    latest_version="repositories/codzo/versions/7",
                    mirror=True,
                    description="four",
                ),
                update_mask=field_mask_pb2.FieldMask(
                    paths=["uid", "latest_version", "description"]
                ),
            )
        )
        got = response.repository
        assert got.description == "four"
        assert got.uid == created.uid
        assert got.latest_version == "repositories/codzo/versions/0"
        assert got.mirror is False  # not in the mask: unchanged

        # `mirror` is the one flag an admin sets by hand (the way out of mirror mode).
        response = await stub.UpdateRepository(
            pb.UpdateRepositoryRequest(
                repository=pb.Repository(name="repositories/codzo", mirror=True),
                update_mask=field_mask_pb2.FieldMask(paths=["mirror"]),
            )
        )
        assert response.repository.mirror is True


async def test_list_repositories_paginates_in_name_order(
    grpc_target: str, admin_token: str
) -> None:
    ids = ["repo-4", "repo-1", "repo-6", "repo-0", "repo-3", "repo-5", "repo-2"]
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        for rid in ids:
            await client.create_repository(rid)

        pages: list[list[str]] = []
        tokens: list[str] = []
        token = ""
        for _ in range(5):
            page = await client.list_repositories(page_size=3, page_token=token)
            pages.append([r.name for r in page.repositories])
            tokens.append(page.next_page_token)
            token = page.next_page_token
            if not token:
                break
        expected = [f"repositories/repo-{i}" for i in range(7)]
        assert pages == [expected[0:3], expected[3:6], expected[6:7]]
        assert tokens[0] and tokens[1] and tokens[2] == ""

        # A token stays valid with another page size.
        rest = await client.list_repositories(page_size=5, page_token=tokens[0])
        assert [r.name for r in rest.repositories] == expected[3:]
        assert rest.next_page_token == ""

        everything = await client.list_repositories()
        assert [r.name for r in everything.repositories] == expected
        assert everything.next_page_token == ""
        assert [r.name async for r in client.iter_repositories(page_size=2)] == expected


async def test_delete_repository_and_not_found(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        first = await client.create_repository("codzo")
        await client.create_repository("other")
        await client.delete_repository("codzo")

        err = await fails(
            client.get_repository("codzo"), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        assert err.metadata.get("repository") == "repositories/codzo"
        await fails(
            client.get_version("codzo", 0), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        await fails(
            client.delete_repository("codzo"), grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND"
        )
        listed = await client.list_repositories()
        assert [r.name for r in listed.repositories] == ["repositories/other"]

        # The id is free again; the new repository is a different one.
        second = await client.create_repository("codzo")
        assert second.uid != first.uid
        assert second.latest_version == "repositories/codzo/versions/0"

        for call in (
            client.get_repository("ghost"),
            client.update_repository("ghost", description="x"),
            client.delete_repository("ghost"),
            client.list_versions("ghost"),
            client.get_version("ghost", "latest"),
        ):
            err = await fails(call, grpc.StatusCode.NOT_FOUND, "REPOSITORY_NOT_FOUND")
            assert err.metadata.get("repository") == "repositories/ghost"
