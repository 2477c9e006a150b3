"""ContentOperationService: add/remove, tag/untag, copy tags, roll back; one version each.

Names are checked here (a base version must belong to the repository written, tags and
digests must be well formed); what they name is checked against the version itself inside
the commit transaction (`server/store/operations.py`).
"""

from __future__ import annotations

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.names import RepositoryName, VersionName
from server.domain.resources import VersionOrigin, VersionSource
from server.domain.rules import check_tag_pattern
from server.services import convert
from server.services.errors import unary_errors
from server.store.operations import ContentOperations, Outcome, VersionRef


def principal_of(context: grpc.aio.ServicerContext) -> str:
    """The authenticated caller's name, recorded with the versions it makes.

    The access-control interceptor establishes who calls; until it runs in this process
    every caller is anonymous (empty)."""
    del context
    return ""


def _base(repository: RepositoryName, raw: str, field: str) -> VersionRef:
    """The base version named by `raw` (empty: latest), which must be of `repository`."""
    if not raw:
        return VersionRef(repository.repository_id)
    name = VersionName.parse(raw, field)
    if name.repository != repository:
        raise InvalidArgument(
            f"{field} {raw!r} is a version of {name.repository}, not of {repository}",
            field=field,
            reason="BASE_VERSION_OF_OTHER_REPOSITORY",
        )
    return VersionRef(repository.repository_id, name.number)


def _origin(context: grpc.aio.ServicerContext, detail: str) -> VersionOrigin:
    return VersionOrigin(VersionSource.OPERATION, principal_of(context), detail[:1000])


def _ref(name: VersionName) -> VersionRef:
    return VersionRef(name.repository.repository_id, name.number)


class ContentOperationServicer(pb_grpc.ContentOperationServiceServicer):
    """Translates ContentOperationService calls to `ContentOperations`."""

    def __init__(self, operations: ContentOperations) -> None:
        self._operations = operations

    @unary_errors
    async def ModifyContent(
        self, request: pb.ModifyContentRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModifyContentResponse:
        repository = RepositoryName.parse(request.repository, "repository")
        base = _base(repository, request.base_version, "base_version")
        source = (
            _ref(VersionName.parse(request.source_version, "source_version"))
            if request.source_version
            else None
        )
        if not request.add and not request.remove:
            raise InvalidArgument("name content to add or to remove", field="add")
        detail = "modify:"
        if request.add:
            detail += f" add {list(request.add)} from {request.source_version}"
        if request.remove:
            detail += f" remove {list(request.remove)}"
        outcome = await self._operations.modify(
            base,
            add=list(request.add),
            source=source,
            remove=list(request.remove),
            origin=_origin(context, detail),
        )
        return pb.ModifyContentResponse(**_fields(outcome))

    @unary_errors
    async def TagManifest(
        self, request: pb.TagManifestRequest, context: grpc.aio.ServicerContext
    ) -> pb.TagManifestResponse:
        repository = RepositoryName.parse(request.repository, "repository")
        base = _base(repository, request.base_version, "base_version")
        outcome = await self._operations.tag(
            base,
            request.tag,
            request.digest,
            _origin(context, f"tag {request.tag} -> {request.digest}"),
        )
        return pb.TagManifestResponse(**_fields(outcome))

    @unary_errors
    async def UntagManifest(
        self, request: pb.UntagManifestRequest, context: grpc.aio.ServicerContext
    ) -> pb.UntagManifestResponse:
        repository = RepositoryName.parse(request.repository, "repository")
        base = _base(repository, request.base_version, "base_version")
        outcome = await self._operations.untag(
            base, request.tag, _origin(context, f"untag {request.tag}")
        )
        return pb.UntagManifestResponse(**_fields(outcome))

    @unary_errors
    async def CopyTags(
        self, request: pb.CopyTagsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CopyTagsResponse:
        source = VersionName.parse(request.source_version, "source_version")
        destination = RepositoryName.parse(request.destination, "destination")
        base = _base(destination, request.base_version, "base_version")
        violations = [
            FieldViolation(f"tags[{i}]", problem)
            for i, pattern in enumerate(request.tags)
            if (problem := _tag_pattern_problem(pattern))
        ]
        if violations:
            text = "; ".join(f"{v.field}: {v.description}" for v in violations)
            raise InvalidArgument(text, violations=violations, reason="INVALID_TAG_PATTERN")
        outcome = await self._operations.copy_tags(
            _ref(source),
            base,
            list(request.tags),
            _origin(context, f"copy tags {list(request.tags) or ['*']} from {source}"),
        )
        return pb.CopyTagsResponse(**_fields(outcome))

    @unary_errors
    async def RollbackRepository(
        self, request: pb.RollbackRepositoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.RollbackRepositoryResponse:
        name = VersionName.parse(request.version, "version", allow_latest=False)
        outcome = await self._operations.rollback(
            _ref(name), _origin(context, f"rollback to version {name.number}")
        )
        return pb.RollbackRepositoryResponse(**_fields(outcome))


def _tag_pattern_problem(pattern: str) -> str | None:
    if ":" in pattern:
        return "CopyTags takes tags or tag wildcards, not digests"
    return check_tag_pattern(pattern)


def _fields(outcome: Outcome) -> dict[str, object]:
    return {"version": convert.version_to_pb(outcome.version), "changed": outcome.changed}
