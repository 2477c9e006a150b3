"""Smoke: the real server answers on both databases."""

import grpc

from client.auth import aio_interceptors
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc


async def test_create_and_list_repository(grpc_target: str, admin_token: str) -> None:
    async with grpc.aio.insecure_channel(
        grpc_target, interceptors=aio_interceptors(admin_token)
    ) as channel:
        stub = pb_grpc.RepositoryServiceStub(channel)
        created = await stub.CreateRepository(pb.CreateRepositoryRequest(repository_id="codzo"))
        assert created.repository.latest_version == "repositories/codzo/versions/0"
        listed = await stub.ListRepositories(pb.ListRepositoriesRequest())
        assert [r.name for r in listed.repositories] == ["repositories/codzo"]
