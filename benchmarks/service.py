"""The service under test: a real ``python -m server`` process, driven over its gRPC API.

:class:`ServerProcess` starts the server on free loopback ports with a fresh data directory
(and, for PostgreSQL, a fresh database from :class:`PostgresDatabase`), waits for the gRPC
channel, creates a repository and a remote, and runs one sync per :meth:`ServerProcess.sync`
call through the streaming ``SyncService/Sync`` RPC. A phase's wall time is the RPC's: from the
request until the FINISHED event. Its peak RSS is VmHWM of the server, reset to the current RSS
(``/proc/<pid>/clear_refs``) when the phase starts; its CPU time comes from ``/proc/<pid>/stat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import grpc
from google.protobuf import field_mask_pb2

from benchmarks.common import (
    PYTHON,
    REPO_ROOT,
    proc_cpu_seconds,
    proc_status_kib,
    reset_peak_rss,
    tail,
)
from client.auth import aio_interceptors
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.support.registry import free_port

STARTUP_TIMEOUT = 90.0
SYNC_TIMEOUT = 3600.0


class BenchmarkError(RuntimeError):
    """A measurement could not be taken (a sync failed, a process would not start, ...)."""


class PostgresDatabase:
    """A fresh database on the server named by an admin URL (``MIRROR_TEST_POSTGRES_URL``)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"mirror_bench_{uuid.uuid4().hex[:12]}"

    @staticmethod
    def _dsn(url: str) -> str:
        scheme, rest = url.split("://", 1)
        return "postgresql://" + rest if scheme.startswith("postgresql") else url

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the fresh database (same driver as the admin URL)."""
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + self.name))

    async def _execute(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._dsn(self.admin_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> str:
        await self._execute(f'CREATE DATABASE "{self.name}"')
        return self.url

    async def drop(self) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


async def postgres_version(admin_url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(PostgresDatabase._dsn(admin_url))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def find_py_spy() -> str | None:
    """py-spy next to the running interpreter (the venv) or on PATH."""
    beside = Path(PYTHON).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


class Profiler:
    """``py-spy record`` of one process for one phase, as collapsed stacks (``--format raw``)."""

    def __init__(self, py_spy: str, pid: int, output: Path) -> None:
        self.output = output
        self._log = output.with_suffix(".log")
        argv = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
        argv += ["--nonblocking", "-o", str(output)]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def stop(self) -> Path | None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self._proc.wait, 30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await asyncio.to_thread(self._proc.wait)
        return self.output if self.output.exists() else None


class ServerProcess:
    """One server process with its own data directory (and database URL, if any)."""

    def __init__(
        self, workdir: Path, database_url: str | None = None, extra_args: list[str] | None = None
    ) -> None:
        self.workdir = workdir
        self.extra_args = list(extra_args or [])
        self.data_dir = workdir / "data"
        self.log_path = workdir / "server.log"
        self.database_url = database_url
        self.grpc_port = free_port()
        self.registry_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.aio.Channel | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [PYTHON, "-m", "server", "--grpc-address", self.target]
        argv += ["--registry-address", f"127.0.0.1:{self.registry_port}"]
        argv += ["--data-dir", str(self.data_dir)]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        argv += self.extra_args
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")}
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    async def start(self) -> None:
        self._proc = self._spawn()
        self._channel = grpc.aio.insecure_channel(self.target)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise BenchmarkError(f"server exited at start:\n{tail(self.log_path)}")
            try:
                await asyncio.wait_for(self._channel.channel_ready(), 0.5)
                # Access control is on, as shipped: call with the admin token the server
                # wrote on first start.
                token = (self.data_dir / "admin-token").read_text().strip()
                await self._channel.close()
                self._channel = grpc.aio.insecure_channel(
                    self.target, interceptors=aio_interceptors(token)
                )
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"server did not listen on {self.target}:\n{tail(self.log_path)}"
                    ) from None

    async def stop(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    async def setup(self, repo_id: str, remote_id: str, url: str, upstream_name: str) -> None:
        """Create the repository and a remote (immediate policy, default concurrency)."""
        assert self._channel is not None
        repos = pb_grpc.RepositoryServiceStub(self._channel)
        remotes = pb_grpc.RemoteServiceStub(self._channel)
        await repos.CreateRepository(pb.CreateRepositoryRequest(repository_id=repo_id))
        remote = pb.Remote(url=url, upstream_name=upstream_name, policy=pb.POLICY_IMMEDIATE)
        await remotes.CreateRemote(pb.CreateRemoteRequest(remote_id=remote_id, remote=remote))

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    async def publish(self, distribution_id: str, repo_id: str, base_path: str) -> None:
        """A distribution serving the repository's latest version at ``base_path``."""
        assert self._channel is not None
        distributions = pb_grpc.DistributionServiceStub(self._channel)
        # Public: the pull tools of the benchmark are anonymous clients.
        distribution = pb.Distribution(
            base_path=base_path, repository=f"repositories/{repo_id}", public=True
        )
        await distributions.CreateDistribution(
            pb.CreateDistributionRequest(distribution_id=distribution_id, distribution=distribution)
        )

    async def set_public(self, distribution_id: str, public: bool) -> None:
        """Make a distribution public (anonymous pulls) or private (bearer token needed)."""
        assert self._channel is not None
        await pb_grpc.DistributionServiceStub(self._channel).UpdateDistribution(
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(
                    name=f"distributions/{distribution_id}", public=public
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["public"]),
            )
        )

    async def create_puller(self, repo_ids: list[str]) -> tuple[str, str]:
        """A principal with only a viewer grant on `repo_ids` and an API token of its own, as
        a team's CI runner would have -> (principal, secret)."""
        assert self._channel is not None
        access = pb_grpc.AccessServiceStub(self._channel)
        principal = "bench-puller"
        await access.CreatePrincipal(
            pb.CreatePrincipalRequest(principal_id=principal, principal=pb.Principal())
        )
        for repo_id in repo_ids:
            await access.CreateGrant(
                pb.CreateGrantRequest(
                    parent=f"principals/{principal}",
                    grant=pb.Grant(repository=f"repositories/{repo_id}", role=pb.ROLE_VIEWER),
                )
            )
        created = await access.CreateToken(
            pb.CreateTokenRequest(parent=f"principals/{principal}", token=pb.Token())
        )
        return principal, created.secret

    async def login(self, principal: str, secret: str, names: list[str]) -> str:
        """A bearer token as docker or podman get one: `GET /token` with Basic credentials
        for pull scopes on `names`; every later request carries the JWT it answers."""
        scopes = [("scope", f"repository:{name}:pull") for name in names]
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.registry_url}/token",
                params=[("service", "mirror"), *scopes],
                auth=aiohttp.BasicAuth(principal, secret),
            ) as resp,
        ):
            resp.raise_for_status()
            token: str = (await resp.json())["token"]
        return token

    async def sync(
        self, repo_id: str, remote_id: str, profile: Path | None = None, py_spy: str | None = None
    ) -> dict[str, Any]:
        """One mirror sync through ``SyncService/Sync``; its measurements and outcome."""
        assert self._channel is not None
        sync = pb_grpc.SyncServiceStub(self._channel)
        versions = pb_grpc.VersionServiceStub(self._channel)
        request = pb.SyncRequest(
            repository=f"repositories/{repo_id}", remote=f"remotes/{remote_id}", mirror=True
        )
        profiler = Profiler(py_spy, self.pid, profile) if profile and py_spy else None
        rss_reset = reset_peak_rss(self.pid)
        cpu_before = proc_cpu_seconds(self.pid)
        events: Counter[str] = Counter()
        last: pb.SyncResponse | None = None
        stages: dict[str, list[float | None]] = {}  # code -> [first seen, finished] (s)
        running_at: float | None = None
        done_states = (pb.PROGRESS_STATE_COMPLETED, pb.PROGRESS_STATE_SKIPPED)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(SYNC_TIMEOUT):
                async for event in sync.Sync(request):
                    now = time.perf_counter() - started
                    events[pb.TaskEventKind.Name(event.kind)] += 1
                    last = event
                    if running_at is None and event.task.state == pb.TASK_STATE_RUNNING:
                        running_at = now
                    for stage in event.task.progress_reports:
                        span = stages.setdefault(stage.code, [now, None])
                        if span[1] is None and stage.state in done_states:
                            span[1] = now
        except grpc.aio.AioRpcError as err:
            raise BenchmarkError(
                f"Sync RPC failed: {err.code().name}: {err.details()}\n{tail(self.log_path)}"
            ) from None
        wall = time.perf_counter() - started
        cpu_after = proc_cpu_seconds(self.pid)
        hwm = proc_status_kib(self.pid, "VmHWM")
        profiled = await profiler.stop() if profiler is not None else None
        if last is None or last.task.state != pb.TASK_STATE_COMPLETED:
            task = last.task if last is not None else pb.Task()
            raise BenchmarkError(
                f"sync ended {pb.TaskState.Name(task.state)}: {task.error.code} "
                f"{task.error.reason} {task.error.message}\n{tail(self.log_path)}"
            )
        latest = (
            await versions.GetVersion(
                pb.GetVersionRequest(name=f"repositories/{repo_id}/versions/latest")
            )
        ).version
        summary = latest.content_summary
        return {
            "wall": wall,
            "cpu": (cpu_after - cpu_before)
            if cpu_before is not None and cpu_after is not None
            else None,
            "peak_rss_mib": hwm / 1024 if hwm is not None else None,
            "detail": {
                "peak_rss_scope": "phase" if rss_reset else "process lifetime",
                "version": latest.number,
                "created": list(last.task.created_resources),
                "present": dict(summary.present),
                "added": dict(summary.added),
                "removed": dict(summary.removed),
                "warnings": list(last.task.warnings),
                "events": dict(events),
                # Seen by the client: when the task ran, and each stage's first/finished event.
                "running_at": running_at,
                "stages": stages,
                "profile": str(profiled) if profiled else None,
            },
        }


@contextlib.asynccontextmanager
async def running_server(
    workdir: Path, database_url: str | None, extra_args: list[str] | None = None
) -> AsyncIterator[ServerProcess]:
    """A started server that is stopped (by its pid) when the block ends."""
    server = ServerProcess(workdir, database_url, extra_args)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
