"""The push side of the OCI distribution API, for distributions of repositories that are not
mirrors. https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push

Blob uploads: `POST .../blobs/uploads/` (with `?digest=` a monolithic upload, with
`?mount=&from=` a cross-repository mount), `PATCH` chunks (`Content-Range` must continue
where the upload stands), `PUT ?digest=` completes, `GET` reports the range received,
`DELETE` cancels. Bytes go through the blob store's verifying writer: a blob becomes visible
only once its digest and size match, and only in the repository it was pushed to (staged,
see `server/store/push.py`). Manifests: `PUT` by tag or digest (checked: digest, size limit,
media type, every blob and child present in the repository), `DELETE` by tag or digest; each
accepted one is one new repository version, serialised by the committer.

Refused with 403 DENIED, before anything is stored: pushes into a mirror (its content comes
from its upstream) and through a distribution that pins a version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import ClientPayloadError, web

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch, FailedPrecondition, NotFound
from server.domain.manifests import (
    MAX_MANIFEST_BYTES,
    SCHEMA1_TYPES,
    Manifest,
    ManifestError,
    parse_manifest,
)
from server.domain.resources import VersionOrigin, VersionSource
from server.domain.rules import is_oci_name, is_tag
from server.registry import errors
from server.storage import BlobStore
from server.storage.uploads import Uploads, UploadWriter
from server.store.commits import mirror_refused
from server.store.operations import ContentOperations, VersionRef
from server.store.push import BlobSizeMismatch, BlobUnknown, PushStore
from server.store.serving import Served, ServingQueries

log = logging.getLogger("mirror.registry")

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})")


class PushAccess(Protocol):
    """Who may push into (and mount from) a repository: the access-control seam.

    `authorize` returns the principal's name, or the response to send (401 with a challenge,
    403 DENIED). `public` marks a pull (mount source) from a public distribution. The server
    wires `RegistryAccess` (server/access/registry.py) into it: the one access policy."""

    async def authorize(
        self, request: web.Request, repository_id: str, action: str, *, public: bool = False
    ) -> str | web.Response: ...


class Pusher:
    """Handlers of the push routes, with the per-process cache of open upload writers."""

    def __init__(
        self,
        serving: ServingQueries,
        uploads: Uploads,
        store: PushStore,
        operations: ContentOperations,
        access: PushAccess,
    ) -> None:
        self._serving = serving
        self._uploads = uploads
        self._blobs: BlobStore = uploads.store
        self._store = store
        self._operations = operations
        self._access = access
        # Open writers of uploads this process is receiving, so a chunked upload is hashed
        # once; valid only while its size matches the upload row (another process may write).
        self._writers: dict[str, UploadWriter] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- shared steps ----------------------------------------------------------------------
    async def _target(self, request: web.Request) -> tuple[Served, str] | web.Response:
        """The repository a push goes to and the principal pushing, or the refusal."""
        name = request.match_info["name"]
        if not is_oci_name(name):
            return errors.error_response(errors.NAME_INVALID, {"name": name})
        served = await self._serving.resolve(name)
        if served is None:
            return errors.error_response(errors.NAME_UNKNOWN, {"name": name})
        principal = await self._access.authorize(request, served.repository_id, "push")
        if isinstance(principal, web.Response):
            return principal
        if served.mirror:
            return errors.error_response(
                errors.DENIED,
                {"repository": f"repositories/{served.repository_id}"},
                message=mirror_refused(served.repository_id, "a push").message,
            )
        if served.pinned:
            return errors.error_response(
                errors.DENIED,
                {"name": name},
                message=f"{name} serves a pinned version of repositories/"
                f"{served.repository_id}; push through a distribution that follows its "
                "latest version",
            )
        return served, principal

    def _upload_headers(self, name: str, uid: str, size: int) -> dict[str, str]:
        return {
            **API_VERSION,
            "Location": f"/v2/{name}/blobs/uploads/{uid}",
            "Docker-Upload-UUID": uid,
            "Range": f"0-{max(size - 1, 0)}",
        }

    @staticmethod
    def _blob_created(name: str, digest: str) -> web.Response:
        return web.Response(
            status=201,
            headers={
                **API_VERSION,
                "Location": f"/v2/{name}/blobs/{digest}",
                "Docker-Content-Digest": digest,
            },
        )

    async def _writer(self, uid: str, size: int) -> UploadWriter:
        cached = self._writers.pop(uid, None)
        if cached is not None and cached.size == size:
            return cached
        if cached is not None:
            cached.close()
        # Bytes beyond `size` (a request that died half way, not counted) are cut off.
        return await self._uploads.open(uid, size)

    async def _receive(self, request: web.Request, writer: UploadWriter) -> None:
        # Whatever has arrived, as it arrives: bytes still buffered here when the client
        # goes away are lost, bytes handed to the writer are kept for a resume.
        async for chunk in request.content.iter_any():
            await writer.write(chunk)

    @contextlib.asynccontextmanager
    async def _locked(self, uid: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            yield

    def _forget(self, uid: str) -> None:
        writer = self._writers.pop(uid, None)
        if writer is not None:
            writer.close()
        self._locks.pop(uid, None)

    async def _complete(
        self, served: Served, name: str, writer: UploadWriter, uid: str, raw_digest: str
    ) -> web.Response:
        """Verify and publish an upload's bytes under `raw_digest`, stage it, end the upload."""
        digest = Digest.parse(raw_digest)
        self._writers.pop(uid, None)
        try:
            await self._uploads.publish(writer, digest)
        except DigestMismatch as exc:
            self._forget(uid)
            await self._store.end_upload(uid)
            return errors.error_response(errors.DIGEST_INVALID, exc.metadata, message=exc.message)
        self._forget(uid)
        await self._store.stage(served.repository_pk, raw_digest, writer.size)
        await self._store.end_upload(uid)
        return self._blob_created(name, raw_digest)

    # -- blob uploads ----------------------------------------------------------------------
    async def start_upload(self, request: web.Request) -> web.Response:
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        served, principal = target
        name = request.match_info["name"]
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source:
            mounted = await self._mount(request, served, mount, source)
            if mounted is not None:
                return mounted
        raw_digest = request.query.get("digest")
        if raw_digest is not None and not Digest.is_valid(raw_digest):
            return errors.error_response(errors.DIGEST_INVALID, {"digest": raw_digest})
        upload = await self._store.start_upload(served.repository_pk, principal)
        if raw_digest is None:
            # Session started (its empty file too); bytes come by PATCH / PUT.
            self._writers[upload.uid] = await self._uploads.open(upload.uid, 0)
            return web.Response(status=202, headers=self._upload_headers(name, upload.uid, 0))
        async with self._locked(upload.uid):
            writer = await self._uploads.open(upload.uid, 0)
            try:
                await self._receive(request, writer)
            except BaseException:
                writer.close()
                await self._uploads.discard(upload.uid)
                await self._store.end_upload(upload.uid)
                raise
            return await self._complete(served, name, writer, upload.uid, raw_digest)

    async def _mount(
        self, request: web.Request, served: Served, raw_digest: str, source_name: str
    ) -> web.Response | None:
        """Stage a blob of another repository the principal may pull; None: not mountable
        (the client then uploads, as the spec says)."""
        if not Digest.is_valid(raw_digest) or not is_oci_name(source_name):
            return None
        source = await self._serving.resolve(source_name)
        if source is None:
            return None
        allowed = await self._access.authorize(
            request, source.repository_id, "pull", public=source.public
        )
        if isinstance(allowed, web.Response):
            return None
        found = await self._serving.blob(source, raw_digest)
        if found is None:
            return None
        stat = await self._blobs.stat(Digest.parse(raw_digest))
        if stat is None or stat.size != found.size:  # on-demand content not fetched yet
            return None
        await self._store.stage(served.repository_pk, raw_digest, stat.size)
        return self._blob_created(request.match_info["name"], raw_digest)

    async def _upload(self, request: web.Request) -> tuple[Served, str, str, int] | web.Response:
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        served, _ = target
        uid = request.match_info["uid"]
        upload = await self._store.get_upload(uid, served.repository_pk)
        if upload is None:
            return errors.error_response(errors.BLOB_UPLOAD_UNKNOWN, {"uuid": uid})
        return served, request.match_info["name"], uid, upload.size

    async def patch_upload(self, request: web.Request) -> web.Response:
        found = await self._upload(request)
        if isinstance(found, web.Response):
            return found
        served, name, uid, size = found
        async with self._locked(uid):
            upload = await self._store.get_upload(uid, served.repository_pk)
            if upload is None:
                return errors.error_response(errors.BLOB_UPLOAD_UNKNOWN, {"uuid": uid})
            size = upload.size
            bad_range = self._check_range(request, size)
            if bad_range is not None:
                return bad_range
            writer = await self._writer(uid, size)
            try:
                await self._receive(request, writer)
            except (ConnectionError, ClientPayloadError):
                # The client went away mid-chunk; what arrived is kept below for its resume.
                log.info("upload %s: client gone after %d bytes", uid, writer.size)
            finally:
                # Whatever arrived is a valid prefix: record it, so an interrupted chunk
                # resumes from there (GET tells the client where).
                await writer.flush()
                recorded = await self._store.advance(uid, size, writer.size)
                if recorded:
                    self._writers[uid] = writer
                else:
                    writer.close()
            if not recorded:
                # Another process wrote this upload meanwhile: the client must ask where it
                # stands (this request's bytes are cut off by the next writer).
                return errors.error_response(
                    errors.BLOB_UPLOAD_INVALID,
                    {"uuid": uid},
                    message="the upload moved on concurrently; GET its status and resume",
                )
            return web.Response(status=202, headers=self._upload_headers(name, uid, writer.size))

    @staticmethod
    def _check_range(request: web.Request, size: int) -> web.Response | None:
        raw = request.headers.get("Content-Range")
        if raw is None:
            return None
        match = _CONTENT_RANGE.fullmatch(raw.strip())
        if match is None or int(match[1]) != size or int(match[2]) < int(match[1]):
            response = errors.error_response(
                errors.BLOB_UPLOAD_INVALID,
                {"contentRange": raw, "received": size},
                message=f"Content-Range must continue at byte {size}",
            )
            response.set_status(416)
            response.headers["Range"] = f"0-{max(size - 1, 0)}"
            return response
        return None

    async def finish_upload(self, request: web.Request) -> web.Response:
        found = await self._upload(request)
        if isinstance(found, web.Response):
            return found
        served, name, uid, _ = found
        raw_digest = request.query.get("digest", "")
        if not Digest.is_valid(raw_digest):
            return errors.error_response(errors.DIGEST_INVALID, {"digest": raw_digest})
        async with self._locked(uid):
            upload = await self._store.get_upload(uid, served.repository_pk)
            if upload is None:
                return errors.error_response(errors.BLOB_UPLOAD_UNKNOWN, {"uuid": uid})
            bad_range = self._check_range(request, upload.size)
            if bad_range is not None:
                return bad_range
            writer = await self._writer(uid, upload.size)
            try:
                await self._receive(request, writer)
            except BaseException:
                await writer.flush()
                writer.close()
                self._forget(uid)
                raise
            return await self._complete(served, name, writer, uid, raw_digest)

    async def upload_status(self, request: web.Request) -> web.Response:
        found = await self._upload(request)
        if isinstance(found, web.Response):
            return found
        served, name, uid, _ = found
        async with self._locked(uid):  # a request of this process still writing: its end
            upload = await self._store.get_upload(uid, served.repository_pk)
        if upload is None:
            return errors.error_response(errors.BLOB_UPLOAD_UNKNOWN, {"uuid": uid})
        return web.Response(status=204, headers=self._upload_headers(name, uid, upload.size))

    async def cancel_upload(self, request: web.Request) -> web.Response:
        found = await self._upload(request)
        if isinstance(found, web.Response):
            return found
        _, _, uid, _ = found
        async with self._locked(uid):
            self._forget(uid)
            await self._uploads.discard(uid)
            await self._store.end_upload(uid)
        return web.Response(status=204, headers=API_VERSION)

    # -- manifests -------------------------------------------------------------------------
    async def put_manifest(self, request: web.Request) -> web.Response:
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        served, principal = target
        name, reference = request.match_info["name"], request.match_info["reference"]
        tag: str | None = None
        wanted: Digest | None = None
        if ":" in reference:
            if not Digest.is_valid(reference):
                return errors.error_response(errors.DIGEST_INVALID, {"digest": reference})
            wanted = Digest.parse(reference)
        elif is_tag(reference):
            tag = reference
        else:
            return errors.error_response(errors.TAG_INVALID, {"tag": reference})
        if (request.content_length or 0) > MAX_MANIFEST_BYTES:
            return _too_big(request.content_length or 0)
        data = await _read_limited(request, MAX_MANIFEST_BYTES)
        if data is None:
            return _too_big(MAX_MANIFEST_BYTES + 1)
        if wanted is not None and Digest.of_bytes(data, wanted.algorithm) != wanted:
            return errors.error_response(
                errors.DIGEST_INVALID,
                {"digest": reference},
                message="the manifest's bytes do not hash to the digest in the URL",
            )
        content_type = request.headers.get("Content-Type", "")
        try:
            manifest = parse_manifest(data, content_type, wanted)
        except ManifestError as exc:
            return errors.error_response(errors.MANIFEST_INVALID, {"reason": str(exc)})
        problem = _media_type_problem(manifest, content_type)
        if problem:
            return errors.error_response(errors.MANIFEST_INVALID, {"reason": problem})
        missing = await self._missing_blobs(manifest)
        if missing is not None:
            return missing
        origin = VersionOrigin(VersionSource.PUSH, principal, f"push: PUT manifests/{reference}")
        try:
            await self._store.put_manifest(served.repository_id, manifest, tag, origin)
        except (BlobUnknown, BlobSizeMismatch) as exc:
            code = (
                errors.MANIFEST_BLOB_UNKNOWN
                if isinstance(exc, BlobUnknown)
                else errors.SIZE_INVALID
            )
            return errors.error_response(code, exc.metadata, message=exc.message)
        except FailedPrecondition as exc:  # became a mirror meanwhile
            return errors.error_response(errors.DENIED, exc.metadata, message=exc.message)
        headers = {
            **API_VERSION,
            "Location": f"/v2/{name}/manifests/{manifest.digest}",
            "Docker-Content-Digest": str(manifest.digest),
        }
        if manifest.subject is not None:
            headers["OCI-Subject"] = str(manifest.subject)
        return web.Response(status=201, headers=headers)

    async def _missing_blobs(self, manifest: Manifest) -> web.Response | None:
        """Every non-foreign blob must be stored with the size the manifest gives (checked
        before any row names it, so no blob row gets a size the bytes do not have)."""
        for blob in manifest.blobs:
            if blob.is_foreign:
                continue
            stat = await self._blobs.stat(blob.digest)
            size = None if stat is None else stat.size
            if size is None:
                return errors.error_response(
                    errors.MANIFEST_BLOB_UNKNOWN,
                    {"digest": str(blob.digest)},
                    message=f"blob {blob.digest} is not in the repository; upload it first",
                )
            if size != blob.size:
                return errors.error_response(
                    errors.SIZE_INVALID,
                    {"digest": str(blob.digest), "size": size, "declaredSize": blob.size},
                    message=f"blob {blob.digest} has {size} bytes, the manifest says {blob.size}",
                )
        return None

    async def delete_manifest(self, request: web.Request) -> web.Response:
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        served, principal = target
        reference = request.match_info["reference"]
        origin = VersionOrigin(VersionSource.PUSH, principal, f"push: DELETE manifests/{reference}")
        base = VersionRef(served.repository_id)
        try:
            if ":" in reference:
                if not Digest.is_valid(reference):
                    return errors.error_response(errors.DIGEST_INVALID, {"digest": reference})
                if await self._serving.manifest_by_digest(served, reference) is None:
                    return errors.error_response(errors.MANIFEST_UNKNOWN, {"reference": reference})
                await self._operations.modify(base, remove=[reference], origin=origin)
            elif is_tag(reference):
                await self._operations.untag(base, reference, origin)
            else:
                return errors.error_response(errors.TAG_INVALID, {"tag": reference})
        except NotFound:
            return errors.error_response(errors.MANIFEST_UNKNOWN, {"reference": reference})
        except FailedPrecondition as exc:
            response = errors.error_response(errors.DENIED, exc.metadata, message=exc.message)
            if exc.reason == "CONTENT_IN_USE":
                response.set_status(409)
            return response
        return web.Response(status=202, headers=API_VERSION)

    async def delete_blob(self, request: web.Request) -> web.Response:
        target = await self._target(request)
        if isinstance(target, web.Response):
            return target
        return errors.error_response(
            errors.UNSUPPORTED,
            {"method": "DELETE"},
            message="blobs leave a repository with the manifests that use them",
        )

    # -- expiry ----------------------------------------------------------------------------
    async def sweep(self) -> int:
        """Expire idle uploads (rows and bytes) and remove upload files no row knows."""
        expired = await self._store.expire()
        for uid in expired:
            self._forget(uid)
            await self._uploads.discard(uid)
        live = await self._store.live_uploads()
        # A POST may have made its file before its row commits: only files a minute old.
        orphans = await asyncio.to_thread(self._uploads.stale, live, 60.0)
        for uid in orphans:
            self._forget(uid)
            await self._uploads.discard(uid)
        return len(expired) + len(orphans)

    async def run_sweeper(self) -> None:
        """Sweep at start and then every quarter lifetime (at most every 10 minutes)."""
        interval = min(self._store.lifetime / 4, 600.0)
        while True:
            try:
                swept = await self.sweep()
                if swept:
                    log.info("expired %d blob upload(s)", swept)
            except Exception:  # the next round retries; never stop sweeping
                log.exception("sweeping blob uploads failed")
            await asyncio.sleep(interval)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds `limit` bytes (chunked bodies too)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _too_big(size: int) -> web.Response:
    response = errors.error_response(
        errors.MANIFEST_INVALID,
        {"size": size, "limit": MAX_MANIFEST_BYTES},
        message=f"manifests are limited to {MAX_MANIFEST_BYTES} bytes",
    )
    response.set_status(413)
    return response


def _media_type_problem(manifest: Manifest, content_type: str) -> str:
    if manifest.media_type in SCHEMA1_TYPES:
        return "schema1 manifests cannot be pushed; push schema2 or OCI"
    served = content_type.split(";", 1)[0].strip().lower()
    if served != manifest.media_type:
        return f"Content-Type {served!r} is not the manifest's media type {manifest.media_type!r}"
    return ""
