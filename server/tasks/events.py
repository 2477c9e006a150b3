"""In-process fan-out of task events to watchers.

The engine never waits on watchers: each watcher has a bounded queue; progress events are
dropped for a watcher that falls behind (the next one carries the full snapshot anyway), while
state changes, warnings and the final event are always delivered.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

from server.domain.tasks import Task

WATCHER_QUEUE = 256


class EventKind(StrEnum):
    """What a task event reports."""

    SNAPSHOT = "snapshot"
    STATE = "state"
    PROGRESS = "progress"
    WARNING = "warning"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One event: its kind, the full task snapshot after it, and a warning's text."""

    kind: EventKind
    task: Task
    warning: str = ""


class TaskEvents:
    """Publish/subscribe of task events by task id, within one process."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[TaskEvent]]] = defaultdict(set)
        self._running_here: set[str] = set()

    def is_running_here(self, task_id: str) -> bool:
        """Whether this process runs the task (its events are the freshest source)."""
        return task_id in self._running_here

    def publish(self, event: TaskEvent) -> None:
        if event.kind is EventKind.STATE:
            self._running_here.add(event.task.task_id)
        elif event.kind is EventKind.FINISHED:
            self._running_here.discard(event.task.task_id)
        for queue in self._watchers.get(event.task.task_id, ()):
            if queue.full():
                if event.kind is EventKind.PROGRESS:
                    continue
                # Make room for an event that must arrive: drop the oldest.
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, task_id: str) -> AsyncIterator[asyncio.Queue[TaskEvent]]:
        queue: asyncio.Queue[TaskEvent] = asyncio.Queue(WATCHER_QUEUE)
        self._watchers[task_id].add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.get(task_id)
            if watchers is not None:
                watchers.discard(queue)
                if not watchers:
                    del self._watchers[task_id]
