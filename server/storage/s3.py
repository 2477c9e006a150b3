"""Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, moto, ...).

Layout: `<prefix>blobs/<algorithm>/<first two hex>/<hex>`, the filesystem layout as keys.
A writer hashes the bytes as they come. A small blob (up to `PART_SIZE`) is buffered in
memory (within a process-wide budget) and goes up in one PUT after its digest matched. A large
one goes up as a multipart upload whose parts stream out while the blob downloads (a few
chunks queued per writer, no part buffer), completed only after the digest matched and
aborted otherwise. An object is visible only once complete, so a reader never sees a partial
or corrupt blob, and nothing is copied to local disk.

Credentials come from botocore's standard chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
`AWS_PROFILE` and the shared credentials file, instance roles); they are never logged.
Client: aiobotocore, which rides on the aiohttp the project already uses (see the commit that
added it for the measurement against obstore).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError

from server.domain.digests import Digest
from server.domain.errors import NotFound
from server.storage.base import BlobStat, BlobWriter, StorageError, StorageFull, Temporary

if TYPE_CHECKING:
    from server.storage import StorageConfig

PART_SIZE = 8 << 20
"""Bytes buffered per writer before a part goes up (S3's minimum part is 5 MiB)."""
BUFFER_BUDGET = 24 << 20
"""Buffered small-blob bodies of all writers together: a download that would need more waits
(its upstream stream pauses) until an upload frees room, so memory stays bounded whatever
the download concurrency."""
PART_QUEUE = 2
"""Chunks (each up to 1 MiB) queued per streaming part; the download pauses beyond it."""
STAT_CONCURRENCY = 32
READ_CHUNK = 1 << 20
_FULL_CODES = {"QuotaExceeded", "XMinioStorageFull", "StorageFull", "InsufficientStorage"}
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def _error(name: str, exc: Exception, doing: str) -> StorageError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _FULL_CODES or status == 507:
            return StorageFull(f"storage {name} is full: {doing} failed ({code})", storage=name)
        return StorageError(
            f"storage {name}: {doing} failed ({code or status})", storage=name, s3Code=code
        )
    return StorageError(
        f"storage {name} is unreachable: {doing} failed ({exc.__class__.__name__})", storage=name
    )


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES


class _Budget:
    """Bytes of part buffers the process may hold; waiters queue for room."""

    def __init__(self, total: int) -> None:
        self._free = total
        self._room = asyncio.Condition()

    async def take(self, size: int) -> None:
        async with self._room:
            await self._room.wait_for(lambda: self._free >= size)
            self._free -= size

    async def give(self, size: int) -> None:
        async with self._room:
            self._free += size
            self._room.notify_all()


class _PartStream:
    """The body of one part upload, fed by the writer as the bytes arrive (no part buffer).

    botocore checks that a body has `read`; aiohttp sends it by iterating (it is no IOBase,
    so aiobotocore hands it over as is). It cannot rewind: a failed part fails the writer,
    and the fetcher's retry starts the blob over with a new upload.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(PART_QUEUE)

    def read(self, *_: Any) -> bytes:
        raise io.UnsupportedOperation("a part stream is sent by iteration")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk


class _ObjectWriter(BlobWriter):
    """Small blobs: one buffered PUT after verification. Large ones (known size over
    PART_SIZE): a multipart upload whose parts stream out while the blob downloads; it is
    completed only after verification, aborted otherwise."""

    def __init__(self, store: S3BlobStore, expected: Digest, size: int | None) -> None:
        super().__init__(store.name, expected, size)
        self._store = store
        self._key = store.key(expected)
        self._streaming = size is not None and size > PART_SIZE
        self._part: io.BytesIO | None = None
        """Small blobs: the buffered body (chunks copied in once)."""
        self._held = 0
        """Budget bytes this writer holds for `_part`."""
        self._upload_id: str | None = None
        self._stream: _PartStream | None = None
        self._stream_left = 0
        self._fed = 0
        self._uploads: list[asyncio.Task[dict[str, Any]]] = []

    async def _consume(self, chunks: list[bytes]) -> None:
        await asyncio.to_thread(self._hash, chunks)
        if self._streaming:
            for chunk in chunks:
                await self._feed(chunk)
            return
        if self._part is None:
            left = PART_SIZE if self.expected_size is None else self.expected_size
            self._held = max(1, min(PART_SIZE, left))
            await self._store.budget.take(self._held)
            self._part = io.BytesIO()
        for chunk in chunks:
            self._part.write(chunk)
        if self._part.tell() > PART_SIZE and self.expected_size is None:
            raise StorageError(
                f"storage {self.storage}: blob {self.expected} of unknown size is over "
                f"{PART_SIZE} bytes",
                storage=self.storage,
            )

    async def _feed(self, chunk: bytes) -> None:
        assert self.expected_size is not None
        while chunk:
            if self._fed >= self.expected_size:
                return  # more than announced: verification fails, nothing is published
            if self._stream is None or self._stream_left == 0:
                await self._next_part()
            assert self._stream is not None
            piece, chunk = chunk[: self._stream_left], chunk[self._stream_left :]
            await self._put(piece)
            self._stream_left -= len(piece)
            self._fed += len(piece)
            if self._stream_left == 0:
                await self._put(None)

    async def _put(self, item: bytes | None) -> None:
        """Queue bytes for the current part; fail at once if its upload failed."""
        assert self._stream is not None
        upload = self._uploads[-1]
        put = asyncio.ensure_future(self._stream._queue.put(item))
        await asyncio.wait({put, upload}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            upload.result()  # raises the upload's error
            raise StorageError(
                f"storage {self.storage}: a part upload of {self.expected} ended early",
                storage=self.storage,
            )

    async def _next_part(self) -> None:
        assert self.expected_size is not None
        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            try:
                started = await client.create_multipart_upload(Bucket=bucket, Key=self._key)
                self._upload_id = started["UploadId"]
                await client.put_object(
                    Bucket=bucket, Key=self._store.marker(self._upload_id), Body=self._key.encode()
                )
            except (ClientError, BotoCoreError) as exc:
                raise _error(self.storage, exc, "starting a multipart upload") from exc
        size = min(PART_SIZE, self.expected_size - self._fed)
        self._stream, self._stream_left = _PartStream(), size
        self._uploads.append(
            asyncio.ensure_future(self._send_part(len(self._uploads) + 1, self._stream, size))
        )

    async def _send_part(self, number: int, body: _PartStream, size: int) -> dict[str, Any]:
        try:
            done = await self._store.client.upload_part(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
                ContentLength=size,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.storage, exc, "uploading a blob part") from exc
        return {"PartNumber": number, "ETag": done["ETag"]}

    async def _release(self) -> None:
        self._part = None
        if self._held:
            held, self._held = self._held, 0
            await self._store.budget.give(held)

    async def _publish(self) -> BlobStat:
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is None:
                body = self._part or io.BytesIO()
                size = body.tell()
                body.seek(0)
                try:
                    # A file object, not bytes: aiohttp streams it (bytes bodies over 1 MiB
                    # warn, and went up ~1.5x slower against moto).
                    await client.put_object(
                        Bucket=bucket, Key=self._key, Body=body, ContentLength=size
                    )
                finally:
                    await self._release()
            else:
                parts = await asyncio.gather(*self._uploads)
                await client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": list(parts)},
                )
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.storage, exc, "publishing a blob") from exc
        if self._upload_id is not None:
            with contextlib.suppress(ClientError, BotoCoreError):  # a stale marker is listed
                await client.delete_object(Bucket=bucket, Key=self._store.marker(self._upload_id))
        # S3 is read-after-write consistent: no HEAD needed to know what was just written.
        return BlobStat(self.expected, self.size, time.time())

    async def _discard(self) -> None:
        await self._release()
        for upload in self._uploads:
            upload.cancel()
        if self._uploads:
            await asyncio.wait(self._uploads)
        if self._upload_id is not None:
            await self._store.abort_temporary(
                Temporary(f"{self._key}\n{self._upload_id}", 0.0), quiet=True
            )


class S3BlobStore:
    """Blob objects under `s3://bucket/prefix`."""

    def __init__(self, config: StorageConfig, client: Any, stack: contextlib.AsyncExitStack):
        parsed = urlsplit(config.url)
        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.name = f"s3://{self.bucket}/{self.prefix}"
        self.client = client
        self._stack = stack
        self._serve = config.s3_serve
        self._presign_seconds = config.s3_presign_seconds
        self.budget = _Budget(BUFFER_BUDGET)

    @classmethod
    async def open(cls, config: StorageConfig, *, check_bucket: bool = True) -> S3BlobStore:
        """A store on a started client; the bucket must exist (checked unless told not to)."""
        parsed = urlsplit(config.url)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"storage URL must be s3://bucket[/prefix], got {config.url!r}")
        session = get_session()
        aio_config = AioConfig(
            # payload_signing_enabled=False: the writer has hashed every byte already (and
            # publishes only what matched its digest), so SigV4 signs UNSIGNED-PAYLOAD instead
            # of botocore hashing each part a second time. Over https TLS guards the bytes;
            # plain http endpoints are for trusted networks (a local MinIO, moto).
            s3={"addressing_style": config.s3_addressing, "payload_signing_enabled": False},
            signature_version="s3v4",  # presigned URLs too (botocore's default there is v2)
            max_pool_connections=64,
            retries={"max_attempts": 5, "mode": "standard"},
            # The writer verifies the content's own digest; a second checksum per request
            # would hash every byte again for nothing TLS/TCP do not already cover.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=10,
            read_timeout=60,
        )
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=config.s3_endpoint_url or None,
                region_name=session.get_config_variable("region") or "us-east-1",
                config=aio_config,
            )
        )
        store = cls(config, client, stack)
        if not check_bucket:
            return store
        try:
            await client.head_bucket(Bucket=store.bucket)
        except (ClientError, BotoCoreError) as exc:
            await stack.aclose()
            if isinstance(exc, ClientError) and _missing(exc):
                raise StorageError(
                    f"storage {store.name}: bucket {store.bucket!r} does not exist",
                    storage=store.name,
                    reason="STORAGE_BUCKET_MISSING",
                ) from exc
            raise _error(store.name, exc, "opening the bucket") from exc
        return store

    def key(self, digest: Digest) -> str:
        return f"{self.prefix}blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"

    def marker(self, upload_id: str) -> str:
        """A small object beside each multipart upload, written when it starts: its
        LastModified dates the upload on every S3-compatible server (moto, for one, reports
        a fixed `Initiated`), so housekeeping can tell a stale upload from a running one."""
        return f"{self.prefix}uploads/{hashlib.sha256(upload_id.encode()).hexdigest()}"

    def _digest_of(self, key: str) -> Digest | None:
        rest = key.removeprefix(f"{self.prefix}blobs/")
        parts = rest.split("/")
        if len(parts) != 3 or not Digest.is_valid(f"{parts[0]}:{parts[2]}"):
            return None
        digest = Digest(parts[0], parts[2])
        return digest if parts[1] == digest.hex[:2] else None

    async def stat(self, digest: Digest) -> BlobStat | None:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise _error(self.name, exc, "reading a blob's size") from exc
        except BotoCoreError as exc:
            raise _error(self.name, exc, "reading a blob's size") from exc
        return BlobStat(digest, int(head["ContentLength"]), head["LastModified"].timestamp())

    async def stat_many(self, digests: list[Digest]) -> dict[Digest, BlobStat]:
        slots = asyncio.Semaphore(STAT_CONCURRENCY)

        async def one(digest: Digest) -> BlobStat | None:
            async with slots:
                return await self.stat(digest)

        found = await asyncio.gather(*(one(d) for d in digests))
        return {s.digest: s for s in found if s is not None}

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(digest)}
        if start or end is not None:
            if end is not None and end <= start:
                return
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            got = await self.client.get_object(**args)
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"blob {digest} is not stored", digest=str(digest)) from exc
            raise _error(self.name, exc, "reading a blob") from exc
        except BotoCoreError as exc:
            raise _error(self.name, exc, "reading a blob") from exc
        body = got["Body"]
        try:
            async for chunk in body.iter_chunks(READ_CHUNK):
                yield chunk
        except (BotoCoreError, OSError) as exc:
            raise _error(self.name, exc, "reading a blob") from exc
        finally:
            body.close()

    async def read_bytes(self, digest: Digest) -> bytes:
        return b"".join([chunk async for chunk in self.read(digest)])

    async def open_writer(self, expected: Digest, expected_size: int | None = None) -> BlobWriter:
        return _ObjectWriter(self, expected, expected_size)

    async def delete(self, digest: Digest) -> bool:
        if await self.stat(digest) is None:
            return False
        try:
            await self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.name, exc, "deleting a blob") from exc
        return True

    async def iterate(self) -> AsyncIterator[BlobStat]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
                for item in page.get("Contents", []):
                    digest = self._digest_of(item["Key"])
                    if digest is not None:
                        yield BlobStat(digest, int(item["Size"]), item["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.name, exc, "listing blobs") from exc

    async def temporaries(self) -> list[Temporary]:
        """Open multipart uploads (dated by their marker) and markers left without one."""
        uploads: list[dict[str, Any]] = []
        markers: dict[str, float] = {}
        try:
            pages = self.client.get_paginator("list_multipart_uploads")
            async for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
                uploads.extend(page.get("Uploads", []))
            pages = self.client.get_paginator("list_objects_v2")
            async for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}uploads/"):
                for item in page.get("Contents", []):
                    markers[item["Key"]] = item["LastModified"].timestamp()
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.name, exc, "listing multipart uploads") from exc
        found: list[Temporary] = []
        for upload in uploads:
            marker = self.marker(upload["UploadId"])
            started = markers.pop(marker, upload["Initiated"].timestamp())
            found.append(Temporary(f"{upload['Key']}\n{upload['UploadId']}", started))
        found.extend(Temporary(key, started) for key, started in markers.items())
        return found

    async def abort_temporary(self, temporary: Temporary, *, quiet: bool = False) -> None:
        """Abort a multipart upload and drop its marker (or drop a marker left alone)."""
        key, _, upload_id = temporary.key.partition("\n")
        try:
            if not upload_id:
                if not key.startswith(f"{self.prefix}uploads/"):
                    raise ValueError(f"not a temporary of this store: {temporary.key!r}")
                await self.client.delete_object(Bucket=self.bucket, Key=key)
                return
            if not key.startswith(f"{self.prefix}blobs/"):
                raise ValueError(f"not a temporary of this store: {temporary.key!r}")
            try:
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) != "NoSuchUpload":
                    raise
            await self.client.delete_object(Bucket=self.bucket, Key=self.marker(upload_id))
        except (ClientError, BotoCoreError) as exc:
            if not quiet:
                raise _error(self.name, exc, "aborting a multipart upload") from exc

    async def presigned_url(self, digest: Digest) -> str:
        """A short-lived GET URL of a blob (`s3_presign_seconds`)."""
        return await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(digest)},
            ExpiresIn=self._presign_seconds,
        )

    async def http_response(
        self,
        request: web.Request,
        stat: BlobStat,
        headers: dict[str, str],
        *,
        ignore_range: bool = False,
    ) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(stat.size)})
        if self._serve == "redirect":
            # skopeo, podman, containerd and docker follow a blob redirect without sending
            # their registry credentials to it; the URL expires in `s3_presign_seconds`.
            location = await self.presigned_url(stat.digest)
            return web.Response(status=307, headers={**headers, "Location": location})
        return await _stream(self, request, stat, headers, ignore_range)

    async def aclose(self) -> None:
        await self._stack.aclose()


async def _stream(
    store: S3BlobStore,
    request: web.Request,
    stat: BlobStat,
    headers: dict[str, str],
    ignore_range: bool,
) -> web.StreamResponse:
    """The blob's bytes through this process, honouring a single `Range` unless `whole`."""
    start, end = 0, stat.size
    status = 200
    try:
        wanted = slice(None, None) if ignore_range else request.http_range
    except ValueError:
        wanted = slice(None, None)
    if wanted.start is not None or wanted.stop is not None:
        first = wanted.start or 0
        if first < 0:  # a suffix range: the last -first bytes
            first = max(0, stat.size + first)
        last = stat.size if wanted.stop is None else min(wanted.stop, stat.size)
        if first >= stat.size or last <= first:
            return web.Response(
                status=416, headers={**headers, "Content-Range": f"bytes */{stat.size}"}
            )
        start, end, status = first, last, 206
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{stat.size}"
    response.headers["Accept-Ranges"] = "bytes"
    chunks = store.read(stat.digest, start, end)
    try:
        first_chunk = await anext(chunks, None)
        await response.prepare(request)
        if first_chunk is not None:
            await response.write(first_chunk)
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
    finally:
        await chunks.aclose()
    return response
