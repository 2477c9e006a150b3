"""The registry endpoint's in-memory cache never outlives what it caches.

Every change to what a base path serves must be visible to the very next pull, on the server
that made the change and on another server process on the same database (a real
``python -m server`` started here), with no wait in between: a new version, a pinned version
re-pinned, a distribution re-pointed or deleted, a repository deleted and its base path
reused. Each endpoint is pulled *before* every change, so a stale cache would be caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import field_mask_pb2

from protos import mirror_pb2 as pb
from server.config import Settings
from tests.e2e.conftest import E2E, needs_registry
from tests.support import images as img
from tests.support.registry import RegistryProcess, free_port

pytestmark = [pytest.mark.registry, needs_registry]

ACCEPT = {"Accept": ", ".join(img.ALL_MANIFEST_TYPES)}
START_TIMEOUT = 60.0


@contextlib.asynccontextmanager
async def other_process(settings: Settings, log: Path) -> AsyncIterator[str]:
    """A second server process on the same database and data dir -> its registry base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "server", "--grpc-address", f"127.0.0.1:{free_port()}"]
    argv += ["--registry-address", f"127.0.0.1:{port}", "--data-dir", str(settings.data_dir)]
    argv += ["--database-url", settings.effective_database_url, "--log-level", "WARNING"]
    proc = _spawn(argv, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.poll() is None, _text(log)
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/v2/") as resp:
                        if resp.status in (200, 401):  # up (401: the token challenge)
                            break
                assert time.monotonic() < deadline, _text(log)
                await asyncio.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")}
    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


class Pull:
    """Raw pulls against both endpoints, answering (status, digest or error code)."""

    def __init__(self, http: aiohttp.ClientSession, bases: list[str]) -> None:
        self.http = http
        self.bases = bases

    async def _one(self, url: str) -> tuple[int, str]:
        async with self.http.get(url, headers=ACCEPT) as resp:
            if resp.status == 200:
                return 200, resp.headers["Docker-Content-Digest"]
            return resp.status, (await resp.json())["errors"][0]["code"]

    async def manifest(self, path: str, ref: str) -> list[tuple[int, str]]:
        return [await self._one(f"{b}/v2/{path}/manifests/{ref}") for b in self.bases]

    async def blob(self, path: str, digest: str) -> list[tuple[int, str]]:
        return [await self._one(f"{b}/v2/{path}/blobs/{digest}") for b in self.bases]

    async def tags(self, path: str) -> list[list[str]]:
        out = []
        for base in self.bases:
            async with self.http.get(f"{base}/v2/{path}/tags/list") as resp:
                out.append((await resp.json()).get("tags") if resp.status == 200 else [])
        return out


def both(value: object) -> list[object]:
    return [value, value]


async def update_distribution(e2e: E2E, name: str, paths: list[str], **fields: str) -> None:
    await e2e.distributions.UpdateDistribution(
        pb.UpdateDistributionRequest(
            distribution=pb.Distribution(name=f"distributions/{name}", **fields),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )
    )


async def test_every_change_is_seen_by_the_next_pull_on_both_processes(
    e2e: E2E,
    upstream_registry: RegistryProcess,
    upstream_name: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    a = img.make_image("cache-a", layers=1, media="oci")
    b = img.make_image("cache-b", layers=1, media="oci")
    c = img.make_image("cache-c", layers=1, media="docker")
    await img.push_image(upstream_registry.url, upstream_name, "app", a)
    await e2e.publish("r", upstream_registry.url, upstream_name, "cache/app")
    async with other_process(settings, tmp_path / "other.log") as other:
        pull = Pull(e2e.http, [e2e.base_url, other])
        # Warm both caches: tag, digest, blob, tag list, and an unknown path.
        assert await pull.manifest("cache/app", "app") == both((200, a.digest))
        assert await pull.blob("cache/app", a.layers[0].digest) == both((200, a.layers[0].digest))
        assert await pull.tags("cache/app") == both(["app"])
        assert await pull.manifest("cache/pinned", "app") == both((404, "NAME_UNKNOWN"))

        # A new version: the tag moved and a tag appeared.
        await img.push_image(upstream_registry.url, upstream_name, "app", b)
        await img.push_image(upstream_registry.url, upstream_name, "two", c)
        await e2e.sync("r")
        assert await pull.manifest("cache/app", "app") == both((200, b.digest))
        assert await pull.tags("cache/app") == both(["app", "two"])

        # A new distribution pinned to version 1: never content outside that version,
        # although the same repository's version 2 is cached by now.
        await e2e.distribute("pinned", "cache/pinned", version="repositories/r/versions/1")
        assert await pull.manifest("cache/pinned", "app") == both((200, a.digest))
        assert await pull.manifest("cache/pinned", b.digest) == both((404, "MANIFEST_UNKNOWN"))
        assert await pull.blob("cache/pinned", c.layers[0].digest) == both((404, "BLOB_UNKNOWN"))
        assert await pull.tags("cache/pinned") == both(["app"])

        # Re-pinned to version 2.
        await update_distribution(e2e, "pinned", ["version"], version="repositories/r/versions/2")
        assert await pull.manifest("cache/pinned", "app") == both((200, b.digest))
        assert await pull.blob("cache/pinned", c.layers[0].digest) == both(
            (200, c.layers[0].digest)
        )

        # Re-pointed: the old base path is unknown at once, the new one serves.
        await update_distribution(e2e, "r", ["base_path"], base_path="cache/moved")
        assert await pull.manifest("cache/app", "app") == both((404, "NAME_UNKNOWN"))
        assert await pull.manifest("cache/moved", "app") == both((200, b.digest))

        # Deleted distribution.
        await e2e.distributions.DeleteDistribution(
            pb.DeleteDistributionRequest(name="distributions/pinned")
        )
        assert await pull.manifest("cache/pinned", "app") == both((404, "NAME_UNKNOWN"))

        # Deleted repository, and its base path reused by a new repository with other
        # content (the database may even reuse the row id): nothing of the old one leaks.
        await e2e.distributions.DeleteDistribution(
            pb.DeleteDistributionRequest(name="distributions/r")
        )
        await e2e.repositories.DeleteRepository(pb.DeleteRepositoryRequest(name="repositories/r"))
        assert await pull.manifest("cache/moved", "app") == both((404, "NAME_UNKNOWN"))
        fresh = f"{upstream_name}-fresh"
        await img.push_image(upstream_registry.url, fresh, "app", c)
        await e2e.publish("s", upstream_registry.url, fresh, "cache/moved")
        assert await pull.manifest("cache/moved", "app") == both((200, c.digest))
        assert await pull.manifest("cache/moved", b.digest) == both((404, "MANIFEST_UNKNOWN"))
        assert await pull.blob("cache/moved", b.layers[0].digest) == both((404, "BLOB_UNKNOWN"))
        assert await pull.tags("cache/moved") == both(["app"])
