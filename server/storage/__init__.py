"""Blob storage: the `BlobStore` seam, its backends, and the process-wide `BlobFetcher`.

Only `open_blob_store` knows which backend a configuration selects; everything else holds a
`BlobStore` (see `base.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from server.storage.base import (
    BlobStat,
    BlobStore,
    BlobWriter,
    StorageError,
    StorageFull,
    Temporary,
    clear_stale,
    write_bytes,
    writing,
)
from server.storage.fetcher import BlobFetcher, BlobSource, Subscription
from server.storage.sendfile import FileSender

__all__ = [
    "BlobFetcher",
    "BlobSource",
    "BlobStat",
    "BlobStore",
    "BlobWriter",
    "StorageConfig",
    "StorageError",
    "StorageFull",
    "Subscription",
    "Temporary",
    "clear_stale",
    "open_blob_store",
    "write_bytes",
    "writing",
]


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where and how blobs are stored (see README "Storage backends")."""

    data_dir: Path
    url: str = ""
    """Empty: files under `data_dir`; `s3://bucket/prefix`: S3-compatible object storage."""
    durability: str = "full"
    """Filesystem: `full` fsyncs file and directory before a blob is published; `none` not."""
    s3_endpoint_url: str = ""
    """S3-compatible server (`http://127.0.0.1:9000`); empty: AWS."""
    s3_addressing: str = "auto"
    """`path` (`endpoint/bucket/key`), `virtual` (`bucket.endpoint/key`) or `auto`."""
    s3_serve: str = "redirect"
    """Registry GETs of S3 blobs: `redirect` to a presigned URL, or `stream` through."""
    s3_presign_seconds: int = 300
    """Lifetime of a presigned blob URL."""


@contextlib.asynccontextmanager
async def open_blob_store(
    config: StorageConfig, sender: FileSender | None = None
) -> AsyncIterator[BlobStore]:
    """The store `config` selects, closed on exit; a filesystem store sends registry GET
    bodies through `sender` when given."""
    store: BlobStore
    if config.url.startswith("s3://"):
        from server.storage.s3 import S3BlobStore  # the S3 client loads only when used

        store = await S3BlobStore.open(config)
    elif config.url == "" or config.url.startswith("file://"):
        from server.storage.filesystem import FilesystemBlobStore

        root = (
            Path(config.url.removeprefix("file://")) if config.url.startswith("file://") else None
        )
        store = FilesystemBlobStore(root or config.data_dir, config.durability, sender)
    else:
        raise ValueError(
            f"storage URL must be s3://bucket[/prefix] or file:///path, got {config.url!r}"
        )
    try:
        yield store
    finally:
        await store.aclose()
