"""Durable task rows: queueing, claiming (one running task per resource), progress, finishing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from server.domain.tasks import ProgressReport, ProgressState, Task, TaskError, TaskState
from server.store.common import split_page
from server.store.db import Database
from server.store.schema import TaskRow, utcnow

ACTIVE = (TaskState.QUEUED.value, TaskState.RUNNING.value)


def _progress_to_json(report: ProgressReport) -> dict[str, Any]:
    return {
        "code": report.code,
        "message": report.message,
        "done": report.done,
        "total": report.total,
        "done_bytes": report.done_bytes,
        "total_bytes": report.total_bytes,
        "state": report.state.value,
        "unit": report.unit,
    }


def _progress_from_json(data: dict[str, Any]) -> ProgressReport:
    # Rows written before `unit` existed lack it; the dataclass default applies.
    return ProgressReport(**{**data, "state": ProgressState(data["state"])})


def to_domain(row: TaskRow) -> Task:
    error = None
    if row.error:
        error = TaskError(
            code=row.error["code"],
            reason=row.error["reason"],
            message=row.error["message"],
            metadata=dict(row.error.get("metadata", {})),
        )
    return Task(
        task_id=row.uid,
        kind=row.kind,
        state=TaskState(row.state),
        create_time=row.create_time,
        start_time=row.start_time,
        finish_time=row.finish_time,
        progress=tuple(_progress_from_json(p) for p in row.progress),
        error=error,
        created_resources=tuple(row.created_resources),
        reserved_resources=(row.resource,),
        warnings=tuple(row.warnings),
        parameters=dict(row.parameters),
        cancel_requested=row.cancel_requested,
    )


def not_found(task_id: str) -> NotFound:
    return NotFound(
        f"task tasks/{task_id} not found", reason="TASK_NOT_FOUND", task=f"tasks/{task_id}"
    )


class TaskStore:
    """Every durable state change of a task goes through here."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, kind: str, resource: str, parameters: dict[str, str], request_id: str | None
    ) -> tuple[Task, bool]:
        """Queue a task; with a known `request_id` return the existing task. -> (task, created)."""
        if request_id:
            existing = await self._by_request_id(kind, request_id)
            if existing is not None:
                return self._same_request(existing, parameters, request_id), False
        row = TaskRow(
            uid=str(uuid.uuid4()),
            kind=kind,
            state=TaskState.QUEUED.value,
            resource=resource,
            parameters=parameters,
            request_id=request_id or None,
            create_time=utcnow(),
            progress=[],
            warnings=[],
            created_resources=[],
            cancel_requested=False,
        )
        try:
            async with self._db.session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            # Lost a race with the same request_id: the other insert won.
            existing = await self._by_request_id(kind, request_id or "")
            if existing is None:
                raise
            return self._same_request(existing, parameters, request_id or ""), False
        return to_domain(row), True

    @staticmethod
    def _same_request(task: Task, parameters: dict[str, str], request_id: str) -> Task:
        if task.parameters != parameters:
            raise AlreadyExists(
                f"request_id {request_id} was used for another request ({task.name})",
                reason="REQUEST_ID_REUSED",
                requestId=request_id,
                task=task.name,
            )
        return task

    async def _by_request_id(self, kind: str, request_id: str) -> Task | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(TaskRow).where(TaskRow.kind == kind, TaskRow.request_id == request_id)
            )
        return None if row is None else to_domain(row)

    async def get(self, task_id: str) -> Task:
        async with self._db.session() as session:
            row = await session.scalar(select(TaskRow).where(TaskRow.uid == task_id))
        if row is None:
            raise not_found(task_id)
        return to_domain(row)

    async def list(
        self, size: int, before: int | None, state: TaskState | None, resource: str | None
    ) -> tuple[list[tuple[int, Task]], bool]:
        """Newest first, as (cursor, task) pairs; `before` is the cursor of the previous page."""
        query = select(TaskRow).order_by(TaskRow.id.desc()).limit(size + 1)
        if before is not None:
            query = query.where(TaskRow.id < before)
        if state is not None:
            query = query.where(TaskRow.state == state.value)
        if resource:
            query = query.where(TaskRow.resource == resource)
        async with self._db.session() as session:
            rows = list((await session.execute(query)).scalars())
        page, more = split_page(rows, size)
        return [(r.id, to_domain(r)) for r in page], more

    async def claim(self, worker: str, kinds: tuple[str, ...]) -> Task | None:
        """Move the oldest runnable queued task to RUNNING for `worker`, or return None.

        A task is runnable when no task of its resource runs. The partial unique index on
        running tasks makes two processes that race for one resource fail cleanly.
        """
        async with self._db.session() as session:
            running = select(TaskRow.resource).where(TaskRow.state == TaskState.RUNNING.value)
            candidates = (
                (
                    await session.execute(
                        select(TaskRow.id)
                        .where(
                            TaskRow.state == TaskState.QUEUED.value,
                            TaskRow.kind.in_(kinds),
                            TaskRow.resource.not_in(running),
                        )
                        .order_by(TaskRow.id)
                        .limit(20)
                    )
                )
                .scalars()
                .all()
            )
        for pk in candidates:
            now = utcnow()
            try:
                async with self._db.session() as session, session.begin():
                    result = await session.execute(
                        update(TaskRow)
                        .where(TaskRow.id == pk, TaskRow.state == TaskState.QUEUED.value)
                        .values(
                            state=TaskState.RUNNING.value,
                            start_time=now,
                            heartbeat_time=now,
                            worker=worker,
                        )
                    )
                    if result.rowcount != 1:
                        continue
                    row = await session.get(TaskRow, pk)
                    assert row is not None
                    return to_domain(row)
            except IntegrityError:
                continue  # another process started a task of the same resource first
        return None

    async def save_progress(
        self,
        task_id: str,
        worker: str,
        progress: tuple[ProgressReport, ...],
        warnings: tuple[str, ...],
    ) -> bool:
        """Persist progress and heartbeat; True when the worker must stop: a cancel was
        requested, or the task is no longer this worker's (it was failed as orphaned)."""
        async with self._db.session() as session, session.begin():
            result = await session.execute(
                update(TaskRow)
                .where(
                    TaskRow.uid == task_id,
                    TaskRow.state == TaskState.RUNNING.value,
                    TaskRow.worker == worker,
                )
                .values(
                    progress=[_progress_to_json(p) for p in progress],
                    warnings=list(warnings),
                    heartbeat_time=utcnow(),
                )
            )
            if result.rowcount != 1:
                return True
            return bool(
                await session.scalar(select(TaskRow.cancel_requested).where(TaskRow.uid == task_id))
            )

    async def finish(
        self,
        task: Task,
        worker: str,
        state: TaskState,
        error: TaskError | None = None,
        created: tuple[str, ...] = (),
    ) -> Task:
        """Record the final state of a task this worker runs. A task already failed as
        orphaned (another process took over) keeps that state: it is returned unchanged."""
        async with self._db.session() as session, session.begin():
            row = await session.scalar(
                select(TaskRow).where(TaskRow.uid == task.task_id).with_for_update()
            )
            if row is None:
                raise not_found(task.task_id)
            if row.state != TaskState.RUNNING.value or row.worker != worker:
                return to_domain(row)
            row.state = state.value
            row.finish_time = utcnow()
            row.progress = [_progress_to_json(p) for p in task.progress]
            row.warnings = list(task.warnings)
            row.created_resources = list(created)
            if error is not None:
                row.error = {
                    "code": error.code,
                    "reason": error.reason,
                    "message": error.message,
                    "metadata": dict(error.metadata),
                }
        return to_domain(row)

    async def request_cancel(self, task_id: str) -> Task:
        """Cancel a queued task at once; flag a running one for its worker to stop.

        Both are compare-and-set updates on the state, so a worker claiming the task at the
        same moment is never overwritten (SQLite has no row locks to rely on).
        """
        async with self._db.session() as session, session.begin():
            queued = await session.execute(
                update(TaskRow)
                .where(TaskRow.uid == task_id, TaskRow.state == TaskState.QUEUED.value)
                .values(
                    state=TaskState.CANCELED.value,
                    cancel_requested=True,
                    finish_time=utcnow(),
                    error={
                        "code": "CANCELLED",
                        "reason": "TASK_CANCELED",
                        "message": "canceled before it started",
                        "metadata": {},
                    },
                )
            )
            if queued.rowcount != 1:
                await session.execute(
                    update(TaskRow)
                    .where(TaskRow.uid == task_id, TaskRow.state == TaskState.RUNNING.value)
                    .values(cancel_requested=True)
                )
            row = await session.scalar(select(TaskRow).where(TaskRow.uid == task_id))
            if row is None:
                raise not_found(task_id)
            state = TaskState(row.state)
            if state.is_terminal and not (state is TaskState.CANCELED and queued.rowcount == 1):
                raise FailedPrecondition(
                    f"task tasks/{task_id} already finished ({state.value})",
                    reason="TASK_FINISHED",
                    task=f"tasks/{task_id}",
                    state=state.value,
                )
        return to_domain(row)

    async def wait_available(self) -> None:
        """Return once the database answers again (at once when it does)."""
        await self._db.availability.wait_up()

    async def running_workers(self) -> set[str]:
        """Worker ids of the running tasks."""
        async with self._db.session() as session:
            return set(
                (
                    await session.execute(
                        select(TaskRow.worker)
                        .where(TaskRow.state == TaskState.RUNNING.value)
                        .distinct()
                    )
                ).scalars()
            )

    async def fail_orphans(
        self,
        stale_before: datetime | None,
        *,
        exclude_worker: str = "",
        dead_workers: frozenset[str] = frozenset(),
    ) -> int:
        """Mark FAILED the running tasks whose worker died: its heartbeat is older than
        `stale_before`, or it is among `dead_workers` (all of them when `stale_before` is None:
        the embedded single-process case at start-up)."""
        query = update(TaskRow).where(TaskRow.state == TaskState.RUNNING.value)
        if stale_before is not None:
            query = query.where(
                or_(TaskRow.heartbeat_time < stale_before, TaskRow.worker.in_(dead_workers))
            )
        if exclude_worker:
            query = query.where(TaskRow.worker != exclude_worker)
        query = query.values(
            state=TaskState.FAILED.value,
            finish_time=utcnow(),
            error={
                "code": "ABORTED",
                "reason": "SERVER_RESTARTED",
                "message": "the server running this task stopped before it finished",
                "metadata": {},
            },
        )
        async with self._db.session() as session, session.begin():
            result = await session.execute(query)
        return int(result.rowcount or 0)


HEARTBEAT_STALE_AFTER = timedelta(seconds=60)
