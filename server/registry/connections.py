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

Accept failures (EMFILE and friends) are counted and logged at most once per interval
instead of a traceback per failed accept, and the caps are fitted to the process's
file-descriptor limit at start (`fit_to_descriptors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import math
import resource
import socket
import ssl
import struct
import time
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from server.config import Limits

log = logging.getLogger("mirror.registry")


class ConnectionGuard:
    """Counts open connections (total and per address) of one listening port, and its
    accept failures (logged at most once per `accept_error_log_interval`)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.refused = 0
        self.timed_out = 0
        self.accept_errors = 0
        self._unlogged = 0
        self._logged_at = -math.inf

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

    def accept_failed(self, exc: OSError) -> None:
        self.accept_errors += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= self.limits.accept_error_log_interval:
            log.error(
                "accepting registry connections failed %d time(s) since the last report: %s",
                self._unlogged,
                exc,
            )
            self._unlogged, self._logged_at = 0, now


class _GuardedHandler(RequestHandler):
    """aiohttp's request handler, released from the guard when closed, with a header
    deadline."""

    def __init__(
        self, guard: ConnectionGuard, address: str, manager: web.Server, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._address: str | None = address
        self._header_timer: asyncio.TimerHandle | None = None

    def release(self) -> None:
        if self._address is not None:
            self._guard.release(self._address)
            self._address = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.release()
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


# Accept failures that mean "out of a resource, try again shortly".
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_RETRY_DELAY = 0.1


class GuardedSite(web.BaseSite):
    """A listening socket with its own accept loop, admitting through a guard.

    The socket is bound by the caller (no SO_REUSEPORT), so a taken port fails before start.
    asyncio's accept loop answers an exhausted descriptor table by retrying up to `backlog`
    times per wake-up, reporting each failure with a traceback and scheduling a restart for
    each (a log flood that also starves the loop). Here one accept runs at a time: a
    connection over a cap is reset before aiohttp sees it, and an accept failure is counted,
    logged at most once per interval, and retried after a short pause.
    """

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        guard: ConnectionGuard,
        ssl_context: ssl.SSLContext | None = None,
    ):
        super().__init__(runner, ssl_context=ssl_context)
        self.guard = guard
        self._sock = sock
        self._accepting: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        self._sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self._accepting = asyncio.create_task(self._accept_loop(loop, self._sock))

    async def _accept_loop(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        server = self._runner.server
        assert server is not None
        # Server.__call__ builds a RequestHandler from these same keyword arguments.
        kwargs = dict(server._kwargs)  # type: ignore[attr-defined]
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    continue  # e.g. ECONNABORTED: that client is gone already
                self.guard.accept_failed(exc)
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            address = str(peer[0]) if isinstance(peer, tuple) else "?"
            if not self.guard.admit(address):
                # RST at once: no buffers, no task, and the descriptor is free again.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            handler = _GuardedHandler(self.guard, address, server, loop=loop, **kwargs)
            try:
                await loop.connect_accepted_socket(lambda h=handler: h, conn, ssl=self._ssl_context)
            except OSError:
                handler.release()
                conn.close()

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
        self._sock.close()
        await super().stop()


def fit_to_descriptors(limits: Limits) -> Limits:
    """Limits whose connection caps fit the process's file-descriptor limit.

    The soft limit is first raised to the hard one (what Go's runtime does at start). Each
    port may then hold at most a third of what remains after a reserve for the database,
    blob files and upstream connections, and one address at most a fifth of its port's
    share, so an exhausted descriptor table cannot lock out other clients.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return limits
    share = max(16, (soft - DESCRIPTOR_RESERVE) // 3)
    if limits.http_max_connections <= share and limits.grpc_max_connections <= share:
        return limits
    fitted = dataclasses.replace(
        limits,
        http_max_connections=min(limits.http_max_connections, share),
        http_max_connections_per_address=min(
            limits.http_max_connections_per_address, max(1, share // 5)
        ),
        grpc_max_connections=min(limits.grpc_max_connections, share),
    )
    log.warning(
        "file-descriptor limit %d: connection caps lowered to %d (registry, %d per address) "
        "and %d (gRPC)",
        soft,
        fitted.http_max_connections,
        fitted.http_max_connections_per_address,
        fitted.grpc_max_connections,
    )
    return fitted


DESCRIPTOR_RESERVE = 128
