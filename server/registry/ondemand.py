"""Pull-through of layers a sync recorded but did not download (ON_DEMAND, STREAMED).

The bytes come from the process-wide `BlobFetcher` (one download per digest, shared with
syncs; see `server/storage/fetcher.py`), verified before the last chunk goes out:
- ON_DEMAND: the blob is stored once its digest matches; the download goes on if the client
  disconnects, and a later pull is served from the store;
- STREAMED: nothing is stored; the download stops when its last client is gone.
This module keeps one upstream client per remote and turns a subscription into a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from aiohttp import web

from server.config import Limits
from server.domain.digests import Digest
from server.domain.errors import MirrorError, UpstreamUnavailable
from server.domain.manifests import Descriptor
from server.domain.resources import Policy, Remote
from server.registry.errors import upstream_error_response
from server.storage import BlobFetcher, Subscription
from server.store.remotes import RemoteStore
from server.sync.hosts import Hosts
from server.sync.origins import NetworkPolicy
from server.sync.session import open_session
from server.sync.upstream import Upstream

log = logging.getLogger(__name__)

JOIN_ATTEMPTS = 3
"""A pull that joined other pulls' downloads tries this often before giving up."""


class PullThrough:
    """Upstream clients per remote, kept open between pulls."""

    def __init__(
        self, remotes: RemoteStore, fetcher: BlobFetcher, hosts: Hosts, limits: Limits | None = None
    ) -> None:
        self._limits = limits or Limits()
        self._remotes = remotes
        self._fetcher = fetcher
        self._hosts = hosts
        self._clients: dict[str, tuple[datetime | None, Upstream, contextlib.AsyncExitStack]] = {}
        self._lock = asyncio.Lock()

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
        """At shutdown: close the upstream sessions (the fetcher stops its downloads)."""
        for _, _, stack in self._clients.values():
            await stack.aclose()
        self._clients.clear()

    async def serve(
        self, request: web.Request, remote: Remote, blob: Descriptor
    ) -> web.StreamResponse | None:
        """Stream `blob` from upstream to the client, storing it unless the policy is STREAMED.

        Returns None when the blob is (now) stored: the caller serves it from the store.
        """
        store = remote.policy is not Policy.STREAMED
        for _ in range(JOIN_ATTEMPTS):
            try:
                upstream = await self._upstream(remote)
                subscription = await self._fetcher.subscribe(blob, upstream, store=store)
            except MirrorError as exc:
                return upstream_error_response(exc)
            if subscription is None:
                return None
            response = await self._respond(request, blob, subscription)
            if response is not None:
                return response
        return upstream_error_response(
            UpstreamUnavailable(
                f"blob {blob.digest} could not be fetched from {upstream.host}", host=upstream.host
            )
        )

    async def _respond(
        self, request: web.Request, blob: Descriptor, subscription: Subscription
    ) -> web.StreamResponse | None:
        """Stream the subscription to the client; None when it failed before a byte went out
        and belonged to another caller's download (this one should try again itself)."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Docker-Content-Digest": str(blob.digest),
                "Docker-Distribution-API-Version": "registry/2.0",
            }
        )
        response.content_length = blob.size
        started = False
        try:
            async for chunk in subscription:
                if not started:
                    await response.prepare(request)
                    started = True
                await response.write(chunk)
        except MirrorError as exc:
            if not started:
                return None if not subscription.started else upstream_error_response(exc)
            # Bytes went out already: cut the connection so the client sees a short body.
            log.warning("pull-through of %s cut off: %s", blob.digest, exc.message)
            if request.transport is not None:
                request.transport.close()
            return response
        except (ConnectionResetError, RuntimeError):
            return response  # the client went away
        finally:
            subscription.close()
        if not started:
            await response.prepare(request)
        await response.write_eof()
        return response


def descriptor(digest: str, size: int, media_type: str) -> Descriptor:
    return Descriptor(digest=Digest.parse(digest), size=size, media_type=media_type)
