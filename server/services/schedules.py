"""ScheduleService: recurring syncs (AIP-style CRUD); the scheduler fires them."""

from __future__ import annotations

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.errors import InvalidArgument
from server.domain.names import ScheduleName, check_id
from server.domain.schedules import validate_timing
from server.services import convert
from server.services.errors import unary_errors
from server.services.masks import resolve_mask
from server.services.paging import is_name, next_token, page_of
from server.store.schedules import ScheduleStore, merge

_OUTPUT_ONLY = (
    "name",
    "next_run_time",
    "last_run_time",
    "last_task",
    "last_result",
    "skipped_runs",
    "create_time",
    "update_time",
)
_MUTABLE = tuple(f.name for f in pb.Schedule.DESCRIPTOR.fields if f.name not in _OUTPUT_ONLY)
_TIMING = ("cron", "interval", "time_zone")


class ScheduleServicer(pb_grpc.ScheduleServiceServicer):
    """Translates ScheduleService calls to the schedule store."""

    def __init__(self, schedules: ScheduleStore) -> None:
        self._schedules = schedules

    @unary_errors
    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateScheduleResponse:
        schedule_id = check_id(request.schedule_id, "schedule_id")
        if not request.HasField("schedule"):
            raise InvalidArgument("schedule is required", field="schedule")
        schedule = convert.schedule_from_pb(schedule_id, request.schedule)
        validate_timing(schedule.timing)
        created = await self._schedules.create(schedule)
        return pb.CreateScheduleResponse(schedule=convert.schedule_to_pb(created))

    @unary_errors
    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetScheduleResponse:
        schedule = await self._schedules.get(ScheduleName.parse(request.name).schedule_id)
        return pb.GetScheduleResponse(schedule=convert.schedule_to_pb(schedule))

    @unary_errors
    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSchedulesResponse:
        page = page_of(request.page_size, request.page_token, cursor=is_name)
        schedules, more = await self._schedules.list(page.size, page.cursor)
        return pb.ListSchedulesResponse(
            schedules=[convert.schedule_to_pb(s) for s in schedules],
            next_page_token=next_token(more, schedules[-1].schedule_id if schedules else None),
        )

    @unary_errors
    async def UpdateSchedule(
        self, request: pb.UpdateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateScheduleResponse:
        name = ScheduleName.parse(request.schedule.name, "schedule.name")
        paths = resolve_mask(
            request.update_mask, request.schedule, mutable=_MUTABLE, output_only=_OUTPUT_ONLY
        )
        for required in ("repository", "remote"):
            if required in paths and not getattr(request.schedule, required):
                raise InvalidArgument(f"{required} cannot be empty", field=f"schedule.{required}")
        current = await self._schedules.get(name.schedule_id)
        update = convert.schedule_from_pb(name.schedule_id, request.schedule, partial=True)
        merged = merge(current, update, paths)
        validate_timing(merged.timing)
        if not paths:
            return pb.UpdateScheduleResponse(schedule=convert.schedule_to_pb(current))
        retime = any(p in _TIMING for p in paths) or (merged.enabled and not current.enabled)
        saved = await self._schedules.replace(merged, retime=retime)
        return pb.UpdateScheduleResponse(schedule=convert.schedule_to_pb(saved))

    @unary_errors
    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteScheduleResponse:
        await self._schedules.delete(ScheduleName.parse(request.name).schedule_id)
        return pb.DeleteScheduleResponse()
