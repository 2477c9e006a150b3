"""Content-addressed blob storage on a local (or shared) directory.

Layout: `<root>/blobs/<algorithm>/<first two hex>/<hex>`, written through a temp file in
`<root>/tmp/` that is hashed while written and renamed into place only when its digest and
size match. A reader never sees a partial or corrupt blob; a crash leaves only temp files,
which start-up clears.

Pushed uploads use the same writer on a file in `<root>/uploads/<id>` whose digest is known
only at the end (`commit(expected=...)`); that file survives a restart (the writer resumes by
re-hashing it) and is removed when the upload completes, is cancelled or expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch

CHUNK = 1 << 20


class BlobWriter:
    """A blob being written: feed chunks, then `commit` (verifies) or `abort`."""

    def __init__(
        self,
        storage: BlobStorage,
        expected: Digest | None,
        expected_size: int | None,
        *,
        temp: Path | None = None,
    ) -> None:
        self._storage = storage
        # None until `commit(expected=...)`: a pushed upload names its digest at the end.
        self.expected = expected
        self.expected_size = expected_size
        self.temp = (
            temp
            or storage.temp_dir
            / f"{expected.hex[:16] if expected else 'upload'}-{uuid.uuid4().hex}"
        )
        self._file = open(self.temp, "ab" if temp is not None else "wb")
        self._hasher = expected.hasher() if expected else hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        """Gather chunks up to CHUNK, then hash and write them in a worker thread (no copy):
        hashlib releases the GIL, so big downloads hash on the other cores while the event
        loop keeps receiving."""
        self.size += len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= CHUNK:
            chunks, self._pending, self._pending_size = self._pending, [], 0
            await asyncio.to_thread(self._absorb, chunks)

    def _absorb(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._hasher.update(chunk)
        self._file.writelines(chunks)

    def _drain(self) -> None:
        if self._pending:
            chunks, self._pending, self._pending_size = self._pending, [], 0
            self._absorb(chunks)

    def _rehash(self, algorithm: str) -> None:
        """Hash the file's bytes again (a resumed upload, or a digest of another algorithm)."""
        self._hasher = hashlib.new(algorithm)
        with open(self.temp, "rb") as source:
            while chunk := source.read(CHUNK):
                self._hasher.update(chunk)

    async def flush(self) -> None:
        """Write what is pending (the bytes are on disk for a later resume)."""
        chunks, self._pending, self._pending_size = self._pending, [], 0
        if chunks:
            await asyncio.to_thread(self._absorb, chunks)
        await asyncio.to_thread(self._file.flush)

    def verify(self, host: str = "") -> None:
        """Raise DigestMismatch unless the bytes written hash to the expected digest and size."""
        assert self.expected is not None
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

    async def commit(self, host: str = "", *, expected: Digest | None = None) -> Path:
        """Verify and move into place; on mismatch nothing is stored. `expected` names the
        digest now when the writer was opened without one."""
        self._drain()  # at most one CHUNK, written here
        self._file.close()
        if expected is not None:
            self.expected = expected
            if expected.algorithm != self._hasher.name:
                await asyncio.to_thread(self._rehash, expected.algorithm)
        if self.expected is None:
            self._discard()
            raise ValueError("commit of a blob whose digest was never given")
        try:
            self.verify(host)
        except DigestMismatch:
            self._discard()
            raise
        final = self._storage.path(self.expected)
        final.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(os.replace, self.temp, final)
        return final

    def close(self) -> None:
        """Close the file, keeping its bytes (an upload continued by a later request)."""
        self._drain()
        self._file.close()

    def abort(self) -> None:
        """Drop what was written (idempotent; a no-op after a successful commit)."""
        if not self._file.closed:
            self._file.close()
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


class BlobStorage:
    """Blob files under `root`, named by digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.temp_dir = root / "tmp"
        self.upload_dir = root / "uploads"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)

    def clear_temp(self, older_than: float = 0.0) -> int:
        """Remove temp files left by a crash, at start-up. With other processes sharing the
        root (PostgreSQL set-ups) only files untouched for `older_than` seconds go."""
        removed = 0
        cutoff = time.time() - older_than
        for leftover in self.temp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if older_than and leftover.stat().st_mtime > cutoff:
                    continue
                leftover.unlink()
                removed += 1
        return removed

    def path(self, digest: Digest) -> Path:
        return self.blob_dir / digest.algorithm / digest.hex[:2] / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    @contextlib.asynccontextmanager
    async def writer(
        self, expected: Digest, expected_size: int | None = None
    ) -> AsyncIterator[BlobWriter]:
        """A writer whose temp file is removed if the block exits without `commit`."""
        writer = BlobWriter(self, expected, expected_size)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        finally:
            with contextlib.suppress(Exception):
                writer._file.close()
            with contextlib.suppress(FileNotFoundError):
                writer.temp.unlink()

    async def open_writer(self, expected: Digest, expected_size: int | None = None) -> BlobWriter:
        """A writer the caller must `commit` or `abort` (for loops that cannot nest a block)."""
        return BlobWriter(self, expected, expected_size)

    def _upload_path(self, upload_id: str) -> Path:
        if not upload_id.replace("-", "").isalnum():  # a uuid: never a path of the caller's
            raise ValueError(f"bad upload id {upload_id!r}")
        return self.upload_dir / upload_id

    async def open_upload(self, upload_id: str) -> BlobWriter:
        """A writer appending to upload `upload_id` (created empty, or resumed by re-hashing
        what an earlier request or process wrote). `commit(expected=...)` publishes it."""
        path = self._upload_path(upload_id)
        writer = BlobWriter(self, None, None, temp=path)
        writer.size = await asyncio.to_thread(lambda: path.stat().st_size)
        if writer.size:
            await asyncio.to_thread(writer._rehash, "sha256")
        return writer

    def upload_size(self, upload_id: str) -> int | None:
        """Bytes received by an upload so far; None when it has no file."""
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    def discard_upload(self, upload_id: str) -> None:
        """Remove an upload's bytes (cancel, expiry, failed verification); idempotent."""
        with contextlib.suppress(FileNotFoundError):
            self._upload_path(upload_id).unlink()

    def truncate_upload(self, upload_id: str, size: int) -> None:
        """Cut an upload back to `size` bytes (a request that failed half way)."""
        with contextlib.suppress(FileNotFoundError), open(self._upload_path(upload_id), "r+b") as f:
            f.truncate(size)

    async def write_bytes(self, digest: Digest, data: bytes) -> Path:
        """Store small content already in memory (e.g. a config blob)."""
        async with self.writer(digest, len(data)) as writer:
            await writer.write(data)
            return await writer.commit()

    async def read_bytes(self, digest: Digest) -> bytes:
        return await asyncio.to_thread(self.path(digest).read_bytes)
