"""A slow-client driver: many connections that send part of a request and then stall.

``async with SlowClients("127.0.0.1", port, count=500, payload=b"GET /v2/ HTTP/1.1\\r\\n")``
opens ``count`` TCP connections (from ``source``, another loopback address by default, so the
server under test sees an abusive address distinct from the test's normal client), writes
``payload`` on each (half a request header, or half an HTTP/2 preface) and holds them open.
``closed()`` counts the connections the server has closed (EOF or reset) so a test can assert
the refusal; everything is closed on exit. Only loopback addresses are ever targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType
from typing import Self

__all__ = ["SlowClients"]


class SlowClients:
    """`count` stalled connections to `host:port` (loopback only)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        count: int,
        payload: bytes,
        source: str = "127.0.0.2",
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("the slow-client driver only targets loopback addresses")
        self.host, self.port, self.count = host, port, count
        self.payload, self.source = payload, source
        self.opened = 0
        self.refused_at_connect = 0
        self._readers: list[asyncio.StreamReader] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._closed = 0

    async def __aenter__(self) -> Self:
        for _ in range(self.count):
            try:
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, local_addr=(self.source, 0)
                )
            except OSError:
                self.refused_at_connect += 1
                continue
            with contextlib.suppress(OSError):
                writer.write(self.payload)
            self.opened += 1
            self._readers.append(reader)
            self._writers.append(writer)
            self._watchers.append(asyncio.create_task(self._watch(reader)))
        await asyncio.sleep(0)
        return self

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """Counts the connection as closed once the server ends it."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.read(65536):
                pass
        self._closed += 1

    def closed(self) -> int:
        """Connections the server has closed so far (plus those refused at connect)."""
        return self._closed + self.refused_at_connect

    async def wait_closed(self, seconds: float) -> int:
        """Wait until the server closed every connection, or `seconds`; return `closed()`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.gather(*self._watchers, return_exceptions=True)
        return self.closed()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for writer in self._writers:
            sock = writer.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            writer.close()
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
