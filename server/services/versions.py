"""VersionService: read and delete immutable repository versions."""

from __future__ import annotations

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.names import RepositoryName, VersionName
from server.services import convert
from server.services.errors import unary_errors
from server.services.paging import is_number, next_token, page_of
from server.store.versions import VersionStore


class VersionServicer(pb_grpc.VersionServiceServicer):
    """Translates VersionService calls to the version store."""

    def __init__(self, versions: VersionStore) -> None:
        self._versions = versions

    @unary_errors
    async def GetVersion(
        self, request: pb.GetVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetVersionResponse:
        name = VersionName.parse(request.name)
        version = await self._versions.get(name.repository.repository_id, name.number)
        return pb.GetVersionResponse(version=convert.version_to_pb(version))

    @unary_errors
    async def ListVersions(
        self, request: pb.ListVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVersionsResponse:
        parent = RepositoryName.parse(request.parent, "parent")
        page = page_of(request.page_size, request.page_token, cursor=is_number, parent=str(parent))
        versions, more = await self._versions.list(parent.repository_id, page.size, page.cursor)
        return pb.ListVersionsResponse(
            versions=[convert.version_to_pb(v) for v in versions],
            next_page_token=next_token(
                more, versions[-1].number if versions else None, parent=str(parent)
            ),
        )

    @unary_errors
    async def DeleteVersion(
        self, request: pb.DeleteVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteVersionResponse:
        name = VersionName.parse(request.name, allow_latest=False)
        assert name.number is not None
        await self._versions.delete(name.repository.repository_id, name.number)
        return pb.DeleteVersionResponse()
