"""What differs between the asyncio and the blocking client: channels and response streams.

:mod:`client.client` (asyncio, written by hand) and :mod:`client.sync_client` (generated from
it by ``scripts/unasync_client.py``) share every RPC wrapper; the few places where
``grpc.aio`` and grpc's blocking API really differ live here, once per flavour, under names
the generator maps onto each other (``open_aio_channel`` -> ``open_channel``,
``AsyncResponseStream`` -> ``ResponseStream``, ``AioChannel`` -> ``Channel``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc
import grpc.aio
from grpc import Channel
from grpc.aio import Channel as AioChannel

from . import auth
from .errors import MirrorClientError

__all__ = [
    "DEFAULT_TARGET",
    "AioChannel",
    "AsyncResponseStream",
    "Channel",
    "ResponseStream",
    "open_aio_channel",
    "open_channel",
]

#: Where the service listens by default.
DEFAULT_TARGET = "127.0.0.1:50051"

T = TypeVar("T")


def open_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]] | None,
    token: str | None = None,
) -> Channel:
    """A blocking channel: TLS with `credentials`, plaintext without; every call carries
    `token` as `authorization: Bearer` metadata when given."""
    if credentials is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        channel = grpc.secure_channel(target, credentials, options=options)
    return auth.sync_interceptor(channel, token)


def open_aio_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]] | None,
    token: str | None = None,
) -> AioChannel:
    """An asyncio channel (bound to the running loop): TLS with `credentials`, plaintext without;
    every call carries `token` as `authorization: Bearer` metadata when given."""
    interceptors = auth.aio_interceptors(token)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)


class ResponseStream(Generic[T]):
    """An iterator over the responses of a server-streaming call.

    The call starts when the stream is created; iterate to read events, call
    :meth:`cancel` (or leave a ``with`` block) to stop early. gRPC errors surface as
    :class:`MirrorClientError`; after :meth:`cancel` the stream simply ends.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> Self:
        """Return the stream itself."""
        return self

    def __next__(self) -> T:
        """Return the next response."""
        if self._cancelled:
            raise StopIteration
        try:
            return next(self._call)
        except grpc.RpcError as err:
            if self._cancelled:  # the blocking API reports a local cancel as an RpcError
                raise StopIteration from None
            raise MirrorClientError.from_rpc_error(err) from None

    def cancel(self) -> None:
        """Cancel the call (the server sees the client go away); the stream then ends."""
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> Self:
        """Enter a block that cancels the call on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel the call (a no-op once it has ended)."""
        self.cancel()


class AsyncResponseStream(Generic[T]):
    """An async iterator over the responses of a server-streaming call.

    The call starts when the stream is created; ``async for`` reads events, :meth:`cancel`
    (or leaving an ``async with`` block) stops early. gRPC errors surface as
    :class:`MirrorClientError`; after :meth:`cancel` the stream simply ends.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._responses: AsyncIterator[T] | None = None
        self._cancelled = False

    def __aiter__(self) -> Self:
        """Return the stream itself."""
        return self

    async def __anext__(self) -> T:
        """Return the next response."""
        if self._cancelled:
            raise StopAsyncIteration
        if self._responses is None:
            self._responses = self._call.__aiter__()
        try:
            return await self._responses.__anext__()
        except grpc.RpcError as err:
            raise MirrorClientError.from_rpc_error(err) from None
        except asyncio.CancelledError:
            if self._cancelled:  # grpc.aio reports a local cancel as CancelledError
                raise StopAsyncIteration from None
            raise

    def cancel(self) -> None:
        """Cancel the call (the server sees the client go away); the stream then ends."""
        self._cancelled = True
        self._call.cancel()

    async def __aenter__(self) -> Self:
        """Enter a block that cancels the call on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel the call (a no-op once it has ended)."""
        self.cancel()
