"""The worker pool: claims queued tasks, runs their handlers, records how they ended.

Every server process runs one `TaskRunner`. Claiming is a compare-and-set on the task row, so
each task runs exactly once even with several processes on one PostgreSQL database, and the
partial unique index on running tasks keeps one running task per repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from server import logs, metrics
from server.domain.errors import DatabaseUnavailable, MirrorError, leaves
from server.domain.tasks import ProgressState, Task, TaskError, TaskState
from server.memory import release_free_memory
from server.store.processes import ProcessStore
from server.store.schema import utcnow
from server.store.tasks import HEARTBEAT_STALE_AFTER, TaskStore
from server.tasks.context import TaskContext
from server.tasks.events import EventKind, TaskEvent, TaskEvents
from server.tasks.liveness import is_dead_here, new_worker_id
from server.throttled_log import ThrottledLog

log = logging.getLogger(__name__)
throttled = ThrottledLog(log)

# A handler runs one task and returns the names of the resources it created.
Handler = Callable[[TaskContext], Awaitable[tuple[str, ...]]]

POLL_INTERVAL = 1.0  # how often idle workers look for tasks queued by other processes
WATCHDOG_INTERVAL = 2.0  # cancel requests from other processes and heartbeats


def first_leaf(group: BaseExceptionGroup) -> BaseException:
    """The most telling exception of a group: a domain error if any, else the first leaf."""
    found = leaves(group)
    return next((e for e in found if isinstance(e, MirrorError)), found[0])


class TaskRunner:
    """Runs up to `workers` tasks at once, of the kinds it has handlers for."""

    def __init__(
        self,
        store: TaskStore,
        events: TaskEvents,
        handlers: dict[str, Handler],
        *,
        processes: ProcessStore,
        workers: int = 4,
        fail_all_running_at_start: bool = True,
        worker_id: str | None = None,
    ) -> None:
        self._store = store
        self._processes = processes
        self._events = events
        self._handlers = handlers
        self._slots = asyncio.Semaphore(workers)
        self._wakeup = asyncio.Event()
        self._running: dict[str, tuple[asyncio.Task[None], TaskContext]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._fail_all_at_start = fail_all_running_at_start
        self._stopping = False
        self.worker_id = worker_id or new_worker_id()

    async def start(self) -> None:
        await self._processes.heartbeat(self.worker_id)
        if failed := await self._fail_orphans(all_running=self._fail_all_at_start):
            log.warning("marked %d task(s) FAILED: their server stopped while they ran", failed)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="task-claim"),
            asyncio.create_task(self._watchdog_loop(), name="task-watchdog"),
        ]

    async def stop(self) -> None:
        """Stop claiming; running tasks are interrupted and end FAILED (SERVER_SHUTDOWN)."""
        self._stopping = True
        for loop in self._loops:
            loop.cancel()
        running = [t for t, _ in self._running.values()]
        for task in running:
            task.cancel()
        await asyncio.gather(*self._loops, *running, return_exceptions=True)
        with contextlib.suppress(MirrorError):  # the row goes stale by itself otherwise
            await self._processes.unregister(self.worker_id)

    async def _fail_orphans(self, *, all_running: bool = False) -> int:
        """Fail the running tasks of dead workers: provably dead ones on this host at once,
        others once their heartbeat is stale; never this runner's own."""
        if all_running:
            return await self._store.fail_orphans(None)
        dead = frozenset(
            w for w in await self._store.running_workers() if is_dead_here(w, self.worker_id)
        )
        return await self._store.fail_orphans(
            utcnow() - HEARTBEAT_STALE_AFTER, exclude_worker=self.worker_id, dead_workers=dead
        )

    def wake(self) -> None:
        """A task was queued or finished here: look for work now rather than at the next poll."""
        self._wakeup.set()

    async def cancel(self, task_id: str) -> Task:
        """Cancel a task: queued ones end at once, running ones are interrupted."""
        task = await self._store.request_cancel(task_id)
        if task.state is TaskState.CANCELED:
            self._events.publish(TaskEvent(EventKind.FINISHED, task))
        elif (local := self._running.get(task_id)) is not None:
            local[0].cancel()
        return task

    async def _claim_loop(self) -> None:
        kinds = tuple(self._handlers)
        while True:
            await self._slots.acquire()
            try:
                task = await self._store.claim(self.worker_id, kinds)
            except DatabaseUnavailable as exc:
                self._slots.release()
                throttled.log("claim-db", logging.WARNING, "not claiming tasks: %s", exc.message)
                await self._store.wait_available()
                continue
            except Exception:
                self._slots.release()
                throttled.log(
                    "claim", logging.ERROR, "claiming a task failed; retrying", exc_info=True
                )
                await asyncio.sleep(POLL_INTERVAL)
                continue
            if task is None:
                self._slots.release()
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), POLL_INTERVAL)
                except TimeoutError:
                    pass
                continue
            context = TaskContext(task, self._store, self._events, self.worker_id)
            runner = asyncio.create_task(self._run(context), name=f"task-{task.task_id}")
            self._running[task.task_id] = (runner, context)

    async def _run(self, context: TaskContext) -> None:
        task = context.task
        # Every log record of this task (and of the tasks it spawns) names it.
        logs.CURRENT_TASK.set(task.name)
        self._events.publish(TaskEvent(EventKind.STATE, task))
        log.info("task %s (%s) started %s", task.name, task.kind, task.parameters)
        state, error, created = TaskState.COMPLETED, None, ()
        try:
            try:
                created = await self._handlers[task.kind](context)
            except BaseExceptionGroup as group:
                # TaskGroups wrap the first failure of concurrent steps; report that one.
                raise first_leaf(group) from group
        except asyncio.CancelledError:
            # The one place a cancellation is absorbed: it becomes the task's final state.
            if self._stopping:
                state = TaskState.FAILED
                error = TaskError(
                    "ABORTED", "SERVER_SHUTDOWN", "the server shut down during the task"
                )
            else:
                state = TaskState.CANCELED
                error = TaskError("CANCELLED", "TASK_CANCELED", "the task was canceled")
        except MirrorError as exc:
            state = TaskState.FAILED
            error = TaskError(exc.code, exc.reason, exc.message, dict(exc.metadata))
        except Exception:
            log.exception("task %s failed unexpectedly", task.name)
            state = TaskState.FAILED
            error = TaskError("INTERNAL", "INTERNAL_ERROR", "internal error; see the server log")
        finally:
            self._running.pop(task.task_id, None)
            self._slots.release()
        snapshot = context.task
        if state is TaskState.COMPLETED and context.sync_plan is not None:
            snapshot = replace(snapshot, sync_plan=context.sync_plan)
        if state is not TaskState.COMPLETED and context.created:
            # What the task made is durable (e.g. a committed version): report it as done,
            # and what went wrong afterwards as a warning.
            assert error is not None
            snapshot = replace(
                snapshot, warnings=(*snapshot.warnings, f"after completion: {error.message}")
            )
            state, error, created = TaskState.COMPLETED, None, context.created
        if state is not TaskState.COMPLETED:
            snapshot = replace(
                snapshot,
                progress=tuple(
                    replace(p, state=ProgressState.FAILED)
                    if p.state is ProgressState.RUNNING
                    else p
                    for p in snapshot.progress
                ),
            )
        final = await asyncio.shield(self._record_end(snapshot, state, error, created))
        if final is None:
            return
        log.info(
            "task %s %s%s",
            task.name,
            state.value,
            f": {error.reason}: {error.message}" if error else "",
        )
        metrics.TASKS_FINISHED.labels(task.kind, final.state.value).inc()
        self._events.publish(TaskEvent(EventKind.FINISHED, final))
        self.wake()
        if not self._running:
            # Nothing else runs here now: what the task allocated is free, give it back.
            await asyncio.to_thread(release_free_memory)

    async def _record_end(
        self,
        snapshot: Task,
        state: TaskState,
        error: TaskError | None,
        created: tuple[str, ...],
    ) -> Task | None:
        """Write the final state, waiting for the database if it is away: the task ends with
        its true cause the moment the row can be written, rather than waiting to be found
        stale and failed as SERVER_RESTARTED. None when the server stops first (the next
        start fails the row)."""
        while True:
            try:
                return await self._store.finish(snapshot, self.worker_id, state, error, created)
            except DatabaseUnavailable as exc:
                throttled.log(
                    f"finish-{snapshot.task_id}",
                    logging.WARNING,
                    "task %s ended %s; recording it when the database is back (%s)",
                    snapshot.name,
                    state.value,
                    exc.message,
                )
                if self._stopping:
                    return None
                await self._store.wait_available()
                await asyncio.sleep(0.1)  # the probe said up; do not spin if it flaps

    async def _watchdog_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            try:
                await self._watchdog_once()
            except DatabaseUnavailable as exc:
                throttled.log("watchdog-db", logging.WARNING, "task watchdog: %s", exc.message)
            except Exception:
                throttled.log("watchdog", logging.ERROR, "task watchdog failed", exc_info=True)

    async def _watchdog_once(self) -> None:
        await self._processes.heartbeat(self.worker_id)
        if self._running:
            for runner, context in list(self._running.values()):
                await context.flush()  # heartbeat, and picks up cancel requests
                if context.cancel_requested:
                    runner.cancel()
        if not self._fail_all_at_start:
            # Never our own tasks: after a long database outage their heartbeats are stale
            # too, but this process is alive and records their true end itself.
            await self._fail_orphans()
