"""Early writeback of blobs being written (server/storage/writeback.py): the ranges queued for
the disk follow the bytes written, every EARLY_WRITEBACK_BYTES, and the real system call is
accepted by this kernel (a wrong ctypes signature would fail or crash here)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest

from server.storage import writeback
from server.storage.writeback import SYNC_FILE_RANGE_WRITE, EarlyWriteback

MIB = 1024 * 1024


def test_ranges_follow_the_bytes_written(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int, int]] = []
    monkeypatch.setattr(writeback, "_sync_file_range", lambda: lambda *a: calls.append(a) or 0)
    early = EarlyWriteback(fd=7, start=3 * MIB)  # an upload continued at 3 MiB
    for end in (5 * MIB, 11 * MIB - 1, 11 * MIB, 12 * MIB, 30 * MIB):
        early.wrote(end)
    assert calls == [
        (7, 3 * MIB, 8 * MIB, SYNC_FILE_RANGE_WRITE),
        (7, 11 * MIB, 19 * MIB, SYNC_FILE_RANGE_WRITE),
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_the_real_call_is_accepted(tmp_path: Path) -> None:
    call = writeback._sync_file_range()
    assert call is not None
    path = tmp_path / "blob"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"x" * (2 * MIB))
        assert call(fd, 0, 2 * MIB, SYNC_FILE_RANGE_WRITE) == 0, ctypes.get_errno()  # type: ignore[operator]
    finally:
        os.close(fd)
    assert path.stat().st_size == 2 * MIB
