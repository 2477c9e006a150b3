"""Zero-copy bodies for filesystem blobs: `os.sendfile` from a bounded set of threads.

aiohttp's `FileResponse` hands its body to `loop.sendfile`, which uvloop does not implement;
it then falls back to reading 256 KiB chunks in the default executor and writing each
through the transport (a thread hop, two copies and a drain per chunk). Large layers went
out at 0.8x of `docker-registry`'s rate that way.

`FileSender.send` instead runs a loop of non-blocking `os.sendfile` calls in one of
`threads` worker threads, waiting with `poll` while the client's socket is full:

- the thread works on *duplicates* of the socket and file descriptors, so neither number can
  be closed and reused under it (the transport may close its socket when the client goes,
  the response closes its file when the handler ends or is cancelled);
- a cancelled send (server shutdown, handler cancelled) stops the thread at its next step;
- a client that accepts no byte for `stall_timeout` seconds is cut off, as a slow-loris
  reader must be (the thread is not held forever);
- when every thread is busy the response takes aiohttp's chunked path instead of queueing,
  so clients that stop reading cannot delay anyone else's download.

TLS connections, compressed responses and HEAD requests never reach this path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

# How long one poll() waits before the thread looks at its stop flag and the stall clock.
_POLL_MS = 250


class SendStalled(ConnectionResetError):
    """The client accepted no byte for the stall timeout; its connection is cut off."""


class FileSender:
    """Sends file ranges to sockets from at most `threads` threads at once."""

    def __init__(self, threads: int, stall_timeout: float) -> None:
        self.threads = threads
        self.stall_timeout = stall_timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sendfile")
        self.busy = 0
        self.fell_back = 0
        """Responses that found every thread busy and took the chunked path (a metric)."""

    def available(self) -> bool:
        return self.busy < self.threads

    async def send(self, sock_fd: int, file_fd: int, offset: int, count: int) -> None:
        """Send `count` bytes of `file_fd` from `offset` to the socket; raises
        ConnectionResetError when the client goes away or stalls."""
        out_fd, in_fd = os.dup(sock_fd), os.dup(file_fd)
        stop = threading.Event()
        self.busy += 1
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                self._executor, _pump, out_fd, in_fd, offset, count, self.stall_timeout, stop
            )
        except BaseException:
            stop.set()  # a cancelled await leaves the thread running: it stops at its next step
            raise
        finally:
            self.busy -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _pump(
    out_fd: int,
    in_fd: int,
    offset: int,
    count: int,
    stall_timeout: float,
    stop: threading.Event,
) -> None:
    """The thread's loop; closes both (duplicated) descriptors whatever happens."""
    try:
        poller = select.poll()
        poller.register(out_fd, select.POLLOUT)
        progressed = time.monotonic()
        while count > 0:
            if stop.is_set():
                raise ConnectionResetError("send canceled")
            try:
                sent = os.sendfile(out_fd, in_fd, offset, count)
            except (BlockingIOError, InterruptedError):
                if time.monotonic() - progressed > stall_timeout:
                    raise SendStalled(f"client accepted no bytes for {stall_timeout:g} s") from None
                poller.poll(_POLL_MS)
                continue
            if sent == 0:
                # The file ended before the length the headers announced: the blob shrank
                # under us. Cutting the connection is the only honest answer left.
                raise ConnectionResetError("blob file shorter than its recorded size")
            offset += sent
            count -= sent
            progressed = time.monotonic()
    finally:
        os.close(out_fd)
        os.close(in_fd)


class SendfileResponse(web.FileResponse):
    """A FileResponse whose body goes out through a `FileSender` (Range, conditional
    requests and validators stay aiohttp's)."""

    def __init__(self, path: Path, sender: FileSender | None, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._sender = sender

    async def _sendfile(
        self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        if self._sender is None:
            return await super()._sendfile(request, fobj, offset, count)
        writer = await web.StreamResponse.prepare(self, request)  # the headers go out now
        assert writer is not None
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        sock = transport.get_extra_info("socket")
        if (
            count <= 0
            or self.compression
            or sock is None
            or transport.get_extra_info("sslcontext") is not None
        ):
            return await self._sendfile_fallback(writer, fobj, offset, count)
        if not self._sender.available():
            self._sender.fell_back += 1
            return await self._sendfile_fallback(writer, fobj, offset, count)
        await writer.drain()
        if transport.get_write_buffer_size():
            # Headers still queued in the transport: bytes written beside it would overtake
            # them. Rare (a full socket right at the start); the chunked path keeps order.
            return await self._sendfile_fallback(writer, fobj, offset, count)
        try:
            await self._sender.send(sock.fileno(), fobj.fileno(), offset, count)
        except OSError as exc:  # EPIPE, ECONNRESET, a stall...: the body is cut off
            with contextlib.suppress(Exception):
                transport.abort()  # what reached the client is a cut-off body: say so
            if isinstance(exc, ConnectionResetError):
                raise
            raise ConnectionResetError(str(exc)) from exc
        await super().write_eof()
        return writer
