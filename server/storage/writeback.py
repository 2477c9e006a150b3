"""Start writing a file's dirty pages to disk early, so the final fsync has little left to wait for.

With `--storage-durability full` every blob is fsynced before it is published. Written first
to the page cache and flushed only at the end, a 50 MiB layer made its upload (or download)
wait for all 50 MiB to reach the disk after the last byte arrived; docker-registry, which never
fsyncs, does not pay that. Linux's `sync_file_range(SYNC_FILE_RANGE_WRITE)` queues the
written range for writeback without waiting for it, so the disk works while the network still
delivers; the fsync at the end (unchanged, still the durability guarantee) then waits only for
the tail. Where the call does not exist (not Linux, not glibc) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from server import libc

SYNC_FILE_RANGE_WRITE = 2
EARLY_WRITEBACK_BYTES = 8 * 1024 * 1024
"""Written bytes between two writeback kicks."""


@functools.cache
def _sync_file_range() -> Any | None:
    call = libc.function("sync_file_range")
    if call is not None:
        call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        call.restype = ctypes.c_int
    return call


class EarlyWriteback:
    """Tracks bytes appended to one file and queues them for writeback every
    EARLY_WRITEBACK_BYTES; call `wrote` from the thread that writes."""

    def __init__(self, fd: int, start: int = 0) -> None:
        self._fd = fd
        self._flushed_to = start

    def wrote(self, end: int) -> None:
        """The file now holds bytes up to offset `end`."""
        if end - self._flushed_to < EARLY_WRITEBACK_BYTES:
            return
        call = _sync_file_range()
        if call is not None:
            call(self._fd, self._flushed_to, end - self._flushed_to, SYNC_FILE_RANGE_WRITE)
        self._flushed_to = end
