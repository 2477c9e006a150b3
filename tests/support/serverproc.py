"""A real `python -m server` process on free ports, which a test may `kill -9` and restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client.auth import aio_interceptors

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m server` with the given data dir, database and extra environment."""

    def __init__(self, data_dir: Path, database_url: str, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.database_url = database_url
        self.env = dict(env or {})
        self.grpc_port = free_port()
        self.registry_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    async def start(self, max_wait: float = 30.0) -> None:
        """Start and wait until the health check says SERVING."""
        proc = self._spawn()
        async with asyncio.timeout(max_wait):
            while not await self._serving():
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}")
                await asyncio.sleep(0.05)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = open(self.data_dir.parent / f"server-{self.starts}.log", "wb")
        env = {
            **os.environ,
            "MIRROR_DATA_DIR": str(self.data_dir),
            "MIRROR_DATABASE_URL": self.database_url,
            "MIRROR_GRPC_ADDRESS": self.target,
            "MIRROR_REGISTRY_ADDRESS": f"127.0.0.1:{self.registry_port}",
            "MIRROR_WORKERS": "2",
            **self.env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self.proc

    def channel(self) -> grpc.aio.Channel:
        """A channel to the server sending the admin token it wrote on first start."""
        token = (self.data_dir / "admin-token").read_text().strip()
        return grpc.aio.insecure_channel(self.target, interceptors=aio_interceptors(token))

    async def _serving(self) -> bool:
        try:
            async with grpc.aio.insecure_channel(self.target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.aio.AioRpcError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or the OOM killer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
