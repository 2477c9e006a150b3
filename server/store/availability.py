"""Is the database answering? One flag per process, fed by failed statements and a probe.

Statements that fail because the database cannot be reached mark it down at once (so the
health check says NOT_SERVING from the first failed call, not from the next probe); only a
successful probe marks it up again, so the flag cannot flap with every retried statement.
Listeners (the gRPC health servicer) hear each transition once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable

import asyncpg.exceptions as pg_errors
from sqlalchemy import exc as sa_errors

log = logging.getLogger(__name__)

Listener = Callable[[bool], Awaitable[None]]

PROBE_INTERVAL_UP = 2.0  # seconds between probes while the database answers
PROBE_INTERVAL_DOWN = 0.5  # ... and while it does not: recovery is noticed within this
PROBE_TIMEOUT = 5.0  # a blackholed host must not stall the probe forever

# SQLite's own "cannot reach the file" errors; anything else (a constraint, a bad statement)
# is a bug or a bad request, not an outage.
_SQLITE_OUTAGE = ("unable to open database", "disk i/o error", "database is locked")


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the DBAPI error it wraps and their causes, each once."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        pending += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return seen


def is_unreachable(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached, not that a statement failed."""
    for item in _chain(exc):
        if isinstance(item, sa_errors.DBAPIError) and item.connection_invalidated:
            return True
        if isinstance(
            item,
            ConnectionError  # refused, reset, aborted; not a disk's OSError
            | socket.gaierror
            | TimeoutError
            | sa_errors.TimeoutError
            | pg_errors.PostgresConnectionError
            | pg_errors.OperatorInterventionError  # shutdown, crash, "starting up"
            | pg_errors.InterfaceError,  # "connection is closed"
        ):
            return True
        if isinstance(item, OSError) and item.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return True
        if isinstance(item, sqlite3.OperationalError) and any(
            text in str(item).lower() for text in _SQLITE_OUTAGE
        ):
            return True
    return False


class Availability:
    """The process-wide view of whether the database answers."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.up = True
        self.down_since: float | None = None
        self.last_error = ""
        self._listeners: list[Listener] = []
        self._up = asyncio.Event()
        self._up.set()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def mark_down(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if not self.up:
            return
        self.up = False
        self.down_since = time.monotonic()
        self._up.clear()
        log.error(
            "%s is unreachable (%s); calls answer UNAVAILABLE until it is back",
            self.description,
            self.last_error,
        )
        self._notify(False)

    def mark_up(self) -> None:
        if self.up:
            return
        outage = time.monotonic() - (self.down_since or time.monotonic())
        self.up, self.down_since = True, None
        self._up.set()
        log.warning("%s answers again after %.1f s", self.description, outage)
        self._notify(True)

    async def wait_up(self) -> None:
        await self._up.wait()

    def _notify(self, up: bool) -> None:
        for listener in self._listeners:
            task = asyncio.get_running_loop().create_task(listener(up))
            task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("database availability listener failed", exc_info=task.exception())


async def run_probe(probe: Callable[[], Awaitable[None]], availability: Availability) -> None:
    """Forever: probe the database and record the answer (cancel the task to stop)."""
    while True:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever the driver raises, the database did not answer
            availability.mark_down(exc)
        else:
            availability.mark_up()
        await asyncio.sleep(PROBE_INTERVAL_UP if availability.up else PROBE_INTERVAL_DOWN)
