"""Who is this server process, and is another one (on this host) still alive?

A worker id names the host, the PID namespace and the PID of its process, plus a random
suffix. A process on the same host and in the same PID namespace can then tell for certain
that a worker is gone (`kill -9`, a crash, a reboot) instead of waiting for its heartbeat to
go stale: its tasks are failed and its temporary uploads cleaned at the next start, at once,
on PostgreSQL as on SQLite. Workers on other hosts are judged by their heartbeat only.
"""

from __future__ import annotations

import os
import socket
import uuid

HOST_CHARS = 30  # keeps a worker id within the 64 characters of its column


def _pid_namespace() -> str:
    try:
        # "pid:[4026531836]": two containers may share a hostname, never a PID namespace.
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "-"


def _here() -> tuple[str, str]:
    return socket.gethostname()[:HOST_CHARS], _pid_namespace()


def new_worker_id() -> str:
    """`host:pid:pidns:random` for this process."""
    host, namespace = _here()
    return f"{host}:{os.getpid()}:{namespace}:{uuid.uuid4().hex[:8]}"


def is_dead_here(worker_id: str, me: str) -> bool:
    """True when `worker_id` is a process of this host and PID namespace that no longer
    runs. False when it runs, or lives elsewhere (then only its heartbeat can tell)."""
    if worker_id == me:
        return False
    parts = worker_id.rsplit(":", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    host, pid, namespace, _ = parts
    if (host, namespace) != _here() or namespace == "-":
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    # The PID runs: the worker, or an unrelated process that reused the PID. Either way
    # "not provably dead": its heartbeat decides (this process's own runners included).
    return False
