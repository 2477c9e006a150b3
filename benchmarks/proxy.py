"""A counting reverse proxy in front of the registry, in a process of its own.

``python -m benchmarks.proxy --upstream URL --port P --control-port C`` runs
:class:`~tests.support.faultproxy.FaultProxy` (no faults scripted) on ``127.0.0.1:P`` and counts
every request by kind (tag list, manifest HEAD/GET, blob HEAD/GET, other) with the response
body bytes relayed. A control endpoint on ``127.0.0.1:C`` answers ``GET /stats`` and
``POST /reset``. A process of its own keeps the proxy's event loop off the benchmark driver and
off whatever the driver measures in-process.

:class:`ProxyProcess` starts and stops it from the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.common import PYTHON, REPO_ROOT, REQUEST_KINDS, classify, tail
from tests.support.faultproxy import FaultProxy
from tests.support.registry import free_port


class CountingProxy(FaultProxy):
    """FaultProxy that also counts requests, statuses and body bytes by request kind."""

    def __init__(self, upstream_url: str, *, port: int | None = None) -> None:
        super().__init__(upstream_url, port=port)
        self.counts: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, int] = defaultdict(int)
        self.other_samples: list[str] = []

    def reset_counts(self) -> None:
        self.counts.clear()
        self.bytes.clear()
        self.statuses.clear()
        self.other_samples.clear()
        self.clear_log()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kind = classify(request.method, request.raw_path)
        self.counts[kind] += 1
        response = await super()._handle(request)
        self.statuses[f"{request.method} {response.status}"] += 1
        if kind == "other" and len(self.other_samples) < 10:
            self.other_samples.append(f"{request.method} {request.raw_path} {response.status}")
        self.requests.clear()  # the parent's log would grow without bound
        return response

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        if request.method != "HEAD" and upstream.content_length:
            self.bytes[classify(request.method, request.raw_path)] += upstream.content_length
        return await super()._relay(request, upstream)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {k: self.counts.get(k, 0) for k in REQUEST_KINDS},
            "bytes": {k: self.bytes.get(k, 0) for k in REQUEST_KINDS},
            "statuses": dict(self.statuses),
            "other_samples": list(self.other_samples),
        }


async def _serve(upstream: str, port: int, control_port: int) -> None:
    proxy = CountingProxy(upstream, port=port)
    await proxy.astart()

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(proxy.snapshot())

    async def reset(_request: web.Request) -> web.Response:
        proxy.reset_counts()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await proxy.astop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.upstream, args.port, args.control_port))


class ProxyProcess:
    """Driver side: start the proxy process, read and reset its counters, stop it."""

    def __init__(self, upstream_url: str, log_path: Path) -> None:
        self.upstream_url = upstream_url
        self.port = free_port()
        self.control_port = free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [PYTHON, "-m", "benchmarks.proxy", "--upstream", self.upstream_url]
        argv += ["--port", str(self.port), "--control-port", str(self.control_port)]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    async def start(self, startup_timeout: float = 20.0) -> None:
        self._proc = self._spawn()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        deadline = time.monotonic() + startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"proxy exited early:\n{tail(self.log_path)}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self.stats()
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"proxy did not start:\n{tail(self.log_path)}")
            await asyncio.sleep(0.05)

    async def stats(self) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(f"http://127.0.0.1:{self.control_port}/stats") as resp:
            resp.raise_for_status()
            return dict(await resp.json())

    async def reset(self) -> None:
        assert self._session is not None
        async with self._session.post(f"http://127.0.0.1:{self.control_port}/reset") as resp:
            resp.raise_for_status()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)


if __name__ == "__main__":
    main()
