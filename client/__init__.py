"""Python client of the mirror service (``mirror.v1``) and the ``mirrorctl`` CLI.

:class:`AsyncMirrorClient` speaks ``grpc.aio``; :class:`MirrorClient` is its blocking twin.
Both raise :class:`MirrorClientError` for every failed call.
"""

from .client import AsyncMirrorClient, AsyncResponseStream
from .errors import MirrorClientError
from .sync_client import DEFAULT_TARGET, MirrorClient, ResponseStream

__all__ = [
    "DEFAULT_TARGET",
    "AsyncMirrorClient",
    "AsyncResponseStream",
    "MirrorClient",
    "MirrorClientError",
    "ResponseStream",
]
