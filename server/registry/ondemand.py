"""Pull-through of layers a sync recorded but did not download (ON_DEMAND, STREAMED).

ON_DEMAND: the first pull streams the blob from the repository's remote to the client while
writing and hashing it; it is stored only when the digest matches. The last chunk is held back
until the digest is verified, so a corrupt upstream blob reaches the client truncated (an
error), never complete. Concurrent pulls of one digest download it once: later pullers wait
and are served from storage. The cache fill goes on if the client disconnects.
STREAMED: the same verification, nothing stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web

from server.config import Limits
from server.domain.digests import Digest
from server.domain.errors import DigestMismatch, MirrorError
from server.domain.manifests import Descriptor
from server.domain.resources import Policy, Remote
from server.registry.errors import upstream_error_response
from server.storage.blobs import BlobStorage, BlobWriter
from server.store.remotes import RemoteStore
from server.sync.hosts import Hosts
from server.sync.origins import NetworkPolicy
from server.sync.session import open_session
from server.sync.upstream import BLOB_CHUNK, Upstream

log = logging.getLogger(__name__)


class PullThrough:
    """Upstream clients per remote, kept open between pulls, and in-flight fills by digest."""

    def __init__(
        self, remotes: RemoteStore, storage: BlobStorage, hosts: Hosts, limits: Limits | None = None
    ) -> None:
        self._limits = limits or Limits()
        self._remotes = remotes
        self._storage = storage
        self._hosts = hosts
        self._clients: dict[str, tuple[datetime | None, Upstream, contextlib.AsyncExitStack]] = {}
        self._lock = asyncio.Lock()
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def remote(self, remote_pk: int) -> Remote | None:
        return await self._remotes.get_by_pk(remote_pk)

    async def _upstream(self, remote: Remote) -> Upstream:
        async with self._lock:
            cached = self._clients.get(remote.remote_id)
            if cached is not None and cached[0] == remote.update_time:
                return cached[1]
            if cached is not None:
                await cached[2].aclose()
            stack = contextlib.AsyncExitStack()
            policy = NetworkPolicy.for_remote(remote.url, self._limits)
            session, proxy = await stack.enter_async_context(open_session(remote, policy))
            upstream = Upstream(session, proxy, remote, self._hosts, limits=self._limits)
            self._clients[remote.remote_id] = (remote.update_time, upstream, stack)
            return upstream

    async def aclose(self) -> None:
        """At shutdown: stop unfinished fills (their temp files go) and close the sessions."""
        for drain in list(self._drains):
            drain.cancel()
        if self._drains:
            await asyncio.wait(self._drains)
        for _, _, stack in self._clients.values():
            await stack.aclose()
        self._clients.clear()

    async def serve(
        self, request: web.Request, remote: Remote, blob: Descriptor
    ) -> web.StreamResponse | None:
        """Stream `blob` from upstream to the client, storing it unless the policy is STREAMED.

        Returns None when, after waiting for another pull's fill, the blob is stored: the
        caller serves the file.
        """
        store = remote.policy is not Policy.STREAMED
        key = str(blob.digest)
        done: asyncio.Future[bool] | None = None
        if store:
            # Check and claim with no await in between, so one fill runs per digest.
            while (pending := self._inflight.get(key)) is not None:
                await asyncio.wait({pending})
            if self._storage.has(blob.digest):
                return None
            done = asyncio.get_running_loop().create_future()
            self._inflight[key] = done
        failure: MirrorError | None = None
        try:
            upstream = await self._upstream(remote)
            return await self._stream(request, upstream, blob, store)
        except MirrorError as exc:
            failure = exc
            raise
        finally:
            if done is not None:
                self._inflight.pop(key, None)
                done.set_result(failure is None and self._storage.has(blob.digest))

    async def _stream(
        self, request: web.Request, upstream: Upstream, blob: Descriptor, store: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Docker-Content-Digest": str(blob.digest),
                "Docker-Distribution-API-Version": "registry/2.0",
            }
        )
        response.content_length = blob.size
        # The fill runs as its own task so a client disconnect does not stop it.
        sink: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
        filler = asyncio.create_task(
            _Fill(upstream, blob, self._storage if store else None).run(sink)
        )
        started = client_gone = False
        try:
            while (chunk := await sink.get()) is not None:
                if client_gone:
                    continue
                try:
                    if not started:
                        await response.prepare(request)
                        started = True
                    await response.write(chunk)
                except (ConnectionResetError, RuntimeError):
                    client_gone = True
        except asyncio.CancelledError:
            # The request is gone; keep draining so the fill can finish storing the blob.
            self._drains.add(drain := asyncio.create_task(_drain(sink, filler)))
            drain.add_done_callback(self._drains.discard)
            raise
        failure = await filler
        if failure is None:
            if not started:
                await response.prepare(request)
            await response.write_eof()
            return response
        if not started:
            return upstream_error_response(failure)
        # Bytes went out already: cut the connection so the client sees a short body.
        if request.transport is not None:
            request.transport.close()
        return response


class _Fill:
    """Reads a blob from upstream into a queue of chunks (holding back the last one until the
    digest is verified) and into storage."""

    def __init__(self, upstream: Upstream, blob: Descriptor, storage: BlobStorage | None) -> None:
        self._upstream = upstream
        self._blob = blob
        self._storage = storage

    async def run(self, sink: asyncio.Queue[bytes | None]) -> MirrorError | None:
        """Feed `sink`; None when the blob was complete and verified, else why it failed."""
        hasher = self._blob.digest.hasher()
        size = 0
        held: bytes | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                resp = await stack.enter_async_context(self._upstream.open_blob(self._blob))
                writer: BlobWriter | None = None
                if self._storage is not None:  # opened once upstream answered
                    writer = await stack.enter_async_context(
                        self._storage.writer(self._blob.digest, self._blob.size)
                    )
                async for chunk in _chunks(resp.content.iter_chunked(BLOB_CHUNK)):
                    hasher.update(chunk)
                    size += len(chunk)
                    if writer is not None:
                        await writer.write(chunk)
                    if held is not None:
                        await sink.put(held)
                    held = chunk
                    if size > self._blob.size:
                        break
                if hasher.hexdigest() != self._blob.digest.hex or size != self._blob.size:
                    raise DigestMismatch(
                        f"blob {self._blob.digest} from {self._upstream.host} does not match",
                        host=self._upstream.host,
                        digest=str(self._blob.digest),
                    )
                if writer is not None:
                    await writer.commit(self._upstream.host)
            if held is not None:
                await sink.put(held)
            return None
        except MirrorError as exc:
            log.warning("pull-through of %s failed: %s", self._blob.digest, exc.message)
            return exc
        finally:
            await sink.put(None)


async def _drain(sink: asyncio.Queue[bytes | None], filler: asyncio.Task[Any]) -> None:
    while await sink.get() is not None:
        pass
    await filler


async def _chunks(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in source:
        if chunk:
            yield chunk


def descriptor(digest: str, size: int, media_type: str) -> Descriptor:
    return Descriptor(digest=Digest.parse(digest), size=size, media_type=media_type)
