"""The OCI distribution pull API of the registry endpoint, over raw HTTP (aiohttp, no skopeo).

Two distributions are published: ``mirror/app`` (a Docker image, an OCI image and an OCI
index under several tags) and ``mirror/other`` (one more Docker image). Requests are sent with
``yarl.URL(..., encoded=True)`` so odd paths reach the server exactly as written.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import field_mask_pb2
from yarl import URL

from protos import mirror_pb2 as pb
from tests.e2e.conftest import E2E, blob_path, needs_registry
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = [pytest.mark.registry, needs_registry]

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
EXTRA_TAGS = ["1-0", "1.0", "1_0", "A", "Z", "a", "z"]  # byte order != a locale's order


@dataclass
class Published:
    docker: img.Image
    oci: img.Image
    index: img.Index
    other: img.Image

    @property
    def app_tags(self) -> list[str]:
        return sorted(["docker", "oci", "index", *EXTRA_TAGS])


@pytest.fixture
async def published(e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str) -> Published:
    p = Published(
        docker=img.make_image("http-docker", layers=2, layer_size=4096),
        oci=img.make_image("http-oci", layers=1, media="oci"),
        index=img.make_index("http-index", media="oci", platforms=img.PLATFORMS[:2]),
        other=img.make_image("http-other", layers=1),
    )
    url = upstream_registry.url
    other = upstream_name + "-other"

    async def push_app() -> None:
        await img.push_image(url, upstream_name, "docker", p.docker)
        await img.push_image(url, upstream_name, "oci", p.oci)
        await img.push_index(url, upstream_name, "index", p.index)
        async with img.RegistryClient(url) as client:
            for tag in EXTRA_TAGS:
                await client.put_manifest(
                    upstream_name, tag, p.docker.manifest, p.docker.media_type
                )
        await e2e.publish("app", url, upstream_name, "mirror/app")

    async def push_other() -> None:
        await img.push_image(url, other, "only-other", p.other)
        await e2e.publish("other", url, other, "mirror/other")

    async with asyncio.TaskGroup() as group:
        group.create_task(push_app())
        group.create_task(push_other())
    return p


async def request(
    e2e: E2E, method: str, raw_path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, bytes]:
    """Send ``raw_path`` exactly as written; (status, headers, body)."""
    url = URL(e2e.base_url + raw_path, encoded=True)
    async with e2e.http.request(method, url, headers=headers or {}) as resp:
        return resp.status, resp.headers, await resp.read()


def error_codes(body: bytes) -> list[str]:
    return [e["code"] for e in json.loads(body)["errors"]]


def next_link(headers: Any) -> str | None:
    link = headers.get("Link")
    if link is None:
        return None
    target, _, rel = link.partition(";")
    assert rel.strip() == 'rel="next"', link
    assert target.startswith("<") and target.endswith(">"), link
    return target[1:-1]


async def test_base_catalog_and_tags_list(e2e: E2E, published: Published) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = await request(e2e, method, "/v2/")
        assert status == 200
        assert headers[API_VERSION[0]] == API_VERSION[1]
        if method == "GET":
            assert json.loads(body) == {}

    status, headers, body = await request(e2e, "GET", "/v2/_catalog")
    assert status == 200
    assert json.loads(body) == {"repositories": ["mirror/app", "mirror/other"]}
    assert "Link" not in headers

    pages: list[list[str]] = []
    path: str | None = "/v2/_catalog?n=1"
    while path is not None:
        status, headers, body = await request(e2e, "GET", path)
        assert status == 200
        assert headers[API_VERSION[0]] == API_VERSION[1]
        pages.append(json.loads(body)["repositories"])
        path = next_link(headers)
        assert len(pages) <= 3, "pagination does not end"
    assert pages == [["mirror/app"], ["mirror/other"]]

    status, _, body = await request(e2e, "GET", "/v2/_catalog?n=abc")
    assert status == 400
    assert error_codes(body) == ["PAGINATION_NUMBER_INVALID"]

    everything = published.app_tags
    status, headers, body = await request(e2e, "GET", "/v2/mirror/app/tags/list")
    assert status == 200
    assert json.loads(body) == {"name": "mirror/app", "tags": everything}  # lexical order
    assert "Link" not in headers

    collected: list[str] = []
    tags_path: str | None = "/v2/mirror/app/tags/list?n=3"
    pages = 0
    while tags_path is not None:
        status, headers, body = await request(e2e, "GET", tags_path)
        assert status == 200
        tags = json.loads(body)["tags"]
        assert 1 <= len(tags) <= 3
        collected += tags
        tags_path = next_link(headers)
        pages += 1
        assert pages <= len(everything), "pagination does not end"
    assert collected == everything
    assert pages == 4  # 10 tags in pages of 3

    status, headers, body = await request(e2e, "GET", "/v2/mirror/app/tags/list?n=2&last=Z")
    assert json.loads(body)["tags"] == everything[everything.index("Z") + 1 :][:2]
    assert next_link(headers) is not None
    status, headers, body = await request(e2e, "GET", "/v2/mirror/app/tags/list?last=oci")
    assert json.loads(body)["tags"] == ["z"]
    assert "Link" not in headers
    status, _, body = await request(e2e, "GET", "/v2/mirror/other/tags/list")
    assert json.loads(body) == {"name": "mirror/other", "tags": ["only-other"]}


async def test_manifest_and_blob_reads(e2e: E2E, published: Published) -> None:
    """Manifests: exact bytes and headers, GET and HEAD, by tag and digest. Blobs: bytes,
    HEAD, Range (206 with the slice, 416 past the end, never 500)."""
    kinds: list[tuple[str, img.Image | img.Index]] = [
        ("docker", published.docker),
        ("oci", published.oci),
        ("index", published.index),
        *((child.digest, child) for child in published.index.children),
    ]
    for kind, artifact in kinds:
        await check_manifest(e2e, kind, artifact)
        if kind in ("docker", "oci", "index"):
            await check_manifest(e2e, artifact.digest, artifact)
    await check_blob_reads(e2e, published)


async def check_manifest(e2e: E2E, reference: str, artifact: img.Image | img.Index) -> None:
    path = f"/v2/mirror/app/manifests/{reference}"
    accept = {"Accept": ", ".join(img.ALL_MANIFEST_TYPES)}
    status, headers, body = await request(e2e, "GET", path, accept)
    assert status == 200, body
    assert body == artifact.manifest  # the exact bytes
    assert headers["Content-Type"] == artifact.media_type
    assert headers["Docker-Content-Digest"] == artifact.digest
    assert headers["Content-Length"] == str(artifact.size)
    assert headers["ETag"] == f'"{artifact.digest}"'
    assert headers[API_VERSION[0]] == API_VERSION[1]

    status, head_headers, head_body = await request(e2e, "HEAD", path, accept)
    assert status == 200
    assert head_body == b""
    for name in ("Content-Type", "Docker-Content-Digest", "Content-Length", "ETag"):
        assert head_headers[name] == headers[name], name


async def check_blob_reads(e2e: E2E, published: Published) -> None:
    layer = published.docker.layers[1]
    data = layer.blob
    path = f"/v2/mirror/app/blobs/{layer.digest}"
    assert blob_path(e2e.data_dir, layer.digest).read_bytes() == data  # IMMEDIATE: on disk

    status, headers, body = await request(e2e, "GET", path)
    assert status == 200
    assert body == data
    assert headers["Docker-Content-Digest"] == layer.digest
    assert headers["Content-Length"] == str(len(data))
    status, headers, body = await request(e2e, "HEAD", path)
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(data))
    assert headers["Docker-Content-Digest"] == layer.digest

    size = len(data)
    cases = {
        "bytes=10-99": (10, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-7": (size - 7, size - 1),
        f"bytes=0-{size + 50}": (0, size - 1),  # an end past the blob is clamped
    }
    for spec, (first, last) in cases.items():
        status, headers, body = await request(e2e, "GET", path, {"Range": spec})
        assert status == 206, spec
        assert body == data[first : last + 1], spec
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}", spec
        assert headers["Content-Length"] == str(last - first + 1), spec

    for spec in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
        status, headers, _ = await request(e2e, "GET", path, {"Range": spec})
        assert status == 416, spec  # never 500
        assert headers["Content-Range"] == f"bytes */{size}"

    image = published.oci
    status, _, body = await request(e2e, "GET", f"/v2/mirror/app/blobs/{image.config_digest}")
    assert (status, body) == (200, image.config)


async def test_errors_traversal_and_writes(e2e: E2E, published: Published) -> None:
    """Spec error codes; odd paths get a 4xx JSON error (never 500, never a file); every
    write into a mirror is refused (DENIED, or UNSUPPORTED where no route exists) and changes
    nothing."""
    other_layer = published.other.layers[0].digest
    unknown = img.digest_of(b"nowhere")
    cases = [
        ("GET", "/v2/nope/app/tags/list", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/nope/manifests/latest", 404, "NAME_UNKNOWN"),
        ("GET", f"/v2/nope/blobs/{unknown}", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/mirror/app/manifests/no-such-tag", 404, "MANIFEST_UNKNOWN"),
        ("GET", f"/v2/mirror/app/manifests/{unknown}", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/mirror/app/manifests/sha256:xyz", 400, "DIGEST_INVALID"),
        ("GET", "/v2/mirror/app/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
        ("GET", "/v2/mirror/app/blobs/latest", 400, "DIGEST_INVALID"),
        ("GET", f"/v2/mirror/app/blobs/{unknown}", 404, "BLOB_UNKNOWN"),
        # present in mirror/other's repository (and on disk), not in mirror/app's
        ("GET", f"/v2/mirror/app/blobs/{other_layer}", 404, "BLOB_UNKNOWN"),
        ("GET", f"/v2/mirror/app/manifests/{published.other.digest}", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/Mirror/App/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/mirror/app/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"),
    ]
    failures = []
    for method, path, want_status, want_code in cases:
        status, headers, body = await request(e2e, method, path)
        try:
            assert status == want_status
            assert headers["Content-Type"].startswith("application/json")
            assert error_codes(body) == [want_code]
        except (AssertionError, KeyError, ValueError):
            failures.append(f"{method} {path} -> {status} {body[:200]!r}")
    assert not failures, "\n".join(failures)
    assert blob_path(e2e.data_dir, other_layer).is_file()
    status, _, body = await request(e2e, "GET", f"/v2/mirror/other/blobs/{other_layer}")
    assert (status, body) == (200, published.other.layers[0].blob)

    for path in ("/v2/nope/manifests/latest", "/v2/mirror/app/manifests/no-such-tag"):
        status, _, body = await request(e2e, "HEAD", path)
        assert (status, body) == (404, b""), path

    await check_traversal_and_writes(e2e, published)


TRAVERSALS = [
    "/v2/../etc/passwd",
    "/v2/%2e%2e/%2e%2e/etc/passwd",
    "/v2/mirror/%2e%2e/app/tags/list",
    "/v2/mirror/../mirror/app/tags/list",
    "/v2/mirror/app/%2e%2e/%2e%2e/tags/list",
    "/v2/mirror//app/tags/list",
    "/v2/mirror/app/blobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/v2/mirror/app/manifests/..%2f..%2fetc%2fpasswd",
    "/v2/mirror/app%00/tags/list",
]


async def check_traversal_and_writes(e2e: E2E, published: Published) -> None:
    layer = published.docker.layers[0].digest
    write_paths = [
        "/v2/mirror/app/manifests/docker",
        f"/v2/mirror/app/manifests/{published.docker.digest}",
        "/v2/mirror/app/blobs/uploads/",
        f"/v2/mirror/app/blobs/uploads/?digest={layer}",
        f"/v2/mirror/app/blobs/{layer}",
        "/v2/brand/new/blobs/uploads/",
    ]
    failures = []
    for path in TRAVERSALS:
        status, headers, body = await request(e2e, "GET", path)
        try:
            assert 400 <= status < 500
            assert headers["Content-Type"].startswith("application/json")
            assert error_codes(body)
            assert b"root:" not in body
        except (AssertionError, KeyError, ValueError):
            failures.append(f"GET {path} -> {status} {body[:200]!r}")
    # A mirror refuses every write (403 DENIED where the route exists, 405 UNSUPPORTED where
    # none does); an unknown base path is unknown.
    await e2e.repositories.UpdateRepository(
        pb.UpdateRepositoryRequest(
            repository=pb.Repository(name="repositories/app", mirror=True),
            update_mask=field_mask_pb2.FieldMask(paths=["mirror"]),
        )
    )
    expected = {403: ["DENIED"], 405: ["UNSUPPORTED"]}
    for method in ("PUT", "POST", "PATCH", "DELETE"):
        for path in write_paths:
            status, headers, body = await request(e2e, method, path)
            try:
                assert headers["Content-Type"].startswith("application/json")
                if path.startswith("/v2/brand/new/"):
                    assert (status, error_codes(body)) in [
                        (404, ["NAME_UNKNOWN"]),
                        (405, ["UNSUPPORTED"]),
                    ]
                else:
                    assert error_codes(body) == expected[status]
            except (AssertionError, KeyError, ValueError):
                failures.append(f"{method} {path} -> {status} {body[:200]!r}")
    assert not list((e2e.data_dir / "uploads").iterdir())
    assert not failures, "\n".join(failures)

    status, _, body = await request(e2e, "GET", "/v2/mirror/app/manifests/docker")
    assert (status, body) == (200, published.docker.manifest)
    status, _, _ = await request(e2e, "GET", "/v2/brand/new/tags/list")
    assert status == 404


# ---------------------------------------------------------------------------- known bugs
@pytest.fixture
async def app_only(e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str) -> img.Image:
    """One OCI image at ``mirror/app:docker`` (cheaper than ``published``)."""
    image = img.make_image("http-bug", layers=1, media="oci")
    await img.push_image(upstream_registry.url, upstream_name, "docker", image)
    await e2e.publish("app", upstream_registry.url, upstream_name, "mirror/app")
    return image


async def test_encoded_slash_is_not_a_separator(e2e: E2E, app_only: img.Image) -> None:
    failures = []
    for path in ("/v2/mirror%2Fapp/tags/list", "/v2/mirror%2fapp/manifests/docker"):
        status, headers, body = await request(e2e, "GET", path)
        if not (400 <= status < 500 and headers["Content-Type"].startswith("application/json")):
            failures.append(f"GET {path} -> {status} {body[:120]!r}")
    assert not failures, "\n".join(failures)


async def test_unrouted_get_is_not_found(e2e: E2E, app_only: img.Image) -> None:
    failures = []
    for method in ("GET", "HEAD"):
        for tail in ("unknown-endpoint", "blobs/uploads/5b4b3c8e-0000-4000-8000-000000000000"):
            path = f"/v2/mirror/app/{tail}"
            status, _, body = await request(e2e, method, path)
            if status != 404:
                failures.append(f"{method} {path} -> {status} {body[:120]!r}")
    assert not failures, "\n".join(failures)
