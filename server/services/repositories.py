"""RepositoryService: create, read, update and delete repositories."""

from __future__ import annotations

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.errors import InvalidArgument, Rule, Violations
from server.domain.names import RepositoryName, check_id
from server.services import convert
from server.services.errors import unary_errors
from server.services.masks import resolve_mask
from server.services.paging import is_name, next_token, page_of
from server.store.repositories import MUTABLE_FIELDS, RepositoryStore

_OUTPUT_ONLY = (
    "name",
    "uid",
    "latest_version",
    "latest_version_number",
    "versions",
    "create_time",
    "update_time",
)
MAX_RETAIN_VERSIONS = 1_000_000


def _check_retain(value: int, field: str) -> int:
    if not 0 <= value <= MAX_RETAIN_VERSIONS:
        raise InvalidArgument(
            f"retain_versions must be between 0 (keep all) and {MAX_RETAIN_VERSIONS}, got {value}",
            field=field,
            reason=Rule.OUT_OF_RANGE,
        )
    return value


class RepositoryServicer(pb_grpc.RepositoryServiceServicer):
    """Translates RepositoryService calls to the repository store."""

    def __init__(self, repositories: RepositoryStore) -> None:
        self._repositories = repositories

    @unary_errors
    async def CreateRepository(
        self, request: pb.CreateRepositoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRepositoryResponse:
        bad = Violations()
        repository_id = bad.check(check_id, request.repository_id, "repository_id")
        retain = bad.check(
            _check_retain, request.repository.retain_versions, "repository.retain_versions"
        )
        bad.raise_if_any()
        assert repository_id is not None and retain is not None
        repo = await self._repositories.create(
            repository_id, request.repository.description, retain
        )
        return pb.CreateRepositoryResponse(repository=convert.repository_to_pb(repo))

    @unary_errors
    async def GetRepository(
        self, request: pb.GetRepositoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRepositoryResponse:
        name = RepositoryName.parse(request.name)
        repo = await self._repositories.get(name.repository_id)
        return pb.GetRepositoryResponse(repository=convert.repository_to_pb(repo))

    @unary_errors
    async def ListRepositories(
        self, request: pb.ListRepositoriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRepositoriesResponse:
        page = page_of(request.page_size, request.page_token, cursor=is_name)
        repos, more = await self._repositories.list(page.size, page.cursor)
        return pb.ListRepositoriesResponse(
            repositories=[convert.repository_to_pb(r) for r in repos],
            next_page_token=next_token(more, repos[-1].repository_id if repos else None),
        )

    @unary_errors
    async def UpdateRepository(
        self, request: pb.UpdateRepositoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateRepositoryResponse:
        name = RepositoryName.parse(request.repository.name, "repository.name")
        paths = resolve_mask(
            request.update_mask,
            request.repository,
            mutable=MUTABLE_FIELDS,
            output_only=_OUTPUT_ONLY,
        )
        changes: dict[str, object] = {}
        if "description" in paths:
            changes["description"] = request.repository.description
        if "retain_versions" in paths:
            changes["retain_versions"] = _check_retain(
                request.repository.retain_versions, "repository.retain_versions"
            )
        if "mirror" in paths:
            # The deliberate way out of (or into) mirror mode; see the mirror rule in
            # server/store/commits.py.
            changes["mirror"] = request.repository.mirror
        repo = await self._repositories.update(name.repository_id, changes)
        return pb.UpdateRepositoryResponse(repository=convert.repository_to_pb(repo))

    @unary_errors
    async def DeleteRepository(
        self, request: pb.DeleteRepositoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRepositoryResponse:
        name = RepositoryName.parse(request.name)
        await self._repositories.delete(name.repository_id)
        return pb.DeleteRepositoryResponse()
