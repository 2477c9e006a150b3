"""DistributionService acceptance tests through the asyncio client against the real server."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import field_mask_pb2

from client import AsyncMirrorClient
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.integration.api_helpers import fails, when


async def test_distribution_crud(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_repository("other")

        created = await client.create_distribution(
            "web", "library/hello", repository="codzo", description="public"
        )
        assert created.name == "distributions/web"
        assert created.base_path == "library/hello"
        assert created.repository == "repositories/codzo"
        assert created.version == ""
        assert created.description == "public"
        assert created.registry_path.endswith("/library/hello")
        assert created.registry_path != "/library/hello"  # HOST:PORT comes first
        assert when(created.create_time) == when(created.update_time)
        assert await client.get_distribution("distributions/web") == created

        pinned = await client.create_distribution(
            "pinned", "pinned/hello", version="repositories/other/versions/0"
        )
        assert pinned.repository == ""
        assert pinned.version == "repositories/other/versions/0"
        assert pinned.registry_path.endswith("/pinned/hello")

        listed = await client.list_distributions()
        assert [d.name for d in listed.distributions] == [
            "distributions/pinned",
            "distributions/web",
        ]
        assert listed.next_page_token == ""
        page = await client.list_distributions(page_size=1)
        assert [d.name for d in page.distributions] == ["distributions/pinned"]
        assert page.next_page_token
        page = await client.list_distributions(page_size=1, page_token=page.next_page_token)
        assert [d.name for d in page.distributions] == ["distributions/web"]
        assert page.next_page_token == ""

        await asyncio.sleep(0.01)
        updated = await client.update_distribution("web", description="changed")
        assert updated.description == "changed"
        assert (updated.base_path, updated.repository) == ("library/hello", "repositories/codzo")
        assert updated.create_time == created.create_time
        assert when(updated.update_time) > when(created.update_time)

        moved = await client.update_distribution("web", base_path="moved/hello")
        assert moved.base_path == "moved/hello"
        assert moved.registry_path.endswith("/moved/hello")
        assert moved.description == "changed"

        switched = await client.update_distribution("web", version="repositories/other/versions/0")
        assert (switched.repository, switched.version) == ("", "repositories/other/versions/0")
        back = await client.update_distribution("web", repository="codzo")
        assert (back.repository, back.version) == ("repositories/codzo", "")

        # Populated fields outside the mask are ignored.
        stub = pb_grpc.DistributionServiceStub(client.channel)
        response = await stub.UpdateDistribution(
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(
                    name="distributions/web",
                    base_path="ignored/path",
                    repository="repositories/other",
                    description="masked",
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            )
        )
        got = response.distribution
        assert (got.description, got.base_path, got.repository) == (
            "masked",
            "moved/hello",
            "repositories/codzo",
        )

        await client.delete_distribution("web")
        err = await fails(
            client.get_distribution("web"), grpc.StatusCode.NOT_FOUND, "DISTRIBUTION_NOT_FOUND"
        )
        assert err.metadata.get("distribution") == "distributions/web"
        await fails(
            client.delete_distribution("web"),
            grpc.StatusCode.NOT_FOUND,
            "DISTRIBUTION_NOT_FOUND",
        )
        await fails(
            client.update_distribution("web", description="x"),
            grpc.StatusCode.NOT_FOUND,
            "DISTRIBUTION_NOT_FOUND",
        )
        # The repository it served is untouched.
        assert (await client.get_repository("codzo")).latest_version_number == 0
        listed = await client.list_distributions()
        assert [d.name for d in listed.distributions] == ["distributions/pinned"]


async def test_duplicate_or_dangling_distribution_is_refused(
    grpc_target: str,
    admin_token: str,
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        original = await client.create_distribution("web", "library/hello", repository="codzo")
        await fails(
            client.create_distribution("web", "library/other", repository="codzo"),
            grpc.StatusCode.ALREADY_EXISTS,
        )
        await fails(
            client.create_distribution("web2", "library/hello", repository="codzo"),
            grpc.StatusCode.ALREADY_EXISTS,
        )
        second = await client.create_distribution("web2", "library/two", repository="codzo")
        await fails(
            client.update_distribution("web2", base_path="library/hello"),
            grpc.StatusCode.ALREADY_EXISTS,
        )
        assert await client.get_distribution("web") == original
        assert await client.get_distribution("web2") == second

        # What a distribution serves must exist.
        await fails(
            client.create_distribution("web3", "hello", repository="ghost"),
            grpc.StatusCode.NOT_FOUND,
            "REPOSITORY_NOT_FOUND",
        )
        err = await fails(
            client.create_distribution("web3", "hello", version="repositories/codzo/versions/3"),
            grpc.StatusCode.NOT_FOUND,
            "VERSION_NOT_FOUND",
        )
        assert err.metadata.get("version") == "repositories/codzo/versions/3"
        listed = await client.list_distributions()
        assert [d.name for d in listed.distributions] == ["distributions/web", "distributions/web2"]


async def test_repository_served_by_a_distribution_cannot_be_deleted(
    grpc_target: str, admin_token: str
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_repository("pinned")
        await client.create_distribution("web", "hello", repository="codzo")
        await client.create_distribution("pin", "pin", version="repositories/pinned/versions/0")

        err = await fails(
            client.delete_repository("codzo"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "REPOSITORY_DISTRIBUTED",
        )
        assert err.metadata.get("distribution") == "distributions/web"
        await fails(
            client.delete_repository("pinned"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "REPOSITORY_DISTRIBUTED",
        )
        assert (await client.get_repository("codzo")).name == "repositories/codzo"

        await client.delete_distribution("web")
        await client.delete_distribution("pin")
        await client.delete_repository("codzo")
        await client.delete_repository("pinned")
        assert list((await client.list_repositories()).repositories) == []
