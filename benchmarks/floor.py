"""The raw floor: the least work any mirror of a repository must do, as fast as aiohttp does it.

``python -m benchmarks.floor --url URL --repo NAME --dest DIR [--concurrency 10]`` mirrors
``NAME`` into ``DIR`` incrementally and prints one JSON line of what it did:

* GET the tag list, HEAD every tag (``Docker-Content-Digest`` gives its digest);
* GET (and sha256-verify) every manifest not already in ``DIR``, children of indexes too;
* GET every distinct blob not already in ``DIR``, streamed to a temp file, sha256-verified,
  renamed into place;
* only then record the new manifests (a stored manifest means its whole closure is stored).

So a re-sync with nothing changed is the tag list plus one HEAD per tag. All requests share one
pool of ``--concurrency`` slots (the service's default ``download_concurrency`` is 10) and are
pipelined: a manifest is fetched as soon as its HEAD returns, its blobs as soon as it is parsed.
There is no database, no retry, no progress reporting: the floor, not a mirror.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import uvloop

from benchmarks.common import MANIFEST_ACCEPT

CHUNK = 1 << 20


def _own_peak_rss_kib() -> int | None:
    """VmHWM of this process (its own memory since exec, unlike ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class FloorError(RuntimeError):
    """The registry answered something a correct mirror must not accept."""


class Floor:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, repo: str, dest: Path, concurrency: int
    ) -> None:
        self._session = session
        self._base = url.rstrip("/")
        self._repo = repo
        self._slots = asyncio.Semaphore(concurrency)
        self._manifests = dest / "manifests"
        self._blobs = dest / "blobs"
        self._tmp = dest / "tmp"
        for folder in (self._manifests, self._blobs, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._wanted_manifests: set[str] = set()
        self._wanted_blobs: set[str] = set()
        self._new: dict[str, bytes] = {}
        self._fetched_blobs = 0
        self._group: asyncio.TaskGroup | None = None
        self.requests: dict[str, int] = {}
        self.bytes = 0

    def _count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    async def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        cpu_started = time.process_time()
        tags = await self._list_tags()
        async with asyncio.TaskGroup() as group:
            self._group = group
            for tag in tags:
                group.create_task(self._resolve(tag))
        for digest, data in self._new.items():  # commit: the closure is on disk now
            (self._manifests / digest.removeprefix("sha256:")).write_bytes(data)
        return {
            "wall": time.perf_counter() - started,
            "cpu": time.process_time() - cpu_started,
            "tags": len(tags),
            "new_manifests": len(self._new),
            "new_blobs": self._fetched_blobs,
            "requests": self.requests,
            "bytes": self.bytes,
            "peak_rss_kib": _own_peak_rss_kib(),
        }

    async def _list_tags(self) -> list[str]:
        url: str | None = f"{self._base}/v2/{self._repo}/tags/list"
        tags: list[str] = []
        while url:
            self._count("tag_list")
            async with self._slots, self._session.get(url) as resp:
                if resp.status != 200:
                    raise FloorError(f"tag list: HTTP {resp.status}")
                body = await resp.read()
                link = resp.headers.get("Link")
            self.bytes += len(body)
            tags.extend(json.loads(body).get("tags") or [])
            url = None
            if link and 'rel="next"' in link:
                url = urljoin(self._base + "/", link.split(";")[0].strip().strip("<>"))
        return tags

    def _known_manifest(self, digest: str) -> bool:
        return (self._manifests / digest.removeprefix("sha256:")).is_file()

    async def _resolve(self, tag: str) -> None:
        url = f"{self._base}/v2/{self._repo}/manifests/{tag}"
        self._count("manifest_head")
        async with (
            self._slots,
            self._session.head(url, headers={"Accept": MANIFEST_ACCEPT}) as resp,
        ):
            if resp.status != 200:
                raise FloorError(f"HEAD {tag}: HTTP {resp.status}")
            digest = resp.headers.get("Docker-Content-Digest", "")
        if not digest.startswith("sha256:"):
            raise FloorError(f"HEAD {tag}: no Docker-Content-Digest")
        self._want_manifest(digest)

    def _want_manifest(self, digest: str) -> None:
        if digest in self._wanted_manifests or self._known_manifest(digest):
            return
        self._wanted_manifests.add(digest)
        assert self._group is not None
        self._group.create_task(self._fetch_manifest(digest))

    def _want_blob(self, digest: str) -> None:
        if digest in self._wanted_blobs:
            return
        self._wanted_blobs.add(digest)
        if (self._blobs / digest.removeprefix("sha256:")).is_file():
            return
        assert self._group is not None
        self._group.create_task(self._fetch_blob(digest))

    async def _fetch_manifest(self, digest: str) -> None:
        url = f"{self._base}/v2/{self._repo}/manifests/{digest}"
        self._count("manifest_get")
        async with (
            self._slots,
            self._session.get(url, headers={"Accept": MANIFEST_ACCEPT}) as resp,
        ):
            if resp.status != 200:
                raise FloorError(f"GET manifest {digest}: HTTP {resp.status}")
            data = await resp.read()
        self.bytes += len(data)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise FloorError(f"manifest {digest}: digest mismatch")
        doc = json.loads(data)
        for child in doc.get("manifests") or []:
            self._want_manifest(child["digest"])
        config = doc.get("config")
        for blob in ([config] if config else []) + (doc.get("layers") or []):
            self._want_blob(blob["digest"])
        self._new[digest] = data

    async def _fetch_blob(self, digest: str) -> None:
        url = f"{self._base}/v2/{self._repo}/blobs/{digest}"
        hexpart = digest.removeprefix("sha256:")
        temp = self._tmp / f"{hexpart[:16]}-{uuid.uuid4().hex}"
        hasher = hashlib.sha256()
        self._count("blob_get")
        async with self._slots, self._session.get(url) as resp:
            if resp.status != 200:
                raise FloorError(f"GET blob {digest}: HTTP {resp.status}")
            # Blocking page-cache writes of 1 MiB chunks, exactly as the service's BlobWriter.
            with open(temp, "wb") as out:  # noqa: ASYNC230
                async for chunk in resp.content.iter_chunked(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    self.bytes += len(chunk)
        if hasher.hexdigest() != hexpart:
            temp.unlink()
            raise FloorError(f"blob {digest}: digest mismatch")
        os.replace(temp, self._blobs / hexpart)
        self._fetched_blobs += 1


async def run_floor(url: str, repo: str, dest: Path, concurrency: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        headers={"Accept-Encoding": "identity"},
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60),
    ) as session:
        return await Floor(session, url, repo, dest, concurrency).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--url", required=True, help="registry base URL, http://host:port")
    parser.add_argument("--repo", required=True, help="repository name upstream")
    parser.add_argument("--dest", required=True, type=Path, help="mirror directory")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    # The same event loop as the server (uvloop): the floor must not be slower for a reason
    # no mirror has to accept.
    result = uvloop.run(run_floor(args.url, args.repo, args.dest, args.concurrency))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
