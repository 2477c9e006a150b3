"""Python client of the mirror service (``mirror.v1``) and the ``mirrorctl`` CLI.

:class:`AsyncMirrorClient` speaks ``grpc.aio``; :class:`MirrorClient` is its blocking twin,
generated from it (``scripts/unasync_client.py``).
Both raise :class:`MirrorClientError` for every failed call.
"""

from .client import AsyncMirrorClient
from .errors import MirrorClientError
from .sync_client import MirrorClient
from .transport import DEFAULT_TARGET, AsyncResponseStream, ResponseStream

__all__ = [
    "DEFAULT_TARGET",
    "AsyncMirrorClient",
    "AsyncResponseStream",
    "MirrorClient",
    "MirrorClientError",
    "ResponseStream",
]
