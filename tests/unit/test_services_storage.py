"""Content-addressed blob storage (server/storage/blobs.py) on tmp_path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch
from server.storage.blobs import BlobStorage

DATA = b"hello, blob"
DIGEST = Digest.of_bytes(DATA)


@pytest.fixture
def storage(tmp_path: Path) -> BlobStorage:
    return BlobStorage(tmp_path / "store")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_layout_directories_created(storage: BlobStorage) -> None:
    assert storage.blob_dir.is_dir()
    assert storage.temp_dir.is_dir()


def test_path_layout(storage: BlobStorage) -> None:
    assert storage.path(DIGEST) == storage.root / "blobs" / "sha256" / DIGEST.hex[:2] / DIGEST.hex


async def test_write_bytes_stores_at_content_address(storage: BlobStorage) -> None:
    path = await storage.write_bytes(DIGEST, DATA)
    assert path == storage.root / "blobs" / "sha256" / DIGEST.hex[:2] / DIGEST.hex
    assert path.read_bytes() == DATA
    assert storage.has(DIGEST)
    assert storage.size(DIGEST) == len(DATA)
    assert await storage.read_bytes(DIGEST) == DATA
    assert list(storage.temp_dir.iterdir()) == []


async def test_write_bytes_sha512(storage: BlobStorage) -> None:
    digest = Digest.of_bytes(DATA, "sha512")
    path = await storage.write_bytes(digest, DATA)
    assert path == storage.root / "blobs" / "sha512" / digest.hex[:2] / digest.hex
    assert path.read_bytes() == DATA


async def test_write_bytes_twice_is_idempotent(storage: BlobStorage) -> None:
    await storage.write_bytes(DIGEST, DATA)
    await storage.write_bytes(DIGEST, DATA)
    assert files_under(storage.root) == [storage.path(DIGEST)]


async def test_empty_blob(storage: BlobStorage) -> None:
    digest = Digest.of_bytes(b"")
    await storage.write_bytes(digest, b"")
    assert storage.size(digest) == 0


def test_missing_blob(storage: BlobStorage) -> None:
    assert not storage.has(DIGEST)
    assert storage.size(DIGEST) is None


async def test_streamed_writer_commits(storage: BlobStorage) -> None:
    chunks = [b"a" * 1000, b"b" * 3, b"", b"c" * 70_000]
    payload = b"".join(chunks)
    digest = Digest("sha256", hashlib.sha256(payload).hexdigest())
    async with storage.writer(digest, len(payload)) as writer:
        for chunk in chunks:
            await writer.write(chunk)
        assert writer.size == len(payload)
        path = await writer.commit()
    assert path.read_bytes() == payload
    assert list(storage.temp_dir.iterdir()) == []


async def test_writer_without_expected_size(storage: BlobStorage) -> None:
    async with storage.writer(DIGEST) as writer:
        await writer.write(DATA)
        await writer.commit()
    assert storage.has(DIGEST)


async def test_write_bytes_wrong_content_raises_and_stores_nothing(storage: BlobStorage) -> None:
    with pytest.raises(DigestMismatch):
        await storage.write_bytes(DIGEST, b"something else")
    assert not storage.has(DIGEST)
    assert files_under(storage.root) == []


async def test_mismatching_writer_leaves_no_final_and_no_temp_file(storage: BlobStorage) -> None:
    with pytest.raises(DigestMismatch) as info:
        async with storage.writer(DIGEST, len(DATA)) as writer:
            await writer.write(b"tampered!!!")
            temp = writer.temp
            assert temp.exists()
            await writer.commit(host="registry.example.com")
    assert not temp.exists()
    assert not storage.has(DIGEST)
    assert files_under(storage.root) == []
    err = info.value
    assert err.code == "DATA_LOSS"
    assert err.metadata["digest"] == str(DIGEST)
    assert err.metadata["upstreamHost"] == "registry.example.com"
    assert err.metadata["receivedDigest"] == str(Digest.of_bytes(b"tampered!!!"))
    assert err.metadata["receivedSize"] == "11"


async def test_right_hash_wrong_size_is_a_mismatch(storage: BlobStorage) -> None:
    with pytest.raises(DigestMismatch):
        async with storage.writer(DIGEST, len(DATA) + 1) as writer:
            await writer.write(DATA)
            await writer.commit()
    assert files_under(storage.root) == []


async def test_exception_inside_writer_leaves_no_temp_file(storage: BlobStorage) -> None:
    with pytest.raises(RuntimeError, match="network died"):
        async with storage.writer(DIGEST, len(DATA)) as writer:
            await writer.write(DATA[:3])
            temp = writer.temp
            raise RuntimeError("network died")
    assert not temp.exists()
    assert files_under(storage.root) == []


async def test_leaving_writer_without_commit_leaves_no_temp_file(storage: BlobStorage) -> None:
    async with storage.writer(DIGEST, len(DATA)) as writer:
        await writer.write(DATA)
        temp = writer.temp
    assert not temp.exists()
    assert not storage.has(DIGEST)


async def test_explicit_abort(storage: BlobStorage) -> None:
    async with storage.writer(DIGEST) as writer:
        await writer.write(DATA)
        writer.abort()
        assert not writer.temp.exists()
    assert files_under(storage.root) == []


def test_clear_temp_removes_leftovers(storage: BlobStorage) -> None:
    for name in ("abc-1", "abc-2", "def-3"):
        (storage.temp_dir / name).write_bytes(b"partial")
    assert storage.clear_temp() == 3
    assert list(storage.temp_dir.iterdir()) == []
    assert storage.clear_temp() == 0


async def test_clear_temp_keeps_committed_blobs(storage: BlobStorage) -> None:
    await storage.write_bytes(DIGEST, DATA)
    (storage.temp_dir / "leftover").write_bytes(b"x")
    assert storage.clear_temp() == 1
    assert storage.has(DIGEST)


def test_reopening_existing_root(tmp_path: Path) -> None:
    BlobStorage(tmp_path)
    again = BlobStorage(tmp_path)
    assert again.blob_dir.is_dir()


async def test_sha512_mismatch_message_names_sha512(storage: BlobStorage) -> None:
    digest = Digest.of_bytes(DATA, "sha512")
    with pytest.raises(DigestMismatch) as info:
        await storage.write_bytes(digest, b"other")
    received = Digest.of_bytes(b"other", "sha512")
    assert info.value.metadata["receivedDigest"] == str(received)
    assert str(received) in info.value.message
