"""DistributionService: publish repositories (latest or pinned version) at base paths."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.errors import FieldViolation, InvalidArgument, Rule, Violations
from server.domain.names import DistributionName, RepositoryName, VersionName, check_id
from server.domain.resources import Distribution
from server.domain.rules import is_oci_name
from server.services import convert
from server.services.errors import unary_errors
from server.services.masks import resolve_mask
from server.services.paging import is_name, next_token, page_of
from server.store.distributions import DistributionStore, pinned_version_name

_OUTPUT_ONLY = ("name", "registry_path", "create_time", "update_time")
_MUTABLE = ("base_path", "repository", "version", "description", "public")


def _target(msg: pb.Distribution, field: str) -> tuple[str, int | None]:
    """(repository id, pinned number or None) from exactly one of repository / version."""
    if bool(msg.repository) == bool(msg.version):
        raise InvalidArgument.of(
            [
                FieldViolation(
                    f"{field}.repository",
                    "set exactly one of repository (follows the latest version) or version",
                    Rule.INCOMPATIBLE_FIELDS,
                )
            ]
        )
    if msg.repository:
        return RepositoryName.parse(msg.repository, f"{field}.repository").repository_id, None
    version = VersionName.parse(msg.version, f"{field}.version", allow_latest=False)
    return version.repository.repository_id, version.number


def _check_base_path(value: str, field: str) -> str:
    if not is_oci_name(value):
        raise InvalidArgument(
            f"base_path {value!r} is not a valid OCI repository name "
            "(lower-case components separated by /)",
            field=field,
            reason=Rule.INVALID_REPOSITORY_PATH,
        )
    return value


class DistributionServicer(pb_grpc.DistributionServiceServicer):
    """Translates DistributionService calls to the distribution store."""

    def __init__(self, distributions: DistributionStore, registry_host: Callable[[], str]) -> None:
        self._distributions = distributions
        self._registry_host = registry_host

    def _to_pb(self, distribution: Distribution) -> pb.Distribution:
        return pb.Distribution(
            name=distribution.name,
            base_path=distribution.base_path,
            repository=""
            if distribution.version is not None
            else f"repositories/{distribution.repository_id}",
            version=pinned_version_name(distribution),
            registry_path=f"{self._registry_host()}/{distribution.base_path}",
            description=distribution.description,
            public=distribution.public,
            create_time=convert.timestamp(distribution.create_time),
            update_time=convert.timestamp(distribution.update_time),
        )

    @unary_errors
    async def CreateDistribution(
        self, request: pb.CreateDistributionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDistributionResponse:
        msg = request.distribution
        bad = Violations()
        distribution_id = bad.check(check_id, request.distribution_id, "distribution_id")
        base_path = bad.check(_check_base_path, msg.base_path, "distribution.base_path")
        target = bad.check(_target, msg, "distribution")
        bad.raise_if_any()
        assert distribution_id is not None and base_path is not None and target is not None
        repository_id, version = target
        created = await self._distributions.create(
            Distribution(
                distribution_id=distribution_id,
                base_path=base_path,
                repository_id=repository_id,
                version=version,
                description=msg.description,
                public=msg.public,
            )
        )
        return pb.CreateDistributionResponse(distribution=self._to_pb(created))

    @unary_errors
    async def GetDistribution(
        self, request: pb.GetDistributionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDistributionResponse:
        found = await self._distributions.get(DistributionName.parse(request.name).distribution_id)
        return pb.GetDistributionResponse(distribution=self._to_pb(found))

    @unary_errors
    async def ListDistributions(
        self, request: pb.ListDistributionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDistributionsResponse:
        page = page_of(request.page_size, request.page_token, cursor=is_name)
        found, more = await self._distributions.list(page.size, page.cursor)
        return pb.ListDistributionsResponse(
            distributions=[self._to_pb(d) for d in found],
            next_page_token=next_token(more, found[-1].distribution_id if found else None),
        )

    @unary_errors
    async def UpdateDistribution(
        self, request: pb.UpdateDistributionRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateDistributionResponse:
        msg = request.distribution
        name = DistributionName.parse(msg.name, "distribution.name")
        paths = resolve_mask(request.update_mask, msg, mutable=_MUTABLE, output_only=_OUTPUT_ONLY)
        current = await self._distributions.get(name.distribution_id)
        changes: dict[str, object] = {}
        if "base_path" in paths:
            changes["base_path"] = _check_base_path(msg.base_path, "distribution.base_path")
        if "description" in paths:
            changes["description"] = msg.description
        if "public" in paths:
            changes["public"] = msg.public
        if "repository" in paths or "version" in paths:
            repository_id, version = _target(msg, "distribution")
            changes.update(repository_id=repository_id, version=version)
        if not changes:
            return pb.UpdateDistributionResponse(distribution=self._to_pb(current))
        updated = await self._distributions.replace(dataclasses.replace(current, **changes))
        return pb.UpdateDistributionResponse(distribution=self._to_pb(updated))

    @unary_errors
    async def DeleteDistribution(
        self, request: pb.DeleteDistributionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDistributionResponse:
        await self._distributions.delete(DistributionName.parse(request.name).distribution_id)
        return pb.DeleteDistributionResponse()
