"""The BlobStore contract, run against both backends: files on tmp_path and S3 (moto server).

What a user relies on: a blob is readable under its digest only when whole and verified,
a failed or abandoned write leaves nothing under the final name, and what was started but not
published is listed (and can be aborted) for housekeeping.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch, NotFound
from server.storage import (
    BlobStore,
    StorageConfig,
    StorageError,
    clear_stale,
    open_blob_store,
    write_bytes,
    writing,
)
from server.storage.s3 import PART_SIZE
from tests.support.s3 import MotoServer, credentials_env

pytestmark = pytest.mark.parametrize("storage_backend", ["fs", "s3"], indirect=True)

DATA = b"hello, blob"
DIGEST = Digest.of_bytes(DATA)


@pytest.fixture
async def store(
    storage_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BlobStore]:
    config = StorageConfig(data_dir=tmp_path / "data")
    if storage_backend == "s3":
        moto: MotoServer = request.getfixturevalue("moto_server")
        bucket = moto.new_bucket()
        config = StorageConfig(
            data_dir=tmp_path / "data",
            url=f"s3://{bucket}/some/prefix",
            s3_endpoint_url=moto.url,
            s3_addressing="path",
        )
        with credentials_env():
            async with open_blob_store(config) as opened:
                yield opened
        return
    async with open_blob_store(config) as opened:
        yield opened


async def read_all(
    store: BlobStore, digest: Digest, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(digest, start, end)])


async def test_small_blob_round_trip(store: BlobStore) -> None:
    assert await store.stat(DIGEST) is None
    stat = await write_bytes(store, DIGEST, DATA)
    assert stat.size == len(DATA)
    found = await store.stat(DIGEST)
    assert found is not None and found.size == len(DATA)
    assert abs(found.modified - time.time()) < 300
    assert await store.read_bytes(DIGEST) == DATA
    assert await read_all(store, DIGEST, 2, 6) == DATA[2:6]
    assert await read_all(store, DIGEST, 4) == DATA[4:]
    assert [s.digest async for s in store.iterate()] == [DIGEST]
    assert await store.temporaries() == []


async def test_large_blob_goes_up_in_parts_and_is_whole(store: BlobStore) -> None:
    payload = os.urandom(1 << 20) * (PART_SIZE // (1 << 20) * 2 + 1) + b"tail"
    digest = Digest.of_bytes(payload)
    async with writing(store, digest, len(payload)) as writer:
        for start in range(0, len(payload), 256 * 1024):
            await writer.write(payload[start : start + 256 * 1024])
            if start == PART_SIZE + (1 << 20):
                # Mid-upload nothing is visible under the digest yet.
                assert await store.stat(digest) is None
        await writer.commit()
    assert (await store.stat(digest)).size == len(payload)  # type: ignore[union-attr]
    assert await store.read_bytes(digest) == payload
    assert (
        await read_all(store, digest, PART_SIZE - 10, PART_SIZE + 10)
        == payload[PART_SIZE - 10 : PART_SIZE + 10]
    )
    assert await store.temporaries() == []


async def test_large_mismatch_publishes_nothing_and_aborts_the_upload(store: BlobStore) -> None:
    payload = os.urandom(PART_SIZE + 12345)
    wrong = Digest.of_bytes(payload + b"!")
    with pytest.raises(DigestMismatch):
        async with writing(store, wrong, len(payload)) as writer:
            await writer.write(payload)
            await writer.commit(host="upstream.example")
    assert await store.stat(wrong) is None
    assert [s async for s in store.iterate()] == []
    assert await store.temporaries() == []


async def test_abandoned_write_is_listed_then_cleared(store: BlobStore) -> None:
    payload = os.urandom(PART_SIZE + 1)
    writer = await store.open_writer(Digest.of_bytes(payload), len(payload))
    await writer.write(payload)  # a part (or the temp file) exists, nothing is published
    leftovers = await store.temporaries()
    assert len(leftovers) == 1
    assert await clear_stale(store, 3600.0, time.time()) == 0  # young: another writer's
    assert await clear_stale(store, 0.0, time.time() + 1) == 1
    assert await store.temporaries() == []
    assert [s async for s in store.iterate()] == []
    await writer.abort()


async def test_delete_and_missing(store: BlobStore) -> None:
    await write_bytes(store, DIGEST, DATA)
    assert await store.delete(DIGEST) is True
    assert await store.delete(DIGEST) is False
    assert await store.stat(DIGEST) is None
    assert await store.stat_many([DIGEST]) == {}
    with pytest.raises(NotFound):
        await store.read_bytes(DIGEST)


async def test_name_never_carries_credentials(store: BlobStore) -> None:
    assert "mirror-test-secret" not in store.name
    assert "mirror-test-key" not in store.name


async def test_unreachable_bucket_is_a_storage_error(
    storage_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if storage_backend != "s3":
        pytest.skip("a directory has no bucket")
    moto: MotoServer = request.getfixturevalue("moto_server")
    config = StorageConfig(
        data_dir=tmp_path, url="s3://no-such-bucket-here", s3_endpoint_url=moto.url
    )
    with credentials_env(), pytest.raises(StorageError) as info:
        async with open_blob_store(config):
            pass
    assert info.value.metadata["storage"] == "s3://no-such-bucket-here/"
