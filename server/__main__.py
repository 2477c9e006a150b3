"""`python -m server` / `mirror-server`: parse settings, configure logging, serve."""

from __future__ import annotations

import ctypes
import logging
import sys

import uvloop

from server.app import ListenError, rotate_secret_key, serve
from server.config import parse_settings
from server.registry.accesslog import QueuedLogging
from server.storage import StorageError

#: Exit status when an address cannot be listened on (taken, not local, forbidden).
EXIT_LISTEN = 3
#: mallopt parameters (glibc malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _bound_malloc() -> None:
    """Let freed blob buffers go back to the OS (glibc only; elsewhere a no-op).

    Downloads pass 1 MiB chunks between the event loop and hashing threads, and S3 part
    buffers are several MiB. glibc's adaptive mmap threshold and its per-thread arenas keep
    such freed blocks in the heap, so RSS grows with concurrency although live memory does
    not. A fixed 1 MiB threshold maps big blocks and unmaps them on free; two arenas bound
    what threads keep.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    _bound_malloc()
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.rotate_secret_key:
        uvloop.run(rotate_secret_key(settings))
        return
    try:
        # uvloop: a faster event loop for the registry endpoint and the sync's HTTP client alike.
        with QueuedLogging():
            uvloop.run(serve(settings))
    except ListenError as exc:
        # One line, no traceback: the usual cause is a second server on the same port.
        print(f"mirror-server: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_LISTEN) from None
    except StorageError as exc:
        # E.g. the bucket does not exist or the endpoint is unreachable: one line, no traceback.
        print(f"mirror-server: error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
