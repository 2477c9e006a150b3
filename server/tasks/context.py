"""What a running task's handler sees: its snapshot, progress reporting and warnings."""

from __future__ import annotations

import time
from dataclasses import replace

from server.domain.plan import SyncPlan
from server.domain.tasks import ProgressReport, Task
from server.store.tasks import TaskStore
from server.tasks.events import EventKind, TaskEvent, TaskEvents

PUBLISH_INTERVAL = 0.25  # at most ~4 progress events a second reach watchers
PERSIST_INTERVAL = 1.0  # progress written to the task row at most once a second
MAX_KEPT_WARNINGS = 200  # a task keeps this many warnings, then counts the rest


class TaskContext:
    """Progress sink for one running task; coalesces on timers so reporting is cheap."""

    def __init__(self, task: Task, store: TaskStore, events: TaskEvents, worker: str) -> None:
        self._task = task
        # Reports since the snapshot was last rebuilt, by stage code: folding them into the
        # snapshot only when it is read keeps a per-item `advance` cheap.
        self._pending: dict[str, ProgressReport] = {}
        self.worker = worker
        self._store = store
        self._events = events
        self._published = 0.0
        # The claim just wrote the row: the first progress write can wait an interval, so a
        # short sync writes its row once, when it finishes.
        self._persisted = time.monotonic()
        self.cancel_requested = False
        self._suppressed = 0
        # Resources already durable (a committed version): the task counts as done even if
        # a later step fails or a cancel arrives.
        self.created: tuple[str, ...] = ()
        # A dry-run sync's result, recorded on the task when it completes.
        self.sync_plan: SyncPlan | None = None

    @property
    def task(self) -> Task:
        """The current snapshot, with every reported counter in it."""
        if self._pending:
            for report in self._pending.values():
                self._task = self._task.with_progress(report)
            self._pending.clear()
        return self._task

    @task.setter
    def task(self, value: Task) -> None:
        self._pending.clear()
        self._task = value

    @property
    def parameters(self) -> dict[str, str]:
        return self._task.parameters

    async def report(self, report: ProgressReport, *, force: bool = False) -> None:
        """Record a stage's counters; watchers see them within PUBLISH_INTERVAL (at once with
        `force`, for stage starts and ends), the row within PERSIST_INTERVAL."""
        self._pending[report.code] = report
        now = time.monotonic()
        if force or now - self._published >= PUBLISH_INTERVAL:
            self._published = now
            self._events.publish(TaskEvent(EventKind.PROGRESS, self.task))
        if now - self._persisted >= PERSIST_INTERVAL:
            await self.flush()

    async def warn(self, message: str) -> None:
        """A non-fatal problem, delivered to every watcher at once and kept on the task (the
        first MAX_KEPT_WARNINGS of them, then a count), persisted with the next flush."""
        kept = self.task.warnings
        if len(kept) < MAX_KEPT_WARNINGS:
            kept = (*kept, message)
        else:
            self._suppressed += 1
            note = f"... and {self._suppressed} more warning(s)"
            kept = (*kept[:MAX_KEPT_WARNINGS], note)
        self.task = replace(self.task, warnings=kept)
        self._events.publish(TaskEvent(EventKind.WARNING, self.task, warning=message))
        if time.monotonic() - self._persisted >= PERSIST_INTERVAL:
            await self.flush()

    async def flush(self) -> None:
        """Write progress to the row now (also the heartbeat); notes a cancel request."""
        self._persisted = time.monotonic()
        if await self._store.save_progress(
            self.task.task_id, self.worker, self.task.progress, self.task.warnings
        ):
            self.cancel_requested = True
