"""TaskService: read, list, cancel and watch tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.names import TaskName
from server.services import convert
from server.services.errors import stream_errors, unary_errors
from server.services.paging import is_number, next_token, page_of
from server.store.tasks import TaskStore
from server.tasks.events import EventKind, TaskEvent, TaskEvents
from server.tasks.runner import TaskRunner
from server.tasks.watch import watch_task

EVENT_KIND_TO_PB = {
    EventKind.SNAPSHOT: pb.TASK_EVENT_KIND_SNAPSHOT,
    EventKind.STATE: pb.TASK_EVENT_KIND_STATE,
    EventKind.PROGRESS: pb.TASK_EVENT_KIND_PROGRESS,
    EventKind.WARNING: pb.TASK_EVENT_KIND_WARNING,
    EventKind.FINISHED: pb.TASK_EVENT_KIND_FINISHED,
}


def event_fields(event: TaskEvent) -> dict[str, object]:
    """The fields shared by WatchTaskResponse and SyncResponse."""
    return {
        "kind": EVENT_KIND_TO_PB[event.kind],
        "task": convert.task_to_pb(event.task),
        "warning": event.warning,
    }


class TaskServicer(pb_grpc.TaskServiceServicer):
    """Translates TaskService calls to the task store and runner."""

    def __init__(self, tasks: TaskStore, events: TaskEvents, runner: TaskRunner) -> None:
        self._tasks = tasks
        self._events = events
        self._runner = runner

    @unary_errors
    async def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTaskResponse:
        task = await self._tasks.get(TaskName.parse(request.name).task_id)
        return pb.GetTaskResponse(task=convert.task_to_pb(task))

    @unary_errors
    async def ListTasks(
        self, request: pb.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTasksResponse:
        state = convert.task_state_from_pb(request.state)
        filters = {"state": request.state, "resource": request.reserved_resource}
        page = page_of(request.page_size, request.page_token, cursor=is_number, **filters)
        rows, more = await self._tasks.list(
            page.size, page.cursor, state, request.reserved_resource
        )
        return pb.ListTasksResponse(
            tasks=[convert.task_to_pb(t) for _, t in rows],
            next_page_token=next_token(more, rows[-1][0] if rows else None, **filters),
        )

    @unary_errors
    async def CancelTask(
        self, request: pb.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelTaskResponse:
        task = await self._runner.cancel(TaskName.parse(request.name).task_id)
        return pb.CancelTaskResponse(task=convert.task_to_pb(task))

    @stream_errors
    async def WatchTask(
        self, request: pb.WatchTaskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        task_id = TaskName.parse(request.name).task_id
        async for event in watch_task(self._tasks, self._events, task_id):
            yield pb.WatchTaskResponse(**event_fields(event))
