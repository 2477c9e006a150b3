"""Bounded concurrency over many items: a fixed set of workers instead of a task per item.

A sync of 10,000 tags used to start 10,000 tasks at once (each a Task, a coroutine frame and
a semaphore waiter) that then queued on the upstream's request slots; only `workers` of them
ever ran. A pool of `workers` coroutines pulling from one iterator does the same work in the
same order with memory that does not grow with the number of items.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def for_each(items: Iterable[T], work: Callable[[T], Awaitable[None]], workers: int) -> None:
    """Await `work(item)` for every item, at most `workers` at a time.

    Failure semantics are a TaskGroup's, as before: the first exception cancels the other
    workers and is raised inside an ExceptionGroup; items not yet started are not started."""
    iterator = iter(items)

    async def worker() -> None:
        # One shared iterator: `next` runs between awaits, so no item is taken twice.
        for item in iterator:
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, workers)):
            group.create_task(worker())
