"""What distributions serve, answered from memory while nothing it depends on has changed.

A published version is immutable, so its tag -> manifest, digest -> manifest/blob, tag list,
referrers and signatures can be kept in memory. What can change is which version a base path
serves (a new version, a distribution created, re-pointed or deleted, a repository or a
version deleted), in this process or in any other on the same database. All of those bump one
row, the *serving generation* (triggers of migration 0008), in the same transaction.

Before a request uses the cache it reads that row, so a change committed before the request
arrived is always seen, whichever process committed it; a new value empties the cache. The
read is shared: requests that arrive while a read is in flight wait for the *next* read (one
that starts after they arrived), so under load the database sees about one short query per
read latency instead of one per request, and no request is answered from a read older than
its own arrival.

Entries are bounded by an approximate byte budget (least recently used out first). A lookup
stores its result only if the generation did not change while it ran, so an answer read
before a change never lands in the cache after it.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from server.store.serving import Served, ServedBlob, ServedManifest, ServingQueries

T = TypeVar("T")

DEFAULT_BUDGET = 64 * 1024 * 1024
"""Bytes of cached answers per process (approximate)."""
_ENTRY_OVERHEAD = 200
_MISSING = object()


class GenerationWatch:
    """Reads of a counter shared by concurrent callers, never older than the caller."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._running: asyncio.Future[int] | None = None
        self._next: asyncio.Future[int] | None = None

    async def current(self) -> int:
        """A value read by a query that started after this call did."""
        if self._running is None:
            future = self._start()
        else:
            # The running read may have started before we arrived: wait for the next one.
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            future = self._next
        return await asyncio.shield(future)

    def _start(self, future: asyncio.Future[int] | None = None) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        target: asyncio.Future[int] = future if future is not None else loop.create_future()
        self._running = target
        task = loop.create_task(self._read())
        task.add_done_callback(lambda done: self._finished(done, target))
        return target

    def _finished(self, done: asyncio.Task[int], target: asyncio.Future[int]) -> None:
        if done.cancelled():
            target.cancel()
        elif done.exception() is not None:
            target.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            target.set_result(done.result())
        if not target.cancelled():
            target.exception()  # retrieved: waiters that left must not log "never retrieved"
        self._running = None
        waiting, self._next = self._next, None
        if waiting is not None:
            self._start(waiting)


class ServingCache:
    """The lookups of :class:`ServingQueries`, from memory when the generation allows."""

    def __init__(self, queries: ServingQueries, budget: int = DEFAULT_BUDGET) -> None:
        self._queries = queries
        self._watch = GenerationWatch(queries.generation)
        self._budget = budget
        self._generation: int | None = None
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    async def _check(self) -> None:
        """Once per request, before anything is answered from memory."""
        generation = await self._watch.current()
        if generation != self._generation:
            self._entries.clear()
            self._bytes = 0
            self._generation = generation

    async def _cached(
        self, key: Hashable, load: Callable[[], Awaitable[T]], size: Callable[[T], int]
    ) -> T:
        found = self._entries.get(key, _MISSING)
        if found is not _MISSING:
            self._entries.move_to_end(key)
            return found[0]  # type: ignore[index, no-any-return]
        generation = self._generation
        value = await load()
        cost = size(value) + _ENTRY_OVERHEAD
        if generation == self._generation and cost <= self._budget // 4:
            self._entries[key] = (value, cost)
            self._bytes += cost
            while self._bytes > self._budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return value

    async def resolve(self, base_path: str) -> Served | None:
        """The first lookup of every request that names a repository: checks the generation."""
        await self._check()
        return await self._cached(
            ("resolve", base_path), lambda: self._queries.resolve(base_path), _small
        )

    async def catalog_entries(self, limit: int, after: str) -> list[tuple[str, str, bool]]:
        """(base path, repository id, public) after `after`; the caller filters by access."""
        await self._check()
        return await self._cached(
            ("catalog", limit, after),
            lambda: self._queries.catalog_entries(limit, after),
            _entries,
        )

    async def tags(self, served: Served, limit: int, after: str) -> list[str]:
        """A page of the version's sorted tag list, kept whole per version."""
        key = ("tags", served.repository_pk, served.version)
        every = await self._cached(key, lambda: self._queries.tags(served, 1 << 62, ""), _strings)
        start = bisect.bisect_right(every, after) if after else 0
        return every[start : start + limit]

    async def manifest_by_tag(self, served: Served, tag: str) -> ServedManifest | None:
        return await self._cached(
            ("tag", served.repository_pk, served.version, tag),
            lambda: self._queries.manifest_by_tag(served, tag),
            _manifest,
        )

    async def manifest_by_digest(self, served: Served, digest: str) -> ServedManifest | None:
        return await self._cached(
            ("manifest", served.repository_pk, served.version, digest),
            lambda: self._queries.manifest_by_digest(served, digest),
            _manifest,
        )

    async def blob(self, served: Served, digest: str) -> ServedBlob | None:
        return await self._cached(
            ("blob", served.repository_pk, served.version, digest),
            lambda: self._queries.blob(served, digest),
            _small,
        )

    async def referrers(self, served: Served, subject: str) -> list[ServedManifest]:
        return await self._cached(
            ("referrers", served.repository_pk, served.version, subject),
            lambda: self._queries.referrers(served, subject),
            lambda found: sum(_manifest(m) for m in found),
        )

    async def atomic_signatures(self, served: Served, manifest: str) -> list[tuple[str, bytes]]:
        return await self._cached(
            ("signatures", served.repository_pk, served.version, manifest),
            lambda: self._queries.atomic_signatures(served, manifest),
            lambda found: sum(len(name) + len(data) + 64 for name, data in found),
        )


def _small(_value: object) -> int:
    return 0


def _entries(values: list[tuple[str, str, bool]]) -> int:
    return _strings([f"{path}{repo}" for path, repo, _ in values])


def _strings(values: list[str]) -> int:
    return sum(len(v) + 56 for v in values)


def _manifest(found: ServedManifest | None) -> int:
    return 0 if found is None else len(found.data) + 160
