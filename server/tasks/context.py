"""What a running task's handler sees: its snapshot, progress reporting and warnings."""

from __future__ import annotations

import time
from dataclasses import replace

from server.domain.tasks import ProgressReport, Task
from server.store.tasks import TaskStore
from server.tasks.events import EventKind, TaskEvent, TaskEvents

PUBLISH_INTERVAL = 0.25  # at most ~4 progress events a second reach watchers
PERSIST_INTERVAL = 1.0  # progress written to the task row at most once a second
MAX_KEPT_WARNINGS = 200  # a task keeps this many warnings, then counts the rest


class TaskContext:
    """Progress sink for one running task; coalesces on timers so reporting is cheap."""

    def __init__(self, task: Task, store: TaskStore, events: TaskEvents, worker: str) -> None:
        self.task = task
        self.worker = worker
        self._store = store
        self._events = events
        self._published = 0.0
        self._persisted = 0.0
        self.cancel_requested = False
        self._suppressed = 0
        # Resources already durable (a committed version): the task counts as done even if
        # a later step fails or a cancel arrives.
        self.created: tuple[str, ...] = ()

    @property
    def parameters(self) -> dict[str, str]:
        return self.task.parameters

    async def report(self, report: ProgressReport, *, force: bool = False) -> None:
        """Record a stage's counters; watchers and the row see it within the intervals."""
        self.task = self.task.with_progress(report)
        now = time.monotonic()
        if force or now - self._published >= PUBLISH_INTERVAL:
            self._published = now
            self._events.publish(TaskEvent(EventKind.PROGRESS, self.task))
        if force or now - self._persisted >= PERSIST_INTERVAL:
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
