"""The blob storage seam: what every backend offers, and the writer logic they share.

A blob is visible under its digest only after its bytes hashed to that digest and had the
expected size. Backends differ in where bytes go while being written (a temp file, a multipart
upload) and how they are published (rename, completing the upload); the hashing, the size
check and the error they raise are here, once.

Nothing outside `server/storage/` knows which backend runs: callers hold a `BlobStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch, MirrorError

CHUNK = 512 * 1024
"""Writers hash and hand on bytes in batches of at least this size (one thread hop each)."""


class StorageError(MirrorError):
    """The blob storage failed (I/O error, bucket unreachable): the work cannot go on now."""

    reason = "STORAGE_UNAVAILABLE"
    code = "UNAVAILABLE"

    def __init__(
        self, message: str, *, storage: str, reason: str | None = None, **metadata: object
    ):
        super().__init__(message, reason=reason, storage=storage, **metadata)


class StorageFull(StorageError):
    """No space left on the device, quota exceeded or bucket full."""

    reason = "STORAGE_FULL"
    code = "RESOURCE_EXHAUSTED"


@dataclass(frozen=True, slots=True)
class BlobStat:
    """A stored blob: its size and when it was last written (for GC protection windows)."""

    digest: Digest
    size: int
    modified: float
    """Seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class Temporary:
    """Something a writer left unpublished: a temp file or an open multipart upload."""

    key: str
    """Backend-specific handle, passed back to `abort_temporary`."""
    started: float
    """Seconds since the epoch (last modification of a temp file, start of an upload)."""
    size: int | None = None


class BlobWriter(ABC):
    """A blob being written: feed `write`, then `commit` (verifies, publishes) or `abort`.

    Bytes are hashed as they come (in a worker thread: hashlib releases the GIL, so large
    downloads hash on another core while the event loop keeps receiving).
    """

    def __init__(self, storage: str, expected: Digest, expected_size: int | None) -> None:
        self.storage = storage
        self.expected = expected
        self.expected_size = expected_size
        self.size = 0
        self._hasher = expected.hasher()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.done = False

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        chunks, self._pending, self._pending_size = self._pending, [], 0
        if chunks:
            await self._consume(chunks)

    def _hash(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._hasher.update(chunk)

    @abstractmethod
    async def _consume(self, chunks: list[bytes]) -> None:
        """Hash (`self._hash`) and store a batch of chunks."""

    @abstractmethod
    async def _publish(self) -> BlobStat:
        """Make the verified bytes visible under the digest."""

    @abstractmethod
    async def _discard(self) -> None:
        """Drop what was written (idempotent)."""

    def verify(self, host: str = "") -> None:
        """Raise DigestMismatch unless the bytes hash to the expected digest and size."""
        got = self._hasher.hexdigest()
        if got != self.expected.hex or (
            self.expected_size is not None and self.size != self.expected_size
        ):
            raise DigestMismatch(
                f"blob {self.expected} does not match what was received "
                f"({self.expected.algorithm}:{got}, {self.size} bytes)",
                host=host,
                digest=str(self.expected),
                receivedDigest=f"{self.expected.algorithm}:{got}",
                receivedSize=self.size,
                expectedSize=self.expected_size,
            )

    async def commit(self, host: str = "") -> BlobStat:
        """Verify and publish; on a mismatch (or any failure) nothing is stored."""
        try:
            await self._flush()
            self.verify(host)
            stat = await self._publish()
        except BaseException:
            await self.abort()
            raise
        self.done = True
        return stat

    async def abort(self) -> None:
        """Drop what was written (idempotent; a no-op after a successful commit)."""
        if not self.done:
            self.done = True
            await asyncio.shield(self._discard())


class BlobStore(Protocol):
    """Content-addressed blob storage (filesystem or S3-compatible object storage)."""

    name: str
    """Where blobs live, for messages and logs (`data dir /srv/mirror`, `s3://bucket/prefix`);
    never carries credentials."""

    async def stat(self, digest: Digest) -> BlobStat | None:
        """The stored blob's size and age, or None when it is not stored."""
        ...

    async def stat_many(self, digests: list[Digest]) -> dict[Digest, BlobStat]:
        """Stats of the stored ones among `digests` (one batch, off the event loop)."""
        ...

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes `[start, end)` of a stored blob (all by default). Raises `NotFound`."""
        ...

    async def read_bytes(self, digest: Digest) -> bytes:
        """A small stored blob, whole."""
        ...

    async def open_writer(self, expected: Digest, expected_size: int | None = None) -> BlobWriter:
        """A writer the caller must `commit` or `abort`."""
        ...

    async def delete(self, digest: Digest) -> bool:
        """Remove a stored blob; False when it was not there."""
        ...

    def iterate(self) -> AsyncIterator[BlobStat]:
        """Every stored blob, in no particular order (GC compares `modified` to its window)."""
        ...

    async def temporaries(self) -> list[Temporary]:
        """Unpublished writes: in progress here or elsewhere, or left by a crash."""
        ...

    async def abort_temporary(self, temporary: Temporary) -> None:
        """Remove a temp file / abort a multipart upload."""
        ...

    async def http_response(
        self,
        request: web.Request,
        stat: BlobStat,
        headers: dict[str, str],
        *,
        ignore_range: bool = False,
    ) -> web.StreamResponse:
        """Answer a registry GET of a stored blob: a file, a redirect to a presigned URL, or
        the bytes streamed through, as the backend and settings say. A single `Range` is
        honoured unless `ignore_range` (the caller found it multi-range or malformed)."""
        ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...


async def clear_stale(store: BlobStore, older_than: float, now: float) -> int:
    """Abort every temporary untouched for `older_than` seconds; how many went."""
    removed = 0
    for temporary in await store.temporaries():
        if now - temporary.started >= older_than:
            with contextlib.suppress(MirrorError):
                await store.abort_temporary(temporary)
                removed += 1
    return removed


@contextlib.asynccontextmanager
async def writing(
    store: BlobStore, expected: Digest, expected_size: int | None = None
) -> AsyncIterator[BlobWriter]:
    """A writer that is aborted if the block exits without `commit`."""
    writer = await store.open_writer(expected, expected_size)
    try:
        yield writer
    finally:
        await writer.abort()


async def write_bytes(store: BlobStore, digest: Digest, data: bytes) -> BlobStat:
    """Store small content already in memory (e.g. a config blob), verified."""
    async with writing(store, digest, len(data)) as writer:
        await writer.write(data)
        return await writer.commit()
