"""release_free_memory gives freed heap pages back: resident size drops after a burst of
allocations is freed, as it does after a large sync."""

from __future__ import annotations

import pytest

from server import libc
from server.memory import release_free_memory


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(libc.function("malloc_trim") is None, reason="glibc only")
def test_freed_heap_goes_back_to_the_os() -> None:
    # 60 MiB of 16 KiB buffers (below glibc's mmap threshold, so they live in the heap), with a
    # small survivor after each: the heap top never becomes free, so only trimming can return
    # the pages in between.
    buffers = []
    survivors = []
    for i in range(60 * 64):
        buffers.append(bytearray(16 * 1024))
        survivors.append(bytearray(64 + i % 7))
    del buffers
    before = _rss_kib()
    release_free_memory()
    after = _rss_kib()
    assert before - after > 30 * 1024, (before, after)
    assert len(survivors) == 60 * 64
