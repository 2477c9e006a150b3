"""GenerationWatch: concurrent requests share generation reads, never one older than them."""

from __future__ import annotations

import asyncio

from server.registry.cache import GenerationWatch


async def test_reads_are_shared_and_never_started_before_the_caller() -> None:
    committed = 0  # what the database holds
    started: list[int] = []  # the value each read saw when it started
    release = asyncio.Event()

    async def read() -> int:
        seen = committed  # a query sees what was committed when it started
        started.append(seen)
        await release.wait()
        return seen

    watch = GenerationWatch(read)
    first = asyncio.ensure_future(watch.current())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [0]
    committed = 1  # a commit lands while the first read is in flight
    later = [asyncio.ensure_future(watch.current()) for _ in range(5)]
    await asyncio.sleep(0)
    assert started == [0], "a second read must wait for the first"
    release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [1] * 5  # one shared read, started after them
    assert started == [0, 1]
    assert await watch.current() == 1
    assert len(started) == 3  # idle again: the next caller starts its own read


async def test_a_failed_read_fails_its_callers_and_the_next_one_reads_again() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return 7

    watch = GenerationWatch(read)
    try:
        await watch.current()
    except ConnectionError:
        pass
    else:
        raise AssertionError("the read error must reach the caller")
    assert await watch.current() == 7
