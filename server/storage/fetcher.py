"""One blob download path for the whole process: syncs and pull-through alike.

`BlobFetcher` keeps one in-flight download per digest (distribution's `inflight`, regclient's
`imageSeenOrWait`). Each download is one task running one verifying loop: the store's writer
hashes the bytes once while they are written, and the same chunks are handed to any client
waiting on them (a tee). A sync and a pull of the same missing digest therefore download it
once. The last chunk reaches clients only after the digest is verified, so a corrupt upstream
blob reaches a client truncated (an error), never complete.

Who keeps a download alive:
- a sync (`ensure`) for as long as it waits; a cancelled sync stops a download nobody else
  needs, and a waiter whose download failed tries again with its own source;
- an ON_DEMAND pull stores the blob: the download goes on if the client disconnects;
- a STREAMED pull stores nothing: when its last client is gone the upstream download stops.

Cut-offs: the upstream must deliver at least `MIN_THROUGHPUT` bytes/s on average after a grace
period (sync and pull-through alike), and a client that takes more than `CLIENT_STALL_SECONDS`
to accept a chunk is dropped rather than holding the download (and every other reader) back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from server.domain.errors import DigestMismatch, MirrorError, UpstreamUnavailable
from server.domain.manifests import Descriptor
from server.storage.base import BlobStore, BlobWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

MIN_THROUGHPUT = 32 * 1024
"""Bytes per second a blob must average after `GRACE_SECONDS` (a slow drip cannot hold on)."""
GRACE_SECONDS = 60.0
CLIENT_STALL_SECONDS = 30.0
"""How long one chunk may wait for a pull-through client to take it."""
CLIENT_QUEUE = 8
"""Chunks buffered per client (about 8 MiB at most)."""


class BlobSource(Protocol):
    """Where a blob comes from (an upstream repository)."""

    host: str

    def blob_stream(self, blob: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """One GET of the blob: its body as chunks (errors as `UpstreamError`)."""
        ...

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`, again after retryable failures, as the source's policy says."""
        ...


class ClientTooSlow(MirrorError):
    """A pull-through client stopped reading; it was cut off."""

    reason = "CLIENT_TOO_SLOW"
    code = "DEADLINE_EXCEEDED"


class _Gone(Exception):
    """Nobody needs this download any more."""


_END = object()


class Subscription:
    """Verified chunks of one download for one client; iterate, then `close`."""

    def __init__(self, download: _Download, started: bool) -> None:
        self._download = download
        self.started = started
        """This subscription started the download (else it joined another's)."""
        self._queue: asyncio.Queue[object] = asyncio.Queue(CLIENT_QUEUE)
        self.sent = 0
        """Bytes handed to this client (a retried download skips them)."""
        self.cut: MirrorError | None = None

    async def _offer(self, chunk: bytes) -> None:
        if self.cut is not None:
            return
        try:
            await asyncio.wait_for(self._queue.put(chunk), self._download.fetcher.client_stall)
        except TimeoutError:
            self.cut = ClientTooSlow(
                f"client did not read blob {self._download.blob.digest} for "
                f"{self._download.fetcher.client_stall:.0f}s",
                digest=str(self._download.blob.digest),
            )
            self._download.leave(self)
            return
        self.sent += len(chunk)

    def _finish(self, failure: MirrorError | None) -> None:
        # Never blocks: a full queue means the client is behind; it sees the end after
        # draining, and `failure` is kept on the side.
        if failure is not None and self.cut is None:
            self.cut = failure
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self.cut is not None:
                raise self.cut
            if self._queue.empty() and self._download.task.done():
                # The end marker may not have fit the queue: the task's result says how.
                failure = self._download.failure()
                if failure is not None:
                    raise failure
                return
            item = await self._queue.get()
            if item is _END:
                if self.cut is not None:
                    raise self.cut
                failure = self._download.failure()
                if failure is not None:
                    raise failure
                return
            assert isinstance(item, bytes)
            yield item

    def close(self) -> None:
        """The client is gone (or done): stop feeding it."""
        self._download.leave(self)


class _Download:
    """One download of one digest, into the store (or not) and to subscribers."""

    def __init__(
        self, fetcher: BlobFetcher, blob: Descriptor, source: BlobSource, store: bool, keep: bool
    ) -> None:
        self.fetcher = fetcher
        self.blob = blob
        self.source = source
        self.store = store
        self.keep = keep
        """Finish even when nobody waits (an ON_DEMAND fill outlives its client)."""
        self.waiters = 0
        self.subscribers: set[Subscription] = set()
        self.progress: list[Callable[[int], None]] = []
        self.position = 0
        """Bytes handed to subscribers so far (a late subscriber cannot join after 0)."""
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._run())
        # Failures reach callers through `failure()`; mark them retrieved for asyncio.
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def failure(self) -> MirrorError | None:
        """Why the finished download failed (None: it succeeded, or still runs)."""
        if not self.task.done():
            return None
        if self.task.cancelled():
            return UpstreamUnavailable(
                f"download of {self.blob.digest} was stopped", host=self.source.host
            )
        exc = self.task.exception()
        if exc is None:
            return None
        if isinstance(exc, MirrorError):
            return exc
        return UpstreamUnavailable(f"download of {self.blob.digest} failed", host=self.source.host)

    def needed(self) -> bool:
        return self.keep or self.waiters > 0 or bool(self.subscribers)

    def leave(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        self.release()

    def release(self) -> None:
        if not self.needed() and not self.task.done():
            self.task.cancel()

    def _count(self, n: int) -> None:
        for callback in self.progress:
            callback(n)

    async def _fan_out(self, chunk: bytes, offset: int) -> None:
        end = offset + len(chunk)
        for sub in list(self.subscribers):
            if sub.sent >= end:
                continue  # a retried download re-reads what this client already has
            await sub._offer(chunk[sub.sent - offset :] if sub.sent > offset else chunk)
        self.position = max(self.position, end)

    async def _attempt(self) -> None:
        blob, source = self.blob, self.source
        received = 0
        writer: BlobWriter | None = None
        hasher = None if self.store else blob.digest.hasher()
        held: bytes | None = None
        held_at = 0
        try:
            async with source.blob_stream(blob) as chunks:
                # The writer opens only once the response is good: a big first sync queues
                # thousands of downloads, and an open temp file each would exhaust descriptors.
                if self.store:
                    writer = await self.fetcher.store.open_writer(blob.digest, blob.size)
                fetcher = self.fetcher
                deadline = (
                    time.monotonic() + fetcher.grace_seconds + blob.size / fetcher.min_throughput
                )
                async for chunk in chunks:
                    if not chunk:
                        continue
                    if writer is not None:
                        await writer.write(chunk)
                    else:
                        assert hasher is not None
                        hasher.update(chunk)
                    if held is not None:
                        await self._fan_out(held, held_at)
                    held, held_at = chunk, received
                    received += len(chunk)
                    self._count(len(chunk))
                    if received > blob.size:
                        break  # more than announced: fail verification now
                    if not self.needed():
                        raise _Gone
                    if time.monotonic() > deadline:
                        raise UpstreamUnavailable(
                            f"blob {blob.digest} from {source.host} arrives too slowly "
                            f"(under {fetcher.min_throughput // 1024} KiB/s)",
                            host=source.host,
                            reason="UPSTREAM_TOO_SLOW",
                            digest=str(blob.digest),
                        )
                if writer is not None:
                    await writer.commit(source.host)
                else:
                    assert hasher is not None
                    if hasher.hexdigest() != blob.digest.hex or received != blob.size:
                        raise DigestMismatch(
                            f"blob {blob.digest} from {source.host} does not match "
                            f"({received} bytes received)",
                            host=source.host,
                            digest=str(blob.digest),
                            receivedSize=received,
                        )
            if held is not None:
                await self._fan_out(held, held_at)
        except BaseException:
            if writer is not None:
                await writer.abort()
            if received:
                self._count(-received)  # a retry starts over
            raise

    async def _run(self) -> None:
        failure: MirrorError | None = None
        try:
            await self.source.retrying(self._attempt)
        except MirrorError as exc:
            log.warning(
                "download of %s from %s failed: %s", self.blob.digest, self.source.host, exc.message
            )
            failure = exc
            raise
        finally:
            self.fetcher._forget(self)
            for sub in list(self.subscribers):
                sub._finish(failure)


class BlobFetcher:
    """Ensures blobs are stored or streamed, downloading each digest at most once at a time."""

    def __init__(
        self,
        store: BlobStore,
        *,
        min_throughput: int = MIN_THROUGHPUT,
        grace_seconds: float = GRACE_SECONDS,
        client_stall: float = CLIENT_STALL_SECONDS,
    ) -> None:
        self.store = store
        self.min_throughput = min_throughput
        self.grace_seconds = grace_seconds
        self.client_stall = client_stall
        self._storing: dict[str, _Download] = {}
        self._streaming: dict[str, _Download] = {}
        self._all: set[_Download] = set()

    def _forget(self, download: _Download) -> None:
        key = str(download.blob.digest)
        table = self._storing if download.store else self._streaming
        if table.get(key) is download:
            del table[key]
        self._all.discard(download)

    def _start(self, blob: Descriptor, source: BlobSource, *, store: bool, keep: bool) -> _Download:
        download = _Download(self, blob, source, store, keep)
        (self._storing if store else self._streaming)[str(blob.digest)] = download
        self._all.add(download)
        return download

    async def _stored(self, blob: Descriptor) -> bool:
        stat = await self.store.stat(blob.digest)
        # A stored blob of another size is truncated or damaged: fetch it again.
        return stat is not None and stat.size == blob.size

    async def ensure(
        self, blob: Descriptor, source: BlobSource, on_bytes: Callable[[int], None] | None = None
    ) -> bool:
        """Make sure `blob` is stored; True if this call started the download that stored it."""
        while True:
            if await self._stored(blob):
                return False
            download = self._storing.get(str(blob.digest))
            mine = download is None
            if download is None:
                download = self._start(blob, source, store=True, keep=False)
            download.waiters += 1
            if on_bytes is not None:
                download.progress.append(on_bytes)
            try:
                # Wait without letting our own cancellation cancel the shared task.
                await asyncio.wait({download.task})
            finally:
                download.waiters -= 1
                if on_bytes is not None:
                    with contextlib.suppress(ValueError):
                        download.progress.remove(on_bytes)
                download.release()
            failure = download.failure()
            if failure is None:
                return mine
            if mine:
                raise failure
            # Another caller's download failed (its source, its cancellation): try ourselves.

    async def subscribe(
        self, blob: Descriptor, source: BlobSource, *, store: bool
    ) -> Subscription | None:
        """Verified chunks of `blob` from `source` for one client; None when the blob is
        (now) stored and should be served from the store.

        `store`: keep the blob (ON_DEMAND; the download outlives the client) or not (STREAMED;
        the download stops when no client is left)."""
        key = str(blob.digest)
        while True:
            if store and await self._stored(blob):
                return None
            storing = self._storing.get(key)
            if storing is not None and storing.position == 0:
                if store:
                    storing.keep = True
                return self._join(storing, started=False)
            if storing is not None and store:
                # Too late to share its bytes: wait for it and serve from the store.
                await asyncio.wait({storing.task})
                continue
            if not store:
                streaming = self._streaming.get(key)
                if streaming is not None and streaming.position == 0:
                    return self._join(streaming, started=False)
            return self._join(self._start(blob, source, store=store, keep=store), started=True)

    def _join(self, download: _Download, *, started: bool) -> Subscription:
        subscription = Subscription(download, started)
        download.subscribers.add(subscription)
        return subscription

    def in_flight(self) -> int:
        """Downloads running now (for tests and metrics)."""
        return len(self._all)

    async def aclose(self) -> None:
        """At shutdown: stop every download (their temporaries go)."""
        tasks = [d.task for d in self._all]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
