"""Blob downloads shared by all syncs of the process: one in-flight download per digest.

A second sync that needs a digest already downloading waits for it instead of fetching it
again (distribution's `inflight`, regclient's `imageSeenOrWait`). If the first download fails
or its sync is cancelled, a waiter tries again itself, with its own upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from server.domain.digests import Digest
from server.domain.manifests import Descriptor
from server.storage.blobs import BlobStorage
from server.sync.upstream import Upstream


class BlobFetcher:
    """Ensures blobs are in storage, downloading each digest at most once at a time."""

    def __init__(self, storage: BlobStorage) -> None:
        self._storage = storage
        self._inflight: dict[Digest, asyncio.Future[bool]] = {}

    async def ensure(
        self, blob: Descriptor, upstream: Upstream, on_bytes: Callable[[int], None] | None = None
    ) -> bool:
        """Make sure `blob` is stored; True if this call downloaded it."""
        while True:
            if self._storage.has(blob.digest):
                return False
            pending = self._inflight.get(blob.digest)
            if pending is None:
                break
            # Wait without letting our own cancellation cancel the shared future.
            await asyncio.wait({pending})
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[blob.digest] = done
        ok = False
        try:
            await upstream.fetch_blob(blob, self._storage, on_bytes)
            ok = True
            return True
        finally:
            del self._inflight[blob.digest]
            done.set_result(ok)
