"""HousekeepingService: queue garbage collection and repair tasks (the runner executes them)."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.config import Settings
from server.domain.errors import FieldViolation, Rule, Violations
from server.domain.names import VersionName
from server.domain.rules import check_request_id
from server.housekeeping.collect import GC_KIND, GC_RESOURCE, CollectParameters
from server.housekeeping.repair import REPAIR_KIND, RepairParameters
from server.services import convert
from server.services.errors import unary_errors
from server.store.tasks import TaskStore
from server.store.versions import VersionStore
from server.tasks.runner import TaskRunner

MAX_DURATION_SECONDS = 100 * 365 * 86400  # beyond a century is a typo, not a policy


def _seconds(
    request: pb.CleanupOrphansRequest, field: str, default: float
) -> tuple[float, FieldViolation | None]:
    if not request.HasField(field):
        return default, None
    value: duration_pb2.Duration = getattr(request, field)
    seconds = value.seconds + value.nanos / 1e9
    if not 0 <= seconds <= MAX_DURATION_SECONDS:
        return default, FieldViolation(field, "must be between 0 and 100 years", Rule.OUT_OF_RANGE)
    return seconds, None


class HousekeepingServicer(pb_grpc.HousekeepingServiceServicer):
    """Validates requests and queues the tasks."""

    def __init__(
        self, settings: Settings, tasks: TaskStore, versions: VersionStore, runner: TaskRunner
    ) -> None:
        self._settings = settings
        self._tasks = tasks
        self._versions = versions
        self._runner = runner

    @unary_errors
    async def CleanupOrphans(
        self, request: pb.CleanupOrphansRequest, context: grpc.aio.ServicerContext
    ) -> pb.CleanupOrphansResponse:
        protection, bad_protection = _seconds(
            request, "orphan_protection_time", self._settings.orphan_protection_time
        )
        retention, bad_retention = _seconds(
            request, "task_retention", self._settings.task_retention
        )
        bad = Violations()
        bad.extend([v for v in (bad_protection, bad_retention) if v])
        request_id = bad.check(check_request_id, request.request_id)
        bad.raise_if_any()
        params = CollectParameters(protection, retention)
        task, created = await self._tasks.create(
            GC_KIND, GC_RESOURCE, params.to_parameters(), request_id
        )
        if created:
            self._runner.wake()
        return pb.CleanupOrphansResponse(task=convert.task_to_pb(task))

    @unary_errors
    async def RepairVersion(
        self, request: pb.RepairVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepairVersionResponse:
        bad = Violations()
        name = bad.check(VersionName.parse, request.version, "version")
        request_id = bad.check(check_request_id, request.request_id)
        bad.raise_if_any()
        assert name is not None
        # Resolve `latest` now: the task repairs the version the caller saw.
        version = await self._versions.get(name.repository.repository_id, name.number)
        params = RepairParameters(name.repository.repository_id, version.number)
        task, created = await self._tasks.create(
            REPAIR_KIND, str(name.repository), params.to_parameters(), request_id
        )
        if created:
            self._runner.wake()
        return pb.RepairVersionResponse(task=convert.task_to_pb(task))
