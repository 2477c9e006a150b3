"""A real S3 endpoint for tests: moto's standalone server on a free loopback port.

No MinIO or Ceph can be installed here; `moto[server]` speaks the S3 HTTP API and the server
under test reaches it only over HTTP, with the production client (aiobotocore). One process
serves the whole test session; each test gets a bucket of its own.

`StorageView` is the tests' window into a blob store, whichever backend: the digests stored,
their bytes, the temporaries left, and a way to damage a blob behind the server's back. The
S3 view uses boto3 (moto's own dependency), not the server's code, so it checks the server
from outside.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

STORAGE_BACKENDS = pytest.mark.parametrize("storage_backend", ["fs", "s3"], indirect=True)
"""Mark a test to run over both blob stores: the filesystem and S3 (the moto server)."""
SERVING_BACKENDS = pytest.mark.parametrize(
    "storage_backend", ["fs", "s3", "s3-stream"], indirect=True
)
"""Both stores, and S3 served both ways: redirect to a presigned URL (`s3`) and `s3-stream`."""

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "mirror-test-key",
    "AWS_SECRET_ACCESS_KEY": "mirror-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_available() -> bool:
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """`python -m moto.server` on 127.0.0.1:<free port>, stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_dir / "moto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        with open(self._log_path, "wb") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **CREDENTIALS},
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto server did not start: {self._log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def new_bucket(self) -> str:
        name = f"mirror-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


class StorageView(Protocol):
    """What a test may look at in a blob store."""

    def digests(self) -> set[str]: ...
    def read(self, digest: str) -> bytes | None: ...
    def write(self, digest: str, data: bytes) -> None: ...
    def remove(self, digest: str) -> None: ...
    def temporaries(self) -> list[str]: ...


def _key(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"


class FilesystemView:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / _key(digest)

    def digests(self) -> set[str]:
        base = self.root / "blobs"
        return {f"{p.parent.parent.name}:{p.name}" for p in base.rglob("*") if p.is_file()}

    def read(self, digest: str) -> bytes | None:
        path = self.path(digest)
        return path.read_bytes() if path.is_file() else None

    def write(self, digest: str, data: bytes) -> None:
        self.path(digest).parent.mkdir(parents=True, exist_ok=True)
        self.path(digest).write_bytes(data)

    def remove(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def temporaries(self) -> list[str]:
        tmp = self.root / "tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


class S3View:
    def __init__(self, moto: MotoServer, bucket: str, prefix: str = "") -> None:
        self._client = moto.client()
        self.bucket = bucket
        self.prefix = prefix

    def digests(self) -> set[str]:
        found = set()
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                parts = item["Key"].removeprefix(self.prefix).split("/")
                found.add(f"{parts[1]}:{parts[3]}")
        return found

    def read(self, digest: str) -> bytes | None:
        try:
            got = self._client.get_object(Bucket=self.bucket, Key=self.prefix + _key(digest))
        except self._client.exceptions.NoSuchKey:
            return None
        return bytes(got["Body"].read())

    def write(self, digest: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.prefix + _key(digest), Body=data)

    def remove(self, digest: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.prefix + _key(digest))

    def temporaries(self) -> list[str]:
        """Open multipart uploads and the server's upload markers beside them."""
        found = self._client.list_multipart_uploads(Bucket=self.bucket)
        markers = self._client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}uploads/")
        return sorted(
            [u["Key"] for u in found.get("Uploads", [])]
            + [m["Key"] for m in markers.get("Contents", [])]
        )


def assert_sound(view: StorageView) -> set[str]:
    """Every stored blob re-hashes to its name; no temporary is left. The stored digests."""
    leftovers = view.temporaries()
    assert leftovers == [], f"temporaries left behind: {leftovers}"
    digests = view.digests()
    for digest in digests:
        algorithm, _, hexpart = digest.partition(":")
        data = view.read(digest)
        assert data is not None, digest
        actual = hashlib.new(algorithm, data).hexdigest()
        assert actual == hexpart, f"{digest} holds bytes hashing to {algorithm}:{actual}"
    return digests


@contextlib.contextmanager
def credentials_env() -> Iterator[None]:
    """The test credentials in the environment (botocore's standard chain reads them)."""
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
