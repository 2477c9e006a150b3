"""Hand freed heap memory back to the operating system after large tasks.

A first sync of 10,000 tags builds tens of MiB of short-lived objects (the manifest graph, row
parameters, response buffers). CPython frees them, but glibc's allocator keeps most of those
pages mapped for reuse, so the process's resident size stays near its peak until it is reused:
the next phases of the benchmark started ~30 MiB above the server's idle size. `malloc_trim(0)`
returns whole free pages (also those inside the heap, via madvise) at a cost of a few
milliseconds; elsewhere (musl, macOS) it does not exist and this does nothing.
"""

from __future__ import annotations

from server import libc


def release_free_memory() -> None:
    """Return free heap pages to the OS; blocking for milliseconds (run it in a thread: ctypes
    releases the GIL for the call)."""
    trim = libc.function("malloc_trim")
    if trim is not None:
        trim(0)
