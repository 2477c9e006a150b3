"""A throwaway PostgreSQL cluster a test owns, so it may stop and start it at will.

The machine's shared server (5432) is never touched: the cluster is `initdb`'d into a temp
dir (as user `postgres` via runuser when the tests run as root, as scripts/with-postgres.sh
does), listens on a free loopback port that stays the same across restarts, and is stopped
and deleted at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable_reason() -> str:
    """Why a throwaway cluster cannot run here ("" when it can)."""
    if _bindir() is None:
        return "no initdb/pg_ctl (run scripts/test-deps.sh)"
    if os.getuid() == 0:
        try:
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            return "running as root without a 'postgres' user to own the cluster"
    return ""


class ThrowawayPostgres:
    """initdb + pg_ctl start/stop on a fixed port; `url` is a SQLAlchemy asyncpg URL."""

    def __init__(self) -> None:
        bindir = _bindir()
        assert bindir is not None, unavailable_reason()
        self._bin = bindir
        self._as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        self.dir = Path(tempfile.mkdtemp(prefix="mirror-pgfault-", dir="/tmp"))
        self.dir.chmod(0o755)
        (self.dir / "sock").mkdir()
        self.port = _free_port()
        self.running = False
        if self._as_pg:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir / "sock", "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_pg, str(self._bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir / 'sock'} -c fsync=off"
        )
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "30", "-o", options, "start")  # fmt: skip
        self.running = True

    def stop(self) -> None:
        """A fast shutdown: connected sessions are terminated, as in a real restart."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        if self.running:
            try:
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
            except subprocess.SubprocessError:
                pass
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)
