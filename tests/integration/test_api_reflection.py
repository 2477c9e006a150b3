"""Server reflection and the standard health service, as grpcurl would use them.

The reflection client is grpcio-reflection's ``ProtoReflectionDescriptorDatabase``, which
needs a blocking channel; it runs in a worker thread so that the event loop the server
runs on stays free.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from client.auth import aio_interceptors
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc

MIRROR_SERVICES = sorted(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())


def _reflect(target: str) -> tuple[list[str], dict[str, list[str]], str]:
    """(services listed, methods per mirror service, file that defines RepositoryService)."""
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = list(database.get_services())
        pool = DescriptorPool(database)
        methods = {
            name: [m.name for m in pool.FindServiceByName(name).methods] for name in MIRROR_SERVICES
        }
        repository = pool.FindServiceByName("mirror.v1.RepositoryService")
        create = repository.methods_by_name["CreateRepository"]
        assert create.input_type.full_name == "mirror.v1.CreateRepositoryRequest"
        assert create.output_type.full_name == "mirror.v1.CreateRepositoryResponse"
        fields = [f.name for f in create.input_type.fields]
        assert fields == ["repository_id", "repository"]
        remote = pool.FindMessageTypeByName("mirror.v1.Remote")
        assert remote.fields_by_name["update_time"].message_type.full_name == (
            "google.protobuf.Timestamp"
        )
        return services, methods, repository.file.name


# Independent of the database: the SQLite run is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_reflection_and_health(grpc_target: str) -> None:
    services, methods, filename = await asyncio.to_thread(_reflect, grpc_target)
    assert sorted(services) == sorted(
        [
            *MIRROR_SERVICES,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
    )
    assert len(MIRROR_SERVICES) == 10  # with ContentOperation, Housekeeping and Access
    for name in MIRROR_SERVICES:
        expected = [m.name for m in pb.DESCRIPTOR.services_by_name[name.split(".")[-1]].methods]
        assert methods[name] == expected, name
    assert methods["mirror.v1.RepositoryService"] == [
        "CreateRepository",
        "GetRepository",
        "ListRepositories",
        "UpdateRepository",
        "DeleteRepository",
    ]
    assert filename.endswith("mirror.proto")

    # Health and reflection need no credentials (load balancers and grpcurl probe them).
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", *MIRROR_SERVICES):
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        try:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        except grpc.aio.AioRpcError as err:
            assert err.code() is grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("an unknown service must not be reported healthy")


BUF = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "buf"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
async def test_buf_curl_through_either_reflection_version(
    grpc_target: str, admin_token: str, protocol: str
) -> None:
    """`buf curl` (a real client, v1 first by default) calls a method it knows only by
    reflection, through each reflection version on its own."""
    buf = str(BUF) if BUF.exists() else shutil.which("buf")
    if buf is None:
        pytest.skip("buf is not installed (npm ci installs it)")
    async with grpc.aio.insecure_channel(
        grpc_target, interceptors=aio_interceptors(admin_token)
    ) as channel:
        stub = pb_grpc.RepositoryServiceStub(channel)
        await stub.CreateRepository(pb.CreateRepositoryRequest(repository_id="reflected"))
    proc = await asyncio.create_subprocess_exec(
        buf,
        "curl",
        "--header",
        f"authorization: Bearer {admin_token}",  # reflection is open, the call is not
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--reflect-protocol",
        protocol,
        "--data",
        '{"name": "repositories/reflected"}',
        f"http://{grpc_target}/mirror.v1.RepositoryService/GetRepository",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["repository"]["name"] == "repositories/reflected"
