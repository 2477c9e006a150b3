"""Blob uploads in progress (registry pushes): bytes whose digest is named only at the end.

An upload's bytes are appended, across requests and processes, to `<data-dir>/uploads/<id>`
(hashed as they are written, so a one-request push is hashed once); they survive a restart
(a writer that continues an upload it did not start re-hashes the file). `publish` names the
digest: the bytes must hash to it, then they become a blob of the store through the store's
own publishing step, so a blob is visible under its digest only after it matched, whatever
the backend:

- a filesystem store on the same device adopts the file (fsync and rename, no copy);
- any other store (S3) gets the bytes through its verifying writer (`open_writer`).

Nothing here knows which backend runs beyond asking the store whether it can adopt a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import Any

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch
from server.storage.base import CHUNK, BlobStat, BlobStore, StorageError
from server.storage.writeback import EarlyWriteback


class UploadWriter:
    """Appends to one upload; `size` counts every byte on disk (a failed request keeps the
    prefix it wrote: the client learns the range and resumes from there)."""

    def __init__(self, uploads: Uploads, upload_id: str, fd: int, size: int, hasher: Any) -> None:
        self._uploads = uploads
        self.upload_id = upload_id
        self._fd = fd
        self.size = size
        # The store fsyncs the file when it adopts it: get the disk going while bytes arrive.
        self._writeback = EarlyWriteback(fd, size) if uploads.fsyncs else None
        self._hasher = hasher  # None once unknown (then `publish` re-hashes the file)
        self._pending: list[bytes] = []
        self._pending_size = 0

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        chunks, self._pending, self._pending_size = self._pending, [], 0
        if chunks:
            await asyncio.to_thread(self._absorb, chunks)

    def _absorb(self, chunks: list[bytes]) -> None:
        data = b"".join(chunks)
        if self._hasher is not None:
            self._hasher.update(data)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._hasher = None  # what reached the file is no longer what was hashed
            raise self._uploads.error(exc, "writing an upload") from exc
        finally:
            self.size = os.fstat(self._fd).st_size
        if self._writeback is not None:
            self._writeback.wrote(self.size)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def digest(self) -> str | None:
        """The sha256 of everything written, when this writer saw all of it."""
        return None if self._hasher is None else f"sha256:{self._hasher.hexdigest()}"


class Uploads:
    """The upload area of a data directory, publishing into `store`."""

    def __init__(self, directory: Path, store: BlobStore) -> None:
        self.directory = directory
        self.store = store
        self.fsyncs = getattr(store, "durability", None) == "full"
        """Whether publishing fsyncs the upload's file (a filesystem store adopting it)."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, upload_id: str) -> Path:
        if not upload_id or not all(c in "0123456789abcdef-" for c in upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")  # ids are uuids we made
        return self.directory / upload_id

    def error(self, exc: OSError, doing: str) -> StorageError:
        return StorageError(
            f"upload area {self.directory}: {doing} failed: {exc.strerror or exc}",
            storage=str(self.directory),
        )

    def size(self, upload_id: str) -> int | None:
        """Bytes on disk for an upload; None when it has no file."""
        try:
            return self._path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    async def open(self, upload_id: str, size: int) -> UploadWriter:
        """A writer appending at byte `size` (bytes beyond it, left by a request that died
        half way, are cut off); the file is created when new."""
        return await asyncio.to_thread(self._open, upload_id, size)

    def _open(self, upload_id: str, size: int) -> UploadWriter:
        path = self._path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
        except OSError as exc:
            raise self.error(exc, "opening an upload") from exc
        hasher = hashlib.sha256()
        if size:
            hasher = _hash_file(path, "sha256", size)
        return UploadWriter(self, upload_id, fd, size, hasher)

    async def discard(self, upload_id: str) -> None:
        """Remove an upload's bytes (cancel, expiry, failed verification); idempotent."""
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(upload_id).unlink)

    def stale(self, live: set[str], older_than: float) -> list[str]:
        """Upload files no live upload owns, untouched for `older_than` seconds."""
        cutoff = time.time() - older_than
        found = []
        for entry in os.scandir(self.directory):
            with contextlib.suppress(FileNotFoundError):
                if entry.name not in live and entry.stat().st_mtime < cutoff:
                    found.append(entry.name)
        return found

    async def publish(self, writer: UploadWriter, digest: Digest) -> BlobStat:
        """Verify the upload against `digest` and make it a stored blob; the upload's file is
        gone afterwards either way. DigestMismatch when the bytes do not match."""
        await writer.flush()
        writer.close()
        path = self._path(writer.upload_id)
        try:
            got = writer.digest() if digest.algorithm == "sha256" else None
            if got is None:
                got = (
                    f"{digest.algorithm}:"
                    + (
                        await asyncio.to_thread(_hash_file, path, digest.algorithm, None)
                    ).hexdigest()
                )
            if got != str(digest):
                raise DigestMismatch(
                    f"upload does not match {digest} ({got}, {writer.size} bytes)",
                    host="",
                    digest=str(digest),
                    receivedDigest=got,
                    receivedSize=writer.size,
                )
            adopt = getattr(self.store, "adopt_file", None)
            if adopt is not None:
                adopted = await adopt(path, digest)
                if adopted is not None:
                    return adopted
            return await self._copy(path, digest, writer.size)
        finally:
            await self.discard(writer.upload_id)

    async def _copy(self, path: Path, digest: Digest, size: int) -> BlobStat:
        """Through the store's verifying writer (a store that cannot adopt a local file)."""
        store_writer = await self.store.open_writer(digest, size)
        try:
            with open(path, "rb") as source:  # noqa: ASYNC230 (reads go to a thread below)
                while chunk := await asyncio.to_thread(source.read, 8 * CHUNK):
                    await store_writer.write(chunk)
            return await store_writer.commit()
        finally:
            await store_writer.abort()


def _hash_file(path: Path, algorithm: str, size: int | None) -> Any:
    hasher = hashlib.new(algorithm)
    remaining = size
    with open(path, "rb") as source:
        while remaining is None or remaining > 0:
            chunk = source.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return hasher
