"""Connection hygiene of the registry port: caps, a header deadline, bounded idle time.

aiohttp alone keeps a connection that sent half a request header for its whole keep-alive
time (an hour by default) and accepts connections until the process runs out of file
descriptors, so a few hundred slow-loris sockets made the port unusable. Here:

- at most `http_max_connections` open connections, and `http_max_connections_per_address`
  from one client address: a connection over either cap is aborted as soon as it is accepted
  (before a byte is read), so one abusive address cannot starve the others;
- a client that started sending a request must finish its headers within
  `http_header_timeout` seconds, else the connection is closed;
- an idle connection (before its first request or between two) is closed after
  `http_keepalive_timeout` seconds (aiohttp's own keep-alive timer, which also runs before the
  first request).

Accept failures (EMFILE and friends) are counted and logged at most once per interval by
`install_accept_error_filter`, instead of a traceback per failed accept.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from server.config import Limits

log = logging.getLogger("mirror.registry")


class ConnectionGuard:
    """Counts open connections (total and per address) for one listening port."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.refused = 0
        self.timed_out = 0

    def admit(self, address: str) -> bool:
        if (
            self.open >= self.limits.http_max_connections
            or self.by_address[address] >= self.limits.http_max_connections_per_address
        ):
            self.refused += 1
            return False
        self.open += 1
        self.by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


class _GuardedHandler(RequestHandler):
    """aiohttp's request handler with the guard's admission and header deadline."""

    def __init__(self, guard: ConnectionGuard, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._address: str | None = None  # set once admitted
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._guard.admit(address):
            transport.abort()  # RST now: no buffers, no task, the descriptor is free at once
            return
        self._address = address
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._address is None:
            return  # refused in connection_made: aiohttp never saw it
        self._guard.release(self._address)
        self._address = None
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages or self._request_in_progress or self._force_close:
            self._cancel_header_timer()  # headers complete (or a body of a running request)
        elif self._header_timer is None and data:
            # Bytes of a new request arrived: its headers have a deadline from now on.
            self._header_timer = self._loop.call_later(
                self._guard.limits.http_header_timeout, self._header_deadline
            )

    def _header_deadline(self) -> None:
        self._header_timer = None
        if not self._messages and not self._request_in_progress:
            self._guard.timed_out += 1
            if self.transport is not None:
                self.transport.abort()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None


class GuardedSite(web.SockSite):
    """A SockSite whose connections go through a `ConnectionGuard`.

    The socket is bound by the caller (no SO_REUSEPORT), so a taken port fails before start.
    """

    def __init__(self, runner: web.AppRunner, sock: socket.socket, guard: ConnectionGuard):
        super().__init__(runner, sock, backlog=1024)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        # Server.__call__ builds a RequestHandler from these same keyword arguments.
        kwargs = dict(server._kwargs)  # type: ignore[attr-defined]

        def factory() -> _GuardedHandler:
            return _GuardedHandler(self.guard, server, loop=loop, **kwargs)

        self._server = await loop.create_server(factory, sock=self._sock, backlog=self._backlog)


def install_accept_error_filter(loop: asyncio.AbstractEventLoop, interval: float) -> None:
    """Count the loop's accept failures and log them at most once per `interval` seconds.

    asyncio reports each failed accept (EMFILE, ENFILE, ENOBUFS, ENOMEM) through the loop's
    exception handler with a traceback; under a descriptor flood that is a line per retry.
    """
    previous = loop.get_exception_handler()
    if getattr(previous, "counts_accept_errors", False):
        return  # installed already (one per loop)
    state = {"count": 0, "logged": 0.0}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource") or (
            "accept" in message and isinstance(context.get("exception"), OSError)
        ):
            state["count"] += 1
            now = time.monotonic()
            if now - state["logged"] >= interval:
                exc = context.get("exception")
                log.error(
                    "accepting connections failed %d time(s) in the last %.0f s: %s",
                    state["count"],
                    interval,
                    exc,
                )
                state["count"], state["logged"] = 0, now
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.counts_accept_errors = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
