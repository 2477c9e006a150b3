"""Blob bodies sent with sendfile (server/storage/sendfile.py), through the real registry
endpoint: exact bytes whole and by range, a reader that stops reading is cut off after the
stall timeout, and while it holds the only sending thread other downloads still finish."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import time

import pytest

from server.app import Services
from server.config import Settings
from server.storage.filesystem import FilesystemBlobStore
from tests.e2e.conftest import E2E, needs_registry
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = [
    pytest.mark.registry,
    needs_registry,
    # The test client pushes the big layer to the upstream as one bytes body.
    pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning"),
]

STALL_SECONDS = 1.0
LAYER_BYTES = 24 * 1024 * 1024  # well beyond what loopback socket buffers hold


@pytest.fixture
def settings(settings: Settings) -> Settings:
    limits = dataclasses.replace(
        settings.limits, http_send_stall_timeout=STALL_SECONDS, http_sendfile_threads=1
    )
    return dataclasses.replace(settings, limits=limits)


@pytest.fixture
async def big_layer(e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str) -> bytes:
    image = img.make_image("sendfile", layers=1, layer_size=LAYER_BYTES)
    await img.push_image(upstream_registry.url, upstream_name, "big", image)
    await e2e.publish("big", upstream_registry.url, upstream_name, "sf/big", public=True)
    return image.layers[0].blob


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def test_whole_and_ranged_bodies_are_the_stored_bytes(e2e: E2E, big_layer: bytes) -> None:
    url = e2e.url(f"/v2/sf/big/blobs/{_digest(big_layer)}")
    async with e2e.http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(big_layer))
        body = await resp.read()
    assert _digest(body) == _digest(big_layer)
    start, end = 1_000_003, 9_000_009
    async with e2e.http.get(url, headers={"Range": f"bytes={start}-{end}"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(big_layer)}"
        assert await resp.read() == big_layer[start : end + 1]


def _stalled_reader(endpoint: str, path: str) -> socket.socket:
    """A client that sends a GET, reads a little and then stops reading."""
    host, port = endpoint.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {endpoint}\r\n\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def _drain(sock: socket.socket) -> int:
    """Read to EOF -> bytes received (headers included)."""
    sock.settimeout(30)
    total = 0
    while chunk := sock.recv(1 << 20):
        total += len(chunk)
    sock.close()
    return total


async def test_a_reader_that_stops_is_cut_off_and_does_not_block_others(
    e2e: E2E, big_layer: bytes, services: Services
) -> None:
    store = services.storage
    assert isinstance(store, FilesystemBlobStore) and store.sender is not None
    sender = store.sender
    path = f"/v2/sf/big/blobs/{_digest(big_layer)}"
    stalled = await asyncio.to_thread(_stalled_reader, e2e.endpoint, path)
    try:
        deadline = time.monotonic() + 5
        while sender.busy == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter)
            await asyncio.sleep(0.02)
        assert sender.busy == 1, "the stalled download should hold the only sending thread"

        # Meanwhile another client downloads the same blob in full, on the chunked path.
        async with e2e.http.get(e2e.url(path)) as resp:
            assert resp.status == 200
            assert _digest(await resp.read()) == _digest(big_layer)
        assert sender.fell_back >= 1

        # The stalled reader is cut off after the stall timeout: its body ends short.
        await asyncio.sleep(STALL_SECONDS + 0.6)
        received = await asyncio.to_thread(_drain, stalled)
        assert received < len(big_layer)
        assert sender.busy == 0
    finally:
        stalled.close()

    # The thread is free again: the next download takes the sendfile path.
    fell_back = sender.fell_back
    async with e2e.http.get(e2e.url(path)) as resp:
        assert _digest(await resp.read()) == _digest(big_layer)
    assert sender.fell_back == fell_back
