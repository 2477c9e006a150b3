"""Small helpers shared by the benchmark modules: paths, processes, /proc readings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MIB = 1024 * 1024

REQUEST_KINDS = ("tag_list", "manifest_head", "manifest_get", "blob_head", "blob_get", "other")
"""Upstream request kinds counted from the registry access log, in table order."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


def classify(method: str, path: str) -> str:
    """The request kind of ``method path`` (path may carry a query)."""
    path = path.split("?", 1)[0]
    method = method.upper()
    if path.endswith("/tags/list"):
        return "tag_list"
    if "/manifests/" in path:
        if method == "HEAD":
            return "manifest_head"
        if method == "GET":
            return "manifest_get"
    if "/blobs/" in path and "/blobs/uploads" not in path:
        if method == "HEAD":
            return "blob_head"
        if method == "GET":
            return "blob_get"
    return "other"


def proc_status_kib(pid: int, field: str) -> int | None:
    """A ``VmXXX`` field of /proc/<pid>/status in KiB, or None when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM of ``pid`` to its current RSS (``echo 5 > clear_refs``); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def cpu_times() -> tuple[int, int]:
    """``(idle, total)`` jiffies of the whole machine so far (first line of /proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return values[3] + values[4], sum(values[:8])  # idle + iowait; user..steal


def busy_seconds(before: tuple[int, int], after: tuple[int, int]) -> float:
    """CPU seconds the whole machine spent busy between two :func:`cpu_times`."""
    busy = (after[1] - after[0]) - (before[1] - before[0])
    return busy / os.sysconf("SC_CLK_TCK")


def idle_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of the machine's CPU time that was idle between two :func:`cpu_times`."""
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else None


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How a child process ended and what it cost (from ``wait4``)."""

    returncode: int
    wall: float
    cpu: float
    peak_rss_mib: float | None


def _cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [a.decode(errors="replace") for a in handle.read().split(b"\0")[:-1]]
    except OSError:
        return None


def _run_wait4(argv: Sequence[str], cwd: Path, stdout: Path, stderr: Path) -> ProcessResult:
    """Run ``argv``; peak RSS is the child's own VmHWM, sampled every 20 ms after its exec.

    (``wait4``'s ``ru_maxrss`` cannot be used: Linux keeps in it the high-water mark of the
    forked copy of this process, from before the exec.)
    """
    argv = list(argv)
    peak_kib = 0
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if _cmdline(proc.pid) == argv:  # exec'd: /proc shows the child's own memory
                    peak_kib = max(peak_kib, proc_status_kib(proc.pid, "VmHWM") or 0)
                time.sleep(0.02)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            raise
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return ProcessResult(
        returncode=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=peak_kib / 1024 if peak_kib else None,
    )


async def run_measured(
    argv: Sequence[str], *, cwd: Path, stdout: Path, stderr: Path
) -> ProcessResult:
    """Run a child to its end in a worker thread: its wall, CPU (``wait4``) and peak RSS."""
    return await asyncio.to_thread(_run_wait4, argv, cwd, stdout, stderr)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a text file ("" if missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def flush_disks() -> None:
    """``sync``: write back dirty pages so one measurement's writes do not slow the next."""
    await asyncio.to_thread(os.sync)


def command_output(argv: Sequence[str]) -> str:
    """First line of a command's output, or "" when it cannot run."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""
