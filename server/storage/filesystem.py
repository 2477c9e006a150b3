"""Blobs as files on a local (or shared) directory.

Layout: `<root>/blobs/<algorithm>/<first two hex>/<hex>`, written through a temp file in
`<root>/tmp/` that is hashed while written and renamed into place only when its digest and size
match. With `durability="full"` (the default) the file is fsynced before the rename and its
directory after it, so a power loss cannot leave a published name over missing data; "none"
leaves both to the page cache (faster on slow disks, safe against process crashes only).
Files are 0600 and directories 0700: blobs of private upstreams are private.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from server.domain.digests import Digest
from server.domain.errors import NotFound
from server.storage.base import (
    CHUNK,
    BlobStat,
    BlobWriter,
    StorageError,
    StorageFull,
    Temporary,
)
from server.storage.sendfile import FileSender, SendfileResponse
from server.storage.writeback import EarlyWriteback

DURABILITY = ("full", "none")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_ALGORITHMS = ("sha256", "sha512")


def _storage_error(name: str, exc: OSError, doing: str) -> StorageError:
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(
            f"storage {name} is full: {doing} failed ({os.strerror(exc.errno or 0)})",
            storage=name,
        )
    return StorageError(f"storage {name}: {doing} failed: {exc.strerror or exc}", storage=name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(store: FilesystemBlobStore, temp: Path, fd: int, digest: Digest) -> BlobStat:
    """Publish verified bytes: fsync (durability full), rename into place, fsync the directory.
    `fd` (open on `temp`) is closed."""
    final = store.path(digest)
    try:
        try:
            if store.durability == "full":
                os.fsync(fd)
        finally:
            os.close(fd)
        if not final.parent.is_dir():
            final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(temp, final)
        if store.durability == "full":
            _fsync_dir(final.parent)
        st = final.stat()
    except OSError as exc:
        raise _storage_error(store.name, exc, "publishing a blob") from exc
    return BlobStat(digest, st.st_size, st.st_mtime)


class _FileWriter(BlobWriter):
    def __init__(self, store: FilesystemBlobStore, expected: Digest, size: int | None) -> None:
        super().__init__(store.name, expected, size)
        self._store = store
        self.temp = store.temp_dir / f"{expected.hex[:16]}-{uuid.uuid4().hex}"
        try:
            self._fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _storage_error(store.name, exc, "creating a temp file") from exc
        self._written = 0
        # `_finish` fsyncs with durability full: start the disk while bytes still arrive.
        self._writeback = EarlyWriteback(self._fd) if store.durability == "full" else None

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                raise _storage_error(self.storage, exc, "writing a blob") from exc
            view = view[written:]

    async def _consume(self, chunks: list[bytes]) -> None:
        total = sum(len(c) for c in chunks)
        await asyncio.to_thread(self._write_checked, chunks, total)

    def _write_checked(self, chunks: list[bytes], total: int) -> None:
        self._hash(chunks)
        self._write_batch(chunks, total)
        self._written += total
        if self._writeback is not None:
            self._writeback.wrote(self._written)

    def _write_batch(self, chunks: list[bytes], total: int) -> None:
        if len(chunks) > 512:  # many small reads: stay under writev's IOV_MAX (1024)
            chunks = [b"".join(chunks)]
        if len(chunks) == 1:
            self._write_all(chunks[0])
            return
        try:
            written = os.writev(self._fd, chunks)
        except OSError as exc:
            raise _storage_error(self.storage, exc, "writing a blob") from exc
        if written < total:  # a short writev: write the rest plainly
            self._write_all(b"".join(chunks)[written:])

    def _finish(self) -> BlobStat:
        fd, self._fd = self._fd, -1
        return _place(self._store, self.temp, fd, self.expected)

    async def _publish(self) -> BlobStat:
        return await asyncio.to_thread(self._finish)

    def _drop(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()

    async def _discard(self) -> None:
        await asyncio.to_thread(self._drop)


class _WholeFileResponse(SendfileResponse):
    """A FileResponse that answers as if the request had no Range header. aiohttp prepares it
    once, with the real request; it sees a copy without the header."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        plain = CIMultiDict(request.headers)
        plain.popall("Range", None)
        return await super().prepare(request.clone(headers=plain))


class FilesystemBlobStore:
    """Blob files under `root`, named by digest."""

    def __init__(
        self, root: Path, durability: str = "full", sender: FileSender | None = None
    ) -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {DURABILITY}, got {durability!r}")
        self.root = root
        self.durability = durability
        self.sender = sender
        """Sends registry GET bodies with sendfile (sendfile.py); None: aiohttp's own path."""
        self.name = f"data dir {root}"
        self.blob_dir = root / "blobs"
        self.temp_dir = root / "tmp"
        for directory in (root, self.blob_dir, self.temp_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # e.g. a root owned by someone else
                directory.chmod(0o700)

    def path(self, digest: Digest) -> Path:
        """Where a blob lives (for this backend and its tests only)."""
        return self.blob_dir / digest.algorithm / digest.hex[:2] / digest.hex

    def _stat(self, digest: Digest) -> BlobStat | None:
        try:
            st = self.path(digest).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _storage_error(self.name, exc, "reading a blob's size") from exc
        return BlobStat(digest, st.st_size, st.st_mtime)

    async def stat(self, digest: Digest) -> BlobStat | None:
        # One stat is cheaper than a thread hop on a local disk; on NFS it may block, but the
        # engine's bulk checks go through `stat_many`.
        return self._stat(digest)

    async def stat_many(self, digests: list[Digest]) -> dict[Digest, BlobStat]:
        """Stats of the stored ones among `digests`, in one worker thread."""
        found = await asyncio.to_thread(lambda: [self._stat(d) for d in digests])
        return {s.digest: s for s in found if s is not None}

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open, self.path(digest), "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not stored", digest=str(digest)) from exc
        try:
            if start:
                await asyncio.to_thread(handle.seek, start)
            left = None if end is None else end - start
            while left is None or left > 0:
                want = CHUNK if left is None else min(CHUNK, left)
                data = await asyncio.to_thread(handle.read, want)
                if not data:
                    break
                if left is not None:
                    left -= len(data)
                yield data
        finally:
            handle.close()

    async def read_bytes(self, digest: Digest) -> bytes:
        try:
            return await asyncio.to_thread(self.path(digest).read_bytes)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not stored", digest=str(digest)) from exc

    async def open_writer(self, expected: Digest, expected_size: int | None = None) -> BlobWriter:
        return await asyncio.to_thread(_FileWriter, self, expected, expected_size)

    async def adopt_file(self, path: Path, digest: Digest) -> BlobStat | None:
        """Publish a local file whose bytes the caller verified against `digest` (a pushed
        upload) by renaming it into place; None when it is on another device (copy it)."""
        return await asyncio.to_thread(self._adopt, path, digest)

    def _adopt(self, path: Path, digest: Digest) -> BlobStat | None:
        try:
            if os.stat(path).st_dev != os.stat(self.blob_dir).st_dev:
                return None
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise _storage_error(self.name, exc, "publishing an upload") from exc
        return _place(self, path, fd, digest)

    async def delete(self, digest: Digest) -> bool:
        try:
            await asyncio.to_thread(self.path(digest).unlink)
        except FileNotFoundError:
            return False
        return True

    def _scan(self) -> list[BlobStat]:
        found: list[BlobStat] = []
        for algorithm in _ALGORITHMS:
            base = self.blob_dir / algorithm
            if not base.is_dir():
                continue
            for prefix in os.scandir(base):
                if not prefix.is_dir():
                    continue
                for entry in os.scandir(prefix.path):
                    if not Digest.is_valid(f"{algorithm}:{entry.name}"):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat()
                        found.append(
                            BlobStat(Digest(algorithm, entry.name), st.st_size, st.st_mtime)
                        )
        return found

    async def iterate(self) -> AsyncIterator[BlobStat]:
        for stat in await asyncio.to_thread(self._scan):
            yield stat

    def _temporaries(self) -> list[Temporary]:
        found: list[Temporary] = []
        for entry in os.scandir(self.temp_dir):
            with contextlib.suppress(FileNotFoundError):
                st = entry.stat()
                found.append(Temporary(entry.name, st.st_mtime, st.st_size))
        return found

    async def temporaries(self) -> list[Temporary]:
        return await asyncio.to_thread(self._temporaries)

    async def abort_temporary(self, temporary: Temporary) -> None:
        if "/" in temporary.key or temporary.key in ("", ".", ".."):
            raise ValueError(f"not a temporary of this store: {temporary.key!r}")
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread((self.temp_dir / temporary.key).unlink)

    async def http_response(
        self,
        request: web.Request,
        stat: BlobStat,
        headers: dict[str, str],
        *,
        ignore_range: bool = False,
    ) -> web.StreamResponse:
        # FileResponse: sendfile, Range and conditional requests; its validators are the
        # file's own (mtime/size), the digest travels in Docker-Content-Digest.
        kind = _WholeFileResponse if ignore_range else SendfileResponse
        return kind(self.path(stat.digest), self.sender, headers=headers)

    async def aclose(self) -> None:
        return None


class _WholeFileResponse(SendfileResponse):
    """A FileResponse that ignores the request's Range header (RFC 9110 14.2 allows it).

    aiohttp prepares a returned response with the original request, so the header is dropped
    here rather than by preparing it earlier against a copy (FileResponse cannot be prepared
    twice)."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        plain = CIMultiDict(request.headers)
        plain.popall("Range", None)
        return await super().prepare(request.clone(headers=plain))
