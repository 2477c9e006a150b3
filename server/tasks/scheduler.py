"""The scheduler: every process looks for due schedules; the database decides who fires.

Each look is one indexed query (`enabled`, `next_run_time <= now`); firing is the store's
compare-and-set, so with several processes on one database each run is queued exactly once,
and the queued sync then runs on whichever worker claims it, like any other task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.domain.errors import DatabaseUnavailable
from server.store.schedules import ScheduleStore
from server.store.schema import utcnow
from server.tasks.runner import TaskRunner
from server.throttled_log import ThrottledLog

log = logging.getLogger(__name__)
throttled = ThrottledLog(log)


class Scheduler:
    """Fires due schedules every `interval` seconds until stopped."""

    def __init__(self, store: ScheduleStore, runner: TaskRunner, *, interval: float = 1.0) -> None:
        self._store = store
        self._runner = runner
        self._interval = interval
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def tick(self) -> list[str]:
        """Fire what is due now -> the names of the tasks queued."""
        queued = await self._store.fire_due(utcnow())
        if queued:
            self._runner.wake()
        return queued

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except DatabaseUnavailable as exc:
                # An outage is said once (the database probe says the rest), not a traceback a
                # second; due runs fire once when it is back.
                throttled.log("fire-db", logging.WARNING, "not firing schedules: %s", exc.message)
                await self._store.wait_available()
            except Exception:
                throttled.log(
                    "fire", logging.ERROR, "firing schedules failed; retrying", exc_info=True
                )
            await asyncio.sleep(self._interval)
