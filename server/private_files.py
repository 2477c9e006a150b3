"""Files and directories only the server's user may read, whatever the umask.

The data directory (0700), the SQLite database (0600; SQLite gives its -wal and -shm files the
database file's mode), the admin token, the registry signing key and the secrets key (0600).
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` (and parents) if missing; a directory this call creates is 0700."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def touch_private(path: Path) -> None:
    """Create an empty 0600 file unless it exists (so whoever fills it inherits the mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, FILE_MODE)
    os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a 0600 file atomically (temp file + rename in the same directory)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is masked by the umask; this is not
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_or_create(path: Path, make: bytes) -> bytes:
    """The file's bytes; when it does not exist, create it 0600 holding `make` first.
    Concurrent starters (processes sharing a data dir) agree on the first writer's bytes."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, make)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created it meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()
