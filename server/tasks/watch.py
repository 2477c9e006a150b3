"""Following a task: a snapshot first, then its events until it ends.

Events come from the in-process fan-out; a task run by another server process (shared
PostgreSQL) is followed by polling its row, which the worker updates about once a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from server.store.tasks import TaskStore
from server.tasks.events import EventKind, TaskEvent, TaskEvents

POLL_INTERVAL = 1.0


async def watch_task(
    store: TaskStore, events: TaskEvents, task_id: str
) -> AsyncIterator[TaskEvent]:
    """Yield a SNAPSHOT, then events; the last one is FINISHED (or the snapshot of a done task)."""
    async with events.subscribe(task_id) as queue:
        # Subscribe before reading the row, so no event between the two is lost.
        task = await store.get(task_id)
        yield TaskEvent(EventKind.SNAPSHOT, task)
        if task.state.is_terminal:
            return
        seen = task
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), POLL_INTERVAL)
            except TimeoutError:
                fresh = await store.get(task_id)
                if fresh.state.is_terminal:
                    yield TaskEvent(EventKind.FINISHED, fresh)
                    return
                if fresh.state != seen.state:
                    seen = fresh
                    yield TaskEvent(EventKind.STATE, fresh)
                elif fresh.progress != seen.progress and not events.is_running_here(task_id):
                    # The row is written about once a second, so it lags the events of a
                    # task run here; it is the only source for a task run elsewhere.
                    seen = fresh
                    yield TaskEvent(EventKind.PROGRESS, fresh)
                continue
            seen = event.task
            yield event
            if event.kind is EventKind.FINISHED:
                return
