"""The filesystem blob store (server/storage/filesystem.py) on tmp_path."""

from __future__ import annotations

import hashlib
import stat
import time
from pathlib import Path

import pytest

from server.domain.digests import Digest
from server.domain.errors import DigestMismatch, NotFound
from server.storage import clear_stale, write_bytes, writing
from server.storage.filesystem import FilesystemBlobStore

DATA = b"hello, blob"
DIGEST = Digest.of_bytes(DATA)


@pytest.fixture
def storage(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "store")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_layout_directories_created_private(storage: FilesystemBlobStore) -> None:
    for directory in (storage.root, storage.blob_dir, storage.temp_dir):
        assert directory.is_dir()
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_path_layout(storage: FilesystemBlobStore) -> None:
    assert storage.path(DIGEST) == storage.root / "blobs" / "sha256" / DIGEST.hex[:2] / DIGEST.hex


async def test_write_bytes_stores_at_content_address(storage: FilesystemBlobStore) -> None:
    written = await write_bytes(storage, DIGEST, DATA)
    path = storage.root / "blobs" / "sha256" / DIGEST.hex[:2] / DIGEST.hex
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert written.size == len(DATA)
    found = await storage.stat(DIGEST)
    assert found is not None and found.size == len(DATA) and found.digest == DIGEST
    assert await storage.read_bytes(DIGEST) == DATA
    assert list(storage.temp_dir.iterdir()) == []


async def test_read_ranges(storage: FilesystemBlobStore) -> None:
    await write_bytes(storage, DIGEST, DATA)
    assert b"".join([c async for c in storage.read(DIGEST)]) == DATA
    assert b"".join([c async for c in storage.read(DIGEST, 3, 7)]) == DATA[3:7]
    assert b"".join([c async for c in storage.read(DIGEST, 5)]) == DATA[5:]


async def test_read_missing_is_not_found(storage: FilesystemBlobStore) -> None:
    with pytest.raises(NotFound):
        [c async for c in storage.read(DIGEST)]
    with pytest.raises(NotFound):
        await storage.read_bytes(DIGEST)


async def test_write_bytes_sha512(storage: FilesystemBlobStore) -> None:
    digest = Digest.of_bytes(DATA, "sha512")
    await write_bytes(storage, digest, DATA)
    path = storage.root / "blobs" / "sha512" / digest.hex[:2] / digest.hex
    assert hashlib.sha512(path.read_bytes()).hexdigest() == digest.hex


async def test_write_bytes_twice_is_idempotent(storage: FilesystemBlobStore) -> None:
    await write_bytes(storage, DIGEST, DATA)
    await write_bytes(storage, DIGEST, DATA)
    assert files_under(storage.root) == [storage.path(DIGEST)]


async def test_empty_blob(storage: FilesystemBlobStore) -> None:
    digest = Digest.of_bytes(b"")
    await write_bytes(storage, digest, b"")
    found = await storage.stat(digest)
    assert found is not None and found.size == 0


async def test_missing_blob(storage: FilesystemBlobStore) -> None:
    assert await storage.stat(DIGEST) is None
    assert await storage.stat_many([DIGEST]) == {}


async def test_stat_reports_a_truncated_file_by_its_size(storage: FilesystemBlobStore) -> None:
    await write_bytes(storage, DIGEST, DATA)
    storage.path(DIGEST).write_bytes(DATA[:4])  # damaged behind the server's back
    found = await storage.stat(DIGEST)
    assert found is not None and found.size == 4


async def test_streamed_writer_commits(storage: FilesystemBlobStore) -> None:
    payload = b"x" * (3 << 20) + b"tail"
    digest = Digest.of_bytes(payload)
    async with writing(storage, digest, len(payload)) as writer:
        for start in range(0, len(payload), 65536):
            await writer.write(payload[start : start + 65536])
        await writer.commit()
    assert storage.path(digest).read_bytes() == payload
    assert list(storage.temp_dir.iterdir()) == []


async def test_writer_without_expected_size(storage: FilesystemBlobStore) -> None:
    async with writing(storage, DIGEST) as writer:
        await writer.write(DATA)
        await writer.commit()
    assert await storage.stat(DIGEST) is not None


async def test_write_bytes_wrong_content_raises_and_stores_nothing(
    storage: FilesystemBlobStore,
) -> None:
    with pytest.raises(DigestMismatch):
        await write_bytes(storage, DIGEST, b"something else")
    assert await storage.stat(DIGEST) is None
    assert files_under(storage.root) == []


async def test_mismatching_writer_leaves_no_final_and_no_temp_file(
    storage: FilesystemBlobStore,
) -> None:
    with pytest.raises(DigestMismatch) as info:
        async with writing(storage, DIGEST, len(DATA)) as writer:
            await writer.write(b"tampered!!!")
            await writer.commit(host="registry.example.com")
    assert await storage.stat(DIGEST) is None
    assert files_under(storage.root) == []
    err = info.value
    assert err.code == "DATA_LOSS"
    assert err.metadata["digest"] == str(DIGEST)
    assert err.metadata["upstreamHost"] == "registry.example.com"
    assert err.metadata["receivedDigest"] == str(Digest.of_bytes(b"tampered!!!"))
    assert err.metadata["receivedSize"] == "11"


async def test_right_hash_wrong_size_is_a_mismatch(storage: FilesystemBlobStore) -> None:
    with pytest.raises(DigestMismatch):
        async with writing(storage, DIGEST, len(DATA) + 1) as writer:
            await writer.write(DATA)
            await writer.commit()
    assert files_under(storage.root) == []


async def test_exception_inside_writer_leaves_no_temp_file(storage: FilesystemBlobStore) -> None:
    with pytest.raises(RuntimeError, match="network died"):
        async with writing(storage, DIGEST, len(DATA)) as writer:
            await writer.write(DATA[:3])
            assert len(list(storage.temp_dir.iterdir())) == 1
            raise RuntimeError("network died")
    assert files_under(storage.root) == []


async def test_leaving_writer_without_commit_leaves_no_temp_file(
    storage: FilesystemBlobStore,
) -> None:
    async with writing(storage, DIGEST, len(DATA)) as writer:
        await writer.write(DATA)
    assert files_under(storage.root) == []
    assert await storage.stat(DIGEST) is None


async def test_explicit_abort(storage: FilesystemBlobStore) -> None:
    writer = await storage.open_writer(DIGEST)
    await writer.write(DATA)
    await writer.abort()
    await writer.abort()  # idempotent
    assert files_under(storage.root) == []


async def test_temporaries_listed_and_cleared_by_age(storage: FilesystemBlobStore) -> None:
    for name in ("abc-1", "abc-2", "def-3"):
        (storage.temp_dir / name).write_bytes(b"partial")
    found = await storage.temporaries()
    assert sorted(t.key for t in found) == ["abc-1", "abc-2", "def-3"]
    assert all(t.size == 7 for t in found)
    # Within the window they stay (another process may be writing them)...
    assert await clear_stale(storage, 3600.0, time.time()) == 0
    # ...older than it they go.
    assert await clear_stale(storage, 3600.0, time.time() + 7200) == 3
    assert list(storage.temp_dir.iterdir()) == []


async def test_clear_stale_keeps_committed_blobs(storage: FilesystemBlobStore) -> None:
    await write_bytes(storage, DIGEST, DATA)
    (storage.temp_dir / "leftover").write_bytes(b"x")
    assert await clear_stale(storage, 0.0, time.time()) == 1
    assert await storage.stat(DIGEST) is not None


async def test_abort_temporary_refuses_paths_outside(storage: FilesystemBlobStore) -> None:
    from server.storage import Temporary

    await write_bytes(storage, DIGEST, DATA)
    with pytest.raises(ValueError):
        await storage.abort_temporary(Temporary(f"../blobs/sha256/{DIGEST.hex[:2]}", 0.0))
    assert await storage.stat(DIGEST) is not None


async def test_iterate_and_delete(storage: FilesystemBlobStore) -> None:
    other = b"another blob"
    await write_bytes(storage, DIGEST, DATA)
    await write_bytes(storage, Digest.of_bytes(other), other)
    (storage.blob_dir / "sha256" / "zz").mkdir()
    (storage.blob_dir / "sha256" / "zz" / "not-a-digest").write_bytes(b"?")
    listed = {s.digest: s.size async for s in storage.iterate()}
    assert listed == {DIGEST: len(DATA), Digest.of_bytes(other): len(other)}
    assert await storage.delete(DIGEST) is True
    assert await storage.delete(DIGEST) is False
    assert {s.digest async for s in storage.iterate()} == {Digest.of_bytes(other)}


def test_reopening_existing_root(tmp_path: Path) -> None:
    FilesystemBlobStore(tmp_path)
    again = FilesystemBlobStore(tmp_path)
    assert again.blob_dir.is_dir()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        FilesystemBlobStore(tmp_path, durability="sometimes")


async def test_relaxed_durability_still_publishes_whole_blobs(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path, durability="none")
    await write_bytes(store, DIGEST, DATA)
    assert store.path(DIGEST).read_bytes() == DATA


async def test_sha512_mismatch_message_names_sha512(storage: FilesystemBlobStore) -> None:
    digest = Digest.of_bytes(DATA, "sha512")
    with pytest.raises(DigestMismatch) as info:
        await write_bytes(storage, digest, b"other")
    received = Digest.of_bytes(b"other", "sha512")
    assert info.value.metadata["receivedDigest"] == str(received)
    assert str(received) in info.value.message
