"""SyncService: start a sync task, and optionally stream its events until it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.errors import Violations
from server.domain.names import RemoteName, RepositoryName
from server.domain.rules import check_request_id
from server.domain.tasks import Task
from server.services import convert
from server.services.errors import stream_errors, unary_errors
from server.services.tasks import event_fields
from server.store.remotes import RemoteStore
from server.store.repositories import RepositoryStore
from server.store.tasks import TaskStore
from server.sync.engine import SYNC_KIND, SyncParameters
from server.tasks.events import TaskEvents
from server.tasks.runner import TaskRunner
from server.tasks.watch import watch_task


class SyncServicer(pb_grpc.SyncServiceServicer):
    """Queues sync tasks; the task runner executes them."""

    def __init__(
        self,
        repositories: RepositoryStore,
        remotes: RemoteStore,
        tasks: TaskStore,
        events: TaskEvents,
        runner: TaskRunner,
    ) -> None:
        self._repositories = repositories
        self._remotes = remotes
        self._tasks = tasks
        self._events = events
        self._runner = runner

    async def _start(self, request: pb.StartSyncRequest | pb.SyncRequest) -> Task:
        bad = Violations()
        repository = bad.check(RepositoryName.parse, request.repository, "repository")
        remote = bad.check(RemoteName.parse, request.remote, "remote")
        request_id = bad.check(check_request_id, request.request_id)
        bad.raise_if_any()
        assert repository is not None and remote is not None
        # Fail fast on unknown names rather than queue a task that can only fail.
        await self._repositories.get(repository.repository_id)
        await self._remotes.get(remote.remote_id)
        params = SyncParameters(repository.repository_id, remote.remote_id, request.mirror)
        task, created = await self._tasks.create(
            SYNC_KIND, str(repository), params.to_parameters(), request_id
        )
        if created:
            self._runner.wake()
        return task

    @unary_errors
    async def StartSync(
        self, request: pb.StartSyncRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartSyncResponse:
        task = await self._start(request)
        return pb.StartSyncResponse(task=convert.task_to_pb(task))

    @stream_errors
    async def Sync(
        self, request: pb.SyncRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SyncResponse]:
        task = await self._start(request)
        async for event in watch_task(self._tasks, self._events, task.task_id):
            yield pb.SyncResponse(**event_fields(event))
