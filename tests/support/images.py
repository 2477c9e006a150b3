"""Deterministic test images and a tiny registry push/pull client (aiohttp).

Building (pure, no I/O; the same seed always gives the same bytes and digests):

* :func:`make_layer` - a real gzip'd tar (``tarfile`` + ``gzip`` with ``mtime=0``) whose
  file contents come from ``random.Random(seed)``.
* :func:`make_image` - a Docker schema2 (``media="docker"``) or OCI (``media="oci"``)
  image manifest with a config whose ``rootfs.diff_ids`` are the sha256 of the
  uncompressed tars; ``shared_base`` puts a given layer first so images share blobs.
* :func:`make_index` - an OCI image index or a Docker manifest list over 2-3
  platforms (linux/amd64, linux/arm64/v8, linux/arm/v7).
* :func:`make_cosign_signature` - a cosign-style signature manifest (tag from
  :func:`cosign_signature_tag`, ``sha256-<hex>.sig``).

:class:`Image` / :class:`Index` expose ``manifest`` bytes, ``digest``, ``media_type`` and
``blobs`` (``{digest: bytes}``) so tests can assert exactly what a mirror must serve.

Talking to a registry (:class:`RegistryClient`, or the one-shot helpers
:func:`push_image`, :func:`push_index`, :func:`delete_manifest`, :func:`delete_tag`,
:func:`get_manifest`, :func:`get_blob`, :func:`list_tags`, and ``*_sync`` wrappers):
blobs are pushed by monolithic upload (``POST /v2/<name>/blobs/uploads/`` then
``PUT <location>?digest=``), skipped when ``HEAD`` finds them; manifests by
``PUT /v2/<name>/manifests/<ref>`` with their media type. Basic auth and the Docker
token flow (``WWW-Authenticate: Bearer realm=,service=,scope=``) are handled.

Note on deletion: distribution has no "delete tag" call. ``DELETE`` takes a manifest
*digest* and removes the manifest together with **every** tag pointing at it;
:func:`delete_tag` therefore resolves the tag and deletes its digest.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import random
import re
import tarfile
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urljoin

import aiohttp

__all__ = [
    "ALL_MANIFEST_TYPES",
    "COSIGN_SIMPLESIGNING",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "PLATFORMS",
    "Auth",
    "Image",
    "Index",
    "Layer",
    "Platform",
    "RegistryClient",
    "RegistryHTTPError",
    "basic_auth_header",
    "cosign_signature_tag",
    "delete_manifest",
    "delete_tag",
    "digest_of",
    "get_blob",
    "get_manifest",
    "list_tags",
    "make_cosign_signature",
    "make_image",
    "make_index",
    "make_layer",
    "parse_www_authenticate",
    "push_image",
    "push_image_sync",
    "push_index",
    "push_index_sync",
    "run_sync",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ALL_MANIFEST_TYPES: tuple[str, ...] = (
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
)
"""Media types to list in ``Accept`` when fetching any manifest."""

Media = Literal["docker", "oci"]
Auth = tuple[str, str] | None
"""``(user, password)`` for Basic auth or for the token realm, or None (anonymous)."""

T = TypeVar("T")


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=3, separators=(",", ": ")).encode() + b"\n"


# ---------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Platform:
    """An image platform (``os``/``architecture``/optional ``variant``)."""

    os: str
    architecture: str
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The ``platform`` object of an index entry."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


PLATFORMS: tuple[Platform, ...] = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("linux", "arm", "v7"),
)
"""The default platforms of :func:`make_index` (use ``PLATFORMS[:2]`` for two)."""


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob and its uncompressed ``diff_id``."""

    blob: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        """Digest of the compressed blob."""
        return digest_of(self.blob)

    @property
    def size(self) -> int:
        """Size of the compressed blob."""
        return len(self.blob)

    @classmethod
    def from_blob(cls, blob: bytes) -> Layer:
        """Wrap an existing gzip'd tar blob (computes its ``diff_id``)."""
        return cls(blob, digest_of(gzip.decompress(blob)))


@dataclass(frozen=True)
class Image:
    """A single-platform image: manifest, config and layers (all as raw bytes)."""

    manifest: bytes
    media_type: str
    config: bytes
    config_media_type: str
    layers: tuple[Layer, ...]
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Digest of the manifest bytes."""
        return digest_of(self.manifest)

    @property
    def size(self) -> int:
        """Size of the manifest bytes."""
        return len(self.manifest)

    @property
    def config_digest(self) -> str:
        """Digest of the config blob."""
        return digest_of(self.config)

    @property
    def blobs(self) -> dict[str, bytes]:
        """``{digest: bytes}`` of the config and every layer."""
        out = {self.config_digest: self.config}
        for layer in self.layers:
            out[layer.digest] = layer.blob
        return out

    @property
    def manifests(self) -> dict[str, tuple[str, bytes]]:
        """``{digest: (media_type, bytes)}`` of the manifest(s) (just this one)."""
        return {self.digest: (self.media_type, self.manifest)}

    def descriptor(self, with_platform: bool = True) -> dict[str, Any]:
        """The descriptor of this manifest, as used in an index / manifest list."""
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if with_platform and self.platform is not None:
            desc["platform"] = self.platform.as_dict()
        return desc


@dataclass(frozen=True)
class Index:
    """A multi-platform OCI image index or Docker manifest list and its children."""

    manifest: bytes
    media_type: str
    children: tuple[Image, ...]

    @property
    def digest(self) -> str:
        """Digest of the index bytes."""
        return digest_of(self.manifest)

    @property
    def size(self) -> int:
        """Size of the index bytes."""
        return len(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        """``{digest: bytes}`` of all blobs of all children (shared blobs appear once)."""
        out: dict[str, bytes] = {}
        for child in self.children:
            out.update(child.blobs)
        return out

    @property
    def manifests(self) -> dict[str, tuple[str, bytes]]:
        """``{digest: (media_type, bytes)}`` of the index and every child manifest."""
        out = {self.digest: (self.media_type, self.manifest)}
        for child in self.children:
            out.update(child.manifests)
        return out

    def child(self, platform: str) -> Image:
        """The child image for ``"os/arch[/variant]"``."""
        for image in self.children:
            if str(image.platform) == platform:
                return image
        raise KeyError(platform)


# ---------------------------------------------------------------------------- builders
def make_layer(seed: int | str, size: int = 2048, files: int = 2) -> Layer:
    """A deterministic gzip'd tar with ``files`` files totalling ~``size`` random bytes.

    Random content is incompressible, so the blob is roughly ``size`` + ~1 KiB.
    """
    rng = random.Random(f"layer:{seed}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        dir_info = tarfile.TarInfo("data")
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        dir_info.mtime = 0
        tar.addfile(dir_info)
        per_file = max(1, size // max(1, files))
        for i in range(files):
            content = rng.randbytes(per_file)
            info = tarfile.TarInfo(f"data/{seed}-{i}.bin")
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    blob = gzip.compress(uncompressed, compresslevel=6, mtime=0)
    return Layer(blob, digest_of(uncompressed))


def _as_layers(shared_base: Layer | bytes | Sequence[Layer] | None) -> list[Layer]:
    if shared_base is None:
        return []
    if isinstance(shared_base, Layer):
        return [shared_base]
    if isinstance(shared_base, bytes | bytearray):
        return [Layer.from_blob(bytes(shared_base))]
    return list(shared_base)


def make_image(
    seed: int | str,
    layers: int = 2,
    layer_size: int = 2048,
    media: Media = "docker",
    shared_base: Layer | bytes | Sequence[Layer] | None = None,
    platform: Platform | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Image:
    """Build a deterministic single-platform image.

    ``layers`` new layers (seeded from ``seed``) follow the ``shared_base`` layer(s): a
    :class:`Layer`, a gzip'd tar blob, or a sequence of layers, so several images can
    share base blobs. ``media`` picks Docker schema2 or OCI media types; ``platform``
    defaults to linux/amd64. ``annotations`` go on an OCI manifest only.
    """
    platform = platform or PLATFORMS[0]
    all_layers = _as_layers(shared_base) + [
        make_layer(f"{seed}:{i}", layer_size) for i in range(layers)
    ]
    config_obj: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
    }
    if platform.variant:
        config_obj["variant"] = platform.variant
    config_obj.update(
        {
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": {"org.example.mirror.seed": str(seed)},
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in all_layers]},
            "history": [
                {"created": "1970-01-01T00:00:00Z", "created_by": f"layer {i}"}
                for i in range(len(all_layers))
            ],
        }
    )
    config = _json_bytes(config_obj)
    if media == "docker":
        media_type, config_type, layer_type = DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER
    elif media == "oci":
        media_type, config_type, layer_type = OCI_MANIFEST, OCI_CONFIG, OCI_LAYER
    else:
        raise ValueError(f"unknown media {media!r}")
    manifest_obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": digest_of(config), "size": len(config)},
        "layers": [
            {"mediaType": layer_type, "digest": layer.digest, "size": layer.size}
            for layer in all_layers
        ],
    }
    if annotations and media == "oci":
        manifest_obj["annotations"] = dict(annotations)
    return Image(
        manifest=_json_bytes(manifest_obj),
        media_type=media_type,
        config=config,
        config_media_type=config_type,
        layers=tuple(all_layers),
        platform=platform,
        annotations=dict(annotations or {}),
    )


def make_index(
    seed: int | str,
    platforms: Sequence[Platform] = PLATFORMS,
    media: Media = "oci",
    layers: int = 1,
    layer_size: int = 1024,
    shared_base: Layer | bytes | Sequence[Layer] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Index:
    """Build an OCI image index (``media="oci"``) or Docker manifest list (``"docker"``)
    with one child image per platform (children use the same media family)."""
    children = tuple(
        make_image(
            f"{seed}/{platform}",
            layers=layers,
            layer_size=layer_size,
            media=media,
            shared_base=shared_base,
            platform=platform,
        )
        for platform in platforms
    )
    media_type = OCI_INDEX if media == "oci" else DOCKER_MANIFEST_LIST
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [child.descriptor() for child in children],
    }
    if annotations and media == "oci":
        obj["annotations"] = dict(annotations)
    return Index(manifest=_json_bytes(obj), media_type=media_type, children=children)


def cosign_signature_tag(subject_digest: str) -> str:
    """Cosign's tag for the signature of ``subject_digest``: ``sha256-<hex>.sig``."""
    algo, _, hexpart = subject_digest.partition(":")
    return f"{algo}-{hexpart}.sig"


def make_cosign_signature(
    subject_digest: str, seed: int | str = 0, reference: str = "registry.example/repo"
) -> Image:
    """A cosign-style signature manifest for ``subject_digest`` (push it under
    :func:`cosign_signature_tag`). The signature itself is random, not verifiable."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": subject_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    rng = random.Random(f"cosign:{seed}:{subject_digest}")
    signature = base64.b64encode(rng.randbytes(71)).decode()
    layer = Layer(payload, digest_of(payload))
    config = _json_bytes(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }
    )
    manifest = _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": COSIGN_SIMPLESIGNING,
                    "digest": layer.digest,
                    "size": layer.size,
                    "annotations": {"dev.cosignproject.cosign/signature": signature},
                }
            ],
        }
    )
    return Image(
        manifest=manifest,
        media_type=OCI_MANIFEST,
        config=config,
        config_media_type=OCI_CONFIG,
        layers=(layer,),
        platform=None,
        annotations={"dev.cosignproject.cosign/signature": signature},
    )


# ---------------------------------------------------------------------------- client
class RegistryHTTPError(RuntimeError):
    """A registry answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {body[:500]}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body


_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_www_authenticate(header: str) -> tuple[str, dict[str, str]]:
    """Parse ``Bearer realm="..",service="..",scope=".."`` into ``("bearer", {...})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def basic_auth_header(auth: tuple[str, str]) -> str:
    """``Authorization`` value for HTTP Basic (aiohttp 3.14 deprecates ``BasicAuth``)."""
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


class RegistryClient:
    """Minimal Registry v2 HTTP client for tests (push/pull/delete/list).

    ``async with RegistryClient(url, auth=("user", "pw")) as client: ...``. On a 401 it
    retries with Basic auth or, for a Bearer challenge, with a token fetched from the
    realm (credentials sent as Basic if given); tokens are cached per scope.
    """

    def __init__(
        self,
        registry_url: str,
        auth: Auth = None,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """``registry_url`` like ``http://127.0.0.1:5000``; pass ``session`` to share one."""
        self.base = registry_url.rstrip("/")
        self.auth = auth
        self._session = session
        self._owns_session = session is None
        self._tokens: dict[str, str] = {}
        self._basic = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The underlying session (created lazily; raw bytes, no auto-decompression)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
            self._owns_session = True
        return self._session

    # -------------------------------------------------------------- low level
    async def _fetch_token(self, params: Mapping[str, str], scope: str) -> str:
        query: dict[str, str] = {}
        if params.get("service"):
            query["service"] = params["service"]
        if scope:
            query["scope"] = scope
        headers = {"Authorization": basic_auth_header(self.auth)} if self.auth else {}
        async with self.session.get(params["realm"], params=query, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RegistryHTTPError("GET", params["realm"], resp.status, body.decode())
            data = json.loads(body)
        return str(data.get("token") or data["access_token"])

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": "Bearer " + self._tokens[scope]}
        if self._basic and self.auth:
            return {"Authorization": basic_auth_header(self.auth)}
        return {}

    async def request(
        self,
        method: str,
        url: str,
        *,
        scope: str = "",
        expected: Iterable[int] = (200,),
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send a request (absolute or ``/v2/...`` URL), authenticating on 401.

        Returns ``(status, headers, body)``; raises :class:`RegistryHTTPError` when the
        final status is not in ``expected``.
        """
        if url.startswith("/"):
            url = self.base + url
        expected = tuple(expected)
        status, resp_headers, body = 0, {}, b""
        for _attempt in range(3):
            all_headers = {**(headers or {}), **self._auth_header(scope)}
            async with self.session.request(
                method, url, headers=all_headers, data=data, params=params, allow_redirects=False
            ) as resp:
                status, resp_headers, body = resp.status, resp.headers.copy(), await resp.read()
            if status != 401:
                break
            scheme, challenge = parse_www_authenticate(resp_headers.get("WWW-Authenticate", ""))
            if scheme == "basic" and self.auth and not self._basic:
                self._basic = True
            elif scheme == "bearer" and "realm" in challenge:
                wanted = challenge.get("scope") or scope
                token = await self._fetch_token(challenge, wanted)
                self._tokens[scope] = token
            else:
                break
        if status not in expected:
            raise RegistryHTTPError(method, url, status, body.decode(errors="replace"))
        return status, resp_headers, body

    # -------------------------------------------------------------- blobs
    async def blob_exists(self, repo: str, digest: str) -> bool:
        """``HEAD /v2/<repo>/blobs/<digest>`` is 200."""
        status, _, _ = await self.request(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scope=f"repository:{repo}:pull",
            expected=(200, 404),
        )
        return status == 200

    async def push_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        """Monolithic upload (POST then PUT ``?digest=``) unless the blob already exists."""
        digest = digest or digest_of(data)
        if await self.blob_exists(repo, digest):
            return digest
        scope = f"repository:{repo}:pull,push"
        _, headers, _ = await self.request(
            "POST", f"/v2/{repo}/blobs/uploads/", scope=scope, expected=(202,)
        )
        location = urljoin(self.base + "/", headers["Location"])
        sep = "&" if "?" in location else "?"
        await self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            scope=scope,
            expected=(201,),
            headers={"Content-Type": "application/octet-stream"},
            data=data,
        )
        return digest

    async def get_blob(self, repo: str, digest: str) -> bytes:
        """``GET /v2/<repo>/blobs/<digest>`` (the filesystem driver serves it directly)."""
        _, _, body = await self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull"
        )
        return body

    # -------------------------------------------------------------- manifests
    async def put_manifest(self, repo: str, ref: str, manifest: bytes, media_type: str) -> str:
        """``PUT /v2/<repo>/manifests/<ref>``; returns ``Docker-Content-Digest``."""
        _, headers, _ = await self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            scope=f"repository:{repo}:pull,push",
            expected=(201,),
            headers={"Content-Type": media_type},
            data=manifest,
        )
        return headers.get("Docker-Content-Digest", digest_of(manifest))

    async def get_manifest(
        self, repo: str, ref: str, accept: Sequence[str] = ALL_MANIFEST_TYPES
    ) -> tuple[bytes, str, str]:
        """Fetch a manifest; returns ``(bytes, media_type, digest)``."""
        _, headers, body = await self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            scope=f"repository:{repo}:pull",
            headers={"Accept": ", ".join(accept)},
        )
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        return body, media_type, headers.get("Docker-Content-Digest", digest_of(body))

    async def head_manifest(self, repo: str, ref: str) -> str | None:
        """Digest of ``ref`` via ``HEAD``, or None if unknown."""
        status, headers, _ = await self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{ref}",
            scope=f"repository:{repo}:pull",
            headers={"Accept": ", ".join(ALL_MANIFEST_TYPES)},
            expected=(200, 404),
        )
        return headers.get("Docker-Content-Digest") if status == 200 else None

    async def delete_manifest(self, repo: str, digest: str) -> None:
        """``DELETE /v2/<repo>/manifests/<digest>``: removes the manifest and *all its tags*."""
        await self.request(
            "DELETE",
            f"/v2/{repo}/manifests/{digest}",
            scope=f"repository:{repo}:delete",
            expected=(202,),
        )

    async def delete_tag(self, repo: str, tag: str) -> str:
        """Resolve ``tag`` and delete its manifest digest (other tags on it go too).

        Distribution cannot untag; returns the deleted digest.
        """
        digest = await self.head_manifest(repo, tag)
        if digest is None:
            raise RegistryHTTPError("HEAD", f"/v2/{repo}/manifests/{tag}", 404, "unknown tag")
        await self.delete_manifest(repo, digest)
        return digest

    async def list_tags(self, repo: str, n: int | None = None) -> list[str]:
        """All tags, following ``Link: <...>; rel="next"`` pages (``n`` per page)."""
        tags: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list" + (f"?n={n}" if n else "")
        while url:
            _, headers, body = await self.request("GET", url, scope=f"repository:{repo}:pull")
            tags.extend(json.loads(body).get("tags") or [])
            url = _next_link(headers.get("Link"))
        return tags

    # -------------------------------------------------------------- images
    async def push_image(self, repo: str, ref: str | None, image: Image) -> str:
        """Push blobs then the manifest under ``ref`` (tag or digest; None = by digest)."""
        for digest, data in image.blobs.items():
            await self.push_blob(repo, data, digest)
        return await self.put_manifest(repo, ref or image.digest, image.manifest, image.media_type)

    async def push_index(self, repo: str, ref: str | None, index: Index) -> str:
        """Push every child by digest, then the index under ``ref`` (None = by digest)."""
        for child in index.children:
            await self.push_image(repo, None, child)
        return await self.put_manifest(repo, ref or index.digest, index.manifest, index.media_type)


def _next_link(link: str | None) -> str | None:
    if not link:
        return None
    for part in link.split(","):
        m = re.match(r'\s*<([^>]*)>\s*;\s*rel="?next"?', part)
        if m:
            return m.group(1)
    return None


# ---------------------------------------------------------------------------- helpers
async def push_image(
    registry_url: str, repo: str, tag: str | None, image: Image, auth: Auth = None
) -> str:
    """Push ``image`` (blobs, then manifest under ``tag``; None = by digest); returns digest."""
    async with RegistryClient(registry_url, auth) as client:
        return await client.push_image(repo, tag, image)


async def push_index(
    registry_url: str, repo: str, tag: str | None, index: Index, auth: Auth = None
) -> str:
    """Push ``index`` (children by digest first); returns the index digest."""
    async with RegistryClient(registry_url, auth) as client:
        return await client.push_index(repo, tag, index)


async def delete_manifest(registry_url: str, repo: str, digest: str, auth: Auth = None) -> None:
    """Delete a manifest by digest (this also removes every tag pointing at it)."""
    async with RegistryClient(registry_url, auth) as client:
        await client.delete_manifest(repo, digest)


async def delete_tag(registry_url: str, repo: str, tag: str, auth: Auth = None) -> str:
    """Delete the manifest ``tag`` points at (distribution cannot untag); returns digest."""
    async with RegistryClient(registry_url, auth) as client:
        return await client.delete_tag(repo, tag)


async def get_manifest(
    registry_url: str, repo: str, ref: str, auth: Auth = None
) -> tuple[bytes, str, str]:
    """Fetch a manifest: ``(bytes, media_type, digest)``."""
    async with RegistryClient(registry_url, auth) as client:
        return await client.get_manifest(repo, ref)


async def get_blob(registry_url: str, repo: str, digest: str, auth: Auth = None) -> bytes:
    """Fetch a blob's bytes."""
    async with RegistryClient(registry_url, auth) as client:
        return await client.get_blob(repo, digest)


async def list_tags(
    registry_url: str, repo: str, auth: Auth = None, n: int | None = None
) -> list[str]:
    """All tags of ``repo`` (following pagination links)."""
    async with RegistryClient(registry_url, auth) as client:
        return await client.list_tags(repo, n)


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` to completion with ``asyncio.run`` (not from inside a loop)."""

    async def runner() -> T:
        return await factory()

    return asyncio.run(runner())


def push_image_sync(
    registry_url: str, repo: str, tag: str | None, image: Image, auth: Auth = None
) -> str:
    """Synchronous :func:`push_image`."""
    return run_sync(lambda: push_image(registry_url, repo, tag, image, auth))


def push_index_sync(
    registry_url: str, repo: str, tag: str | None, index: Index, auth: Auth = None
) -> str:
    """Synchronous :func:`push_index`."""
    return run_sync(lambda: push_index(registry_url, repo, tag, index, auth))
