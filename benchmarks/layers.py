"""A fast builder of big, incompressible, deterministic layers, pushed while they are made.

``tests.support.images.make_layer`` builds a layer in memory with ``tarfile`` + ``gzip`` level 6:
fine for kilobytes, far too slow for a gibibyte. Here a layer is a real gzip'd tar (one file of
``random.Random(seed)`` bytes) whose deflate stream uses *stored* blocks (level 0): valid for any
client, incompressible, and produced at memory speed. It is generated chunk by chunk, hashed
(compressed digest and uncompressed ``diff_id``) and sent with a chunked upload
(``POST`` then one ``PATCH`` per chunk with ``Content-Range``, then ``PUT ?digest=``), so at most
one chunk of it is in memory.
"""

from __future__ import annotations

import hashlib
import json
import random
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp

from tests.support.images import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PushedLayer:
    """A layer now in the registry: its blob digest and size, and its ``diff_id``."""

    digest: str
    size: int
    diff_id: str


def _tar_stream(seed: str, size: int) -> Iterator[bytes]:
    """The uncompressed tar of one ``size``-byte file of seeded random bytes, in chunks."""
    info = tarfile.TarInfo(f"data/{seed.replace(':', '-')}.bin")
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    yield info.tobuf(format=tarfile.USTAR_FORMAT)
    rng = random.Random(f"bench-layer:{seed}")
    left = size
    while left:
        n = min(CHUNK, left)
        yield rng.randbytes(n)
        left -= n
    yield b"\0" * ((-size) % 512 + 1024)  # pad the file, then the two end-of-archive blocks


async def push_random_layer(
    session: aiohttp.ClientSession, registry_url: str, repo: str, seed: str, size: int
) -> PushedLayer:
    """Generate and push one layer of ~``size`` bytes; nothing bigger than a chunk is held."""
    base = registry_url.rstrip("/")
    async with session.post(f"{base}/v2/{repo}/blobs/uploads/") as resp:
        if resp.status != 202:
            raise RuntimeError(f"start upload: HTTP {resp.status}: {await resp.text()}")
        location = urljoin(base + "/", resp.headers["Location"])
    compressor = zlib.compressobj(0, zlib.DEFLATED, 31)  # gzip wrapper, stored blocks
    blob_hash, diff_hash = hashlib.sha256(), hashlib.sha256()
    offset = 0
    pending: list[bytes] = []
    pending_size = 0

    async def send(data: bytes) -> None:
        nonlocal location, offset
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(data) - 1}",
        }
        async with session.patch(location, data=data, headers=headers) as resp:
            if resp.status != 202:
                raise RuntimeError(f"upload chunk: HTTP {resp.status}: {await resp.text()}")
            location = urljoin(base + "/", resp.headers["Location"])
        blob_hash.update(data)
        offset += len(data)

    for piece in _tar_stream(seed, size):
        diff_hash.update(piece)
        out = compressor.compress(piece)
        if out:
            pending.append(out)
            pending_size += len(out)
        if pending_size >= CHUNK:
            await send(b"".join(pending))
            pending, pending_size = [], 0
    pending.append(compressor.flush())
    await send(b"".join(pending))
    digest = "sha256:" + blob_hash.hexdigest()
    sep = "&" if "?" in location else "?"
    async with session.put(f"{location}{sep}digest={digest}") as resp:
        if resp.status != 201:
            raise RuntimeError(f"finish upload: HTTP {resp.status}: {await resp.text()}")
    return PushedLayer(digest=digest, size=offset, diff_id="sha256:" + diff_hash.hexdigest())


def image_documents(seed: str, layers: list[PushedLayer]) -> tuple[bytes, bytes]:
    """``(config, manifest)`` bytes of a Docker schema2 image over ``layers``."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Labels": {"org.example.mirror.bench": seed}},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        },
        indent=2,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {"mediaType": DOCKER_LAYER, "digest": layer.digest, "size": layer.size}
                for layer in layers
            ],
        },
        indent=3,
    ).encode()
    return config, manifest
