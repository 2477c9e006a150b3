"""S3 addressing and presigned URLs: both styles reach the client, and URLs are short-lived
SigV4 links that carry no secret. Offline: presigning needs no server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from server.domain.digests import Digest
from server.storage import StorageConfig
from server.storage.s3 import S3BlobStore
from tests.support.s3 import credentials_env

DIGEST = Digest.of_bytes(b"layer")


@pytest.mark.parametrize(
    ("addressing", "host", "path"),
    [
        ("path", "s3.example.test", "/mirror-bucket/pre/fix/blobs/sha256/"),
        ("virtual", "mirror-bucket.s3.example.test", "/pre/fix/blobs/sha256/"),
    ],
)
async def test_addressing_style_and_presigned_url(
    tmp_path: Path, addressing: str, host: str, path: str
) -> None:
    config = StorageConfig(
        data_dir=tmp_path,
        url="s3://mirror-bucket/pre/fix/",
        s3_endpoint_url="https://s3.example.test",
        s3_addressing=addressing,
        s3_presign_seconds=120,
    )
    with credentials_env():
        store = await S3BlobStore.open(config, check_bucket=False)
        try:
            url = await store.presigned_url(DIGEST)
        finally:
            await store.aclose()
    parts = urlsplit(url)
    assert parts.netloc == host
    assert parts.path == f"{path}{DIGEST.hex[:2]}/{DIGEST.hex}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["120"]
    assert "mirror-test-secret" not in url
    assert store.name == "s3://mirror-bucket/pre/fix/"


async def test_bad_storage_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        await S3BlobStore.open(StorageConfig(data_dir=tmp_path, url="s3://"), check_bucket=False)
