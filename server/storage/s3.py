"""Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, moto, ...).

Layout: `<prefix>blobs/<algorithm>/<first two hex>/<hex>`, the filesystem layout as keys.
A writer hashes the bytes as they come and buffers at most one part (`PART_SIZE`) in memory:
a small blob goes up in one PUT after its digest matched; a large one as a multipart upload
whose parts go up as they fill, completed only after the digest matched (aborted otherwise).
An object is visible only once complete, so a reader never sees a partial or corrupt blob,
and nothing is copied to local disk.

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


class _ObjectWriter(BlobWriter):
    def __init__(self, store: S3BlobStore, expected: Digest, size: int | None) -> None:
        super().__init__(store.name, expected, size)
        self._store = store
        self._key = store.key(expected)
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    async def _consume(self, chunks: list[bytes]) -> None:
        await asyncio.to_thread(self._hash, chunks)
        self._buffer.extend(chunks)
        self._buffered += sum(len(c) for c in chunks)
        if self._buffered >= PART_SIZE:
            await self._upload_part()

    async def _upload_part(self) -> None:
        body = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is None:
                started = await client.create_multipart_upload(Bucket=bucket, Key=self._key)
                self._upload_id = started["UploadId"]
                await client.put_object(
                    Bucket=bucket, Key=self._store.marker(self._upload_id), Body=self._key.encode()
                )
            number = len(self._parts) + 1
            done = await client.upload_part(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                # A file object, not bytes: aiohttp streams it (bytes over 1 MiB warn, and
                # measured ~1.5x slower against moto).
                Body=io.BytesIO(body),
                ContentLength=len(body),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.storage, exc, "uploading a blob part") from exc
        self._parts.append({"PartNumber": number, "ETag": done["ETag"]})

    async def _publish(self) -> BlobStat:
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is None:
                body = b"".join(self._buffer)
                await client.put_object(
                    Bucket=bucket, Key=self._key, Body=io.BytesIO(body), ContentLength=len(body)
                )
            else:
                if self._buffered:
                    await self._upload_part()
                await client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except (ClientError, BotoCoreError) as exc:
            raise _error(self.storage, exc, "publishing a blob") from exc
        if self._upload_id is not None:
            with contextlib.suppress(ClientError, BotoCoreError):  # a stale marker is listed
                await client.delete_object(Bucket=bucket, Key=self._store.marker(self._upload_id))
        self._buffer = []
        found = await self._store.stat(self.expected)
        if found is None:
            raise StorageError(
                f"storage {self.storage}: blob {self.expected} vanished after its upload",
                storage=self.storage,
            )
        return found

    async def _discard(self) -> None:
        self._buffer, self._buffered = [], 0
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

    @classmethod
    async def open(cls, config: StorageConfig) -> S3BlobStore:
        parsed = urlsplit(config.url)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"storage URL must be s3://bucket[/prefix], got {config.url!r}")
        session = get_session()
        aio_config = AioConfig(
            s3={"addressing_style": config.s3_addressing},
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
        try:
            await client.head_bucket(Bucket=store.bucket)
        except (ClientError, BotoCoreError) as exc:
            await stack.aclose()
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
        self, request: web.Request, stat: BlobStat, headers: dict[str, str]
    ) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(stat.size)})
        if self._serve == "redirect":
            # skopeo, podman, containerd and docker follow a blob redirect without sending
            # their registry credentials to it; the URL expires in `s3_presign_seconds`.
            location = await self.presigned_url(stat.digest)
            return web.Response(status=307, headers={**headers, "Location": location})
        return await _stream(self, request, stat, headers)

    async def aclose(self) -> None:
        await self._stack.aclose()


async def _stream(
    store: S3BlobStore, request: web.Request, stat: BlobStat, headers: dict[str, str]
) -> web.StreamResponse:
    """The blob's bytes through this process, honouring a single `Range`."""
    start, end = 0, stat.size
    status = 200
    try:
        wanted = request.http_range
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
