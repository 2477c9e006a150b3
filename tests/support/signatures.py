"""Signature sources for tests: an extension server, a lookaside sigstore and real GPG keys.

* :class:`ExtensionServer` listens on a free loopback port and forwards every request to a
  real registry (distribution 2.8 has neither of the two APIs below) byte for byte, except
  ``GET /extensions/v2/<name>/signatures/<digest>`` (the docker signature extension, answered
  from :attr:`ExtensionServer.signatures`) and, once :attr:`ExtensionServer.referrers` is a
  dict, ``GET /v2/<name>/referrers/<digest>`` (the OCI 1.1 referrers API: an image index of
  the descriptors stored for that digest, empty for any other). ``signature_status`` /
  ``referrers_status`` make those routes fail with a status instead; ``referrers_page_size``
  pages the referrers (``Link: <...>; rel="next"``).
* :class:`LookasideServer` serves a lookaside sigstore (at :attr:`LookasideServer.sigstore`,
  under a path prefix) from a directory: ``<root>/<prefix>/<name>@sha256=<hex>/signature-N``,
  404 for anything missing; ``status`` makes every request fail instead.
* :class:`GpgKey` / :func:`create_gpg_key` make a real ed25519 signing key in a private
  GnuPG home; :meth:`GpgKey.sign_atomic` produces an atomic container signature (``gpg
  --sign`` of the simple-signing JSON) and :meth:`GpgKey.verify` checks bytes with ``gpgv``
  and only the exported public key.

Both servers log ``(method, path_qs)`` in ``requests``; ``hits(method, substring)`` counts.

Artifacts about an image: :func:`make_cosign_attestation` (a ``.att`` image),
:func:`make_referrer` (an OCI 1.1 artifact manifest whose ``subject`` is the image) and
:func:`make_referrers_index` (the index a registry without the referrers API keeps under the
fallback tag ``sha256-<hex>``). :func:`push_two` pushes the two images most tests start from;
:func:`present` reads a version's content summary.

:class:`MirrorApi` is what the tests use of the mirror: gRPC stubs and its pull endpoint,
given by the ``api`` fixture (:func:`api_fixture`); ``registry`` (:func:`registry_fixture`,
one real docker-registry per module) and ``gpg_key`` (:func:`gpg_key_fixture`, one key per
session) complete them. Import the fixtures with a ``# noqa: F401``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import grpc
import pytest
from aiohttp import web
from multidict import CIMultiDict

from client.auth import aio_interceptors
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.app import Services, start_registry
from tests.support import images as img
from tests.support.images import OCI_INDEX
from tests.support.registry import RegistryProcess, free_port
from tests.support.registry_auth import DockerTokenAuth

__all__ = [
    "ATOMIC_TYPE",
    "DSSE_ENVELOPE",
    "EMPTY_CONFIG",
    "NOTARY_SIGNATURE",
    "ExtensionServer",
    "GpgKey",
    "LookasideServer",
    "MirrorApi",
    "api_fixture",
    "atomic_payload",
    "cosign_tag",
    "create_gpg_key",
    "fallback_tag",
    "gpg_key_fixture",
    "lookaside_path",
    "make_cosign_attestation",
    "make_referrer",
    "make_referrers_index",
    "present",
    "push_two",
    "referrer_descriptor",
    "registry_fixture",
]

ATOMIC_TYPE = "atomic container signature"
SYNC_TIMEOUT = 30.0

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)
_SIGNATURES = re.compile(r"^/extensions/v2/(?P<name>.+)/signatures/(?P<digest>[^/]+)$")
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")


class _Server:
    """A small aiohttp server on a free loopback port with a request log."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def hits(self, method: str | None, path_substring: str) -> int:
        """Requests seen whose method matches (None: any) and path+query has the substring."""
        return sum(
            1
            for m, p in self.requests
            if (method is None or m.upper() == method.upper()) and path_substring in p
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def _logged(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.raw_path))
        return await self._handle(request)

    async def astart(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._logged)
        runner = web.AppRunner(app, access_log=None, auto_decompress=False, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    async def astop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()


class ExtensionServer(_Server):
    """A registry front: the signature extension and (optionally) the referrers API here,
    everything else forwarded to ``upstream_url``."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__()
        self.upstream = upstream_url.rstrip("/")
        # (repository name, manifest digest) -> extension entries
        self.signatures: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # None: forwarded (distribution answers 404, i.e. no referrers API);
        # a dict: (repository name, subject digest) -> descriptors
        self.referrers: dict[tuple[str, str], list[dict[str, Any]]] | None = None
        self.signature_status: int | None = None
        self.referrers_status: int | None = None
        # Serve referrers in pages of this many, linked by `Link: <...>; rel="next"`.
        self.referrers_page_size: int | None = None
        self._session: aiohttp.ClientSession | None = None

    def add_signature(
        self, name: str, digest: str, content: bytes, signature_name: str | None = None
    ) -> dict[str, Any]:
        """Serve ``content`` as an atomic signature of ``digest`` in repository ``name``."""
        entry = {
            "version": 2,
            "type": "atomic",
            "name": signature_name or f"{digest}@{len(self.signatures):032x}",
            "content": base64.b64encode(content).decode(),
        }
        self.signatures.setdefault((name, digest), []).append(entry)
        return entry

    def add_referrer(self, name: str, subject: str, descriptor: dict[str, Any]) -> None:
        """List ``descriptor`` among the referrers of ``subject`` (enables the API)."""
        if self.referrers is None:
            self.referrers = {}
        self.referrers.setdefault((name, subject), []).append(descriptor)

    async def astart(self) -> Self:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        try:
            return await super().astart()
        except BaseException:
            await self._session.close()
            raise

    async def astop(self) -> None:
        await super().astop()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            match = _SIGNATURES.match(request.path)
            if match is not None:
                if self.signature_status is not None:
                    return web.json_response({"errors": []}, status=self.signature_status)
                entries = self.signatures.get((match["name"], match["digest"]), [])
                return web.json_response({"signatures": entries})
            match = _REFERRERS.match(request.path)
            if match is not None and (
                self.referrers is not None or self.referrers_status is not None
            ):
                if self.referrers_status is not None:
                    return web.json_response({"errors": []}, status=self.referrers_status)
                return self._referrers_page(request, match["name"], match["digest"])
        return await self._forward(request)

    def _referrers_page(self, request: web.Request, name: str, digest: str) -> web.Response:
        assert self.referrers is not None
        found = self.referrers.get((name, digest), [])
        wanted = request.query.get("artifactType")
        headers = {"Content-Type": OCI_INDEX}
        if wanted:
            found = [d for d in found if d.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        if self.referrers_page_size is not None:
            start = int(request.query.get("page", "0"))
            end = start + self.referrers_page_size
            if end < len(found):
                headers["Link"] = f'<{request.path}?page={end}>; rel="next"'
            found = found[start:end]
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
        return web.Response(body=json.dumps(body).encode(), headers=headers)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        headers["Accept-Encoding"] = "identity"
        assert self._session is not None
        body = await request.read() if request.body_exists else None
        async with self._session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            data = await upstream.read()
            out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() in _HOP_BY_HOP:
                    continue
                if key.lower() in ("location", "link"):
                    value = value.replace(self.upstream, self.url)
                out.headers.add(key, value)
            length = upstream.content_length if request.method == "HEAD" else len(data)
            if length is not None:
                out.content_length = length
        await out.prepare(request)
        if request.method != "HEAD" and data:
            await out.write(data)
        await out.write_eof()
        return out


def lookaside_path(name: str, digest: str) -> str:
    """The directory of the signatures of ``digest`` in a sigstore: ``<name>@sha256=<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{name}@{algorithm}={hexpart}"


class LookasideServer(_Server):
    """A static lookaside sigstore serving the files under ``root`` at ``/<prefix>/``."""

    def __init__(self, root: Path, prefix: str = "sigstore") -> None:
        super().__init__()
        self.root = root
        self.prefix = prefix.strip("/")
        (self.root / self.prefix).mkdir(parents=True, exist_ok=True)
        self.status: int | None = None

    @property
    def sigstore(self) -> str:
        """The sigstore URL to configure: ``http://127.0.0.1:PORT/<prefix>/``."""
        return f"{self.url}/{self.prefix}/" if self.prefix else f"{self.url}/"

    def add(self, name: str, digest: str, *signatures: bytes) -> list[Path]:
        """Store ``signatures`` as ``signature-1``, ``signature-2``, ... of ``digest``."""
        directory = self.root / self.prefix / lookaside_path(name, digest)
        directory.mkdir(parents=True, exist_ok=True)
        first = len(list(directory.glob("signature-*"))) + 1
        paths = []
        for number, data in enumerate(signatures, first):
            path = directory / f"signature-{number}"
            path.write_bytes(data)
            paths.append(path)
        return paths

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.status is not None:
            return web.Response(status=self.status, text="sigstore failure (scripted)")
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        target = (self.root / request.path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            return web.Response(status=404, text="no such signature")
        return web.Response(body=target.read_bytes(), content_type="application/octet-stream")


def atomic_payload(
    docker_reference: str, manifest_digest: str, creator: str, timestamp: int
) -> bytes:
    """The JSON claims of an atomic container signature."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": ATOMIC_TYPE,
            },
            "optional": {"creator": creator, "timestamp": timestamp},
        },
        separators=(",", ":"),
    ).encode()


@dataclass
class GpgKey:
    """An ed25519 signing key in a private GnuPG home directory."""

    homedir: Path
    key_id: str  # long key id, 16 upper-case hex digits
    fingerprint: str
    public_key: Path = field(init=False)

    def __post_init__(self) -> None:
        self.public_key = self.homedir.parent / f"{self.key_id}.pub.gpg"
        self.public_key.write_bytes(self._gpg("--export", self.fingerprint))

    def _gpg(self, *args: str, data: bytes | None = None) -> bytes:
        return _run(
            [*_gpg_base(self.homedir), *args],
            data,
        )

    def sign(self, data: bytes, *, compress_algo: str | None = None) -> bytes:
        """``gpg --sign`` (an inline OpenPGP message, compressed with gpg's default unless
        ``compress_algo`` names another: ``zip``, ``zlib``, ``bzip2``, ``none``)."""
        extra = () if compress_algo is None else ("--compress-algo", compress_algo)
        return self._gpg("--local-user", self.fingerprint, *extra, "--sign", data=data)

    def sign_atomic(
        self,
        docker_reference: str,
        manifest_digest: str,
        *,
        creator: str = "mirror-tests",
        timestamp: int = 1_700_000_000,
        compress_algo: str | None = None,
    ) -> bytes:
        """A real atomic container signature of ``manifest_digest``."""
        payload = atomic_payload(docker_reference, manifest_digest, creator, timestamp)
        return self.sign(payload, compress_algo=compress_algo)

    def verify(self, signed: bytes, workdir: Path) -> bytes:
        """Verify ``signed`` with ``gpgv`` and only the exported public key; the signed
        payload. Raises ``AssertionError`` unless the signature is good and by this key."""
        workdir.mkdir(parents=True, exist_ok=True)
        message = workdir / "signature"
        message.write_bytes(signed)
        payload = workdir / "payload"
        payload.unlink(missing_ok=True)
        proc = subprocess.run(
            [
                *("gpgv", "--homedir", str(workdir), "--keyring", str(self.public_key)),
                *("--status-fd", "1", "--output", str(payload), str(message)),
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        status = proc.stdout.decode(errors="replace")
        assert proc.returncode == 0, f"gpgv failed: {status}\n{proc.stderr.decode()}"
        assert f"[GNUPG:] VALIDSIG {self.fingerprint}" in status, status
        return payload.read_bytes()

    def close(self) -> None:
        """Stop the gpg-agent that signing started for this home directory."""
        subprocess.run(
            ["gpgconf", "--homedir", str(self.homedir), "--kill", "gpg-agent"],
            capture_output=True,
            timeout=30,
            check=False,
        )


def create_gpg_key(
    directory: Path, uid: str = "Mirror Tests <mirror-tests@example.invalid>"
) -> GpgKey:
    """Generate an ed25519 signing key (no passphrase) in ``directory/gnupg``."""
    homedir = directory / "gnupg"
    homedir.mkdir(mode=0o700, parents=True)
    base = _gpg_base(homedir)
    _run([*base, "--quick-gen-key", uid, "ed25519", "sign", "never"])
    listing = _run([*base, "--list-keys", "--with-colons"]).decode()
    key_id = next(line.split(":")[4] for line in listing.splitlines() if line.startswith("pub:"))
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    return GpgKey(homedir, key_id.upper(), fingerprint)


def _gpg_base(homedir: Path) -> list[str]:
    loopback = ("--pinentry-mode", "loopback", "--passphrase", "")
    return ["gpg", "--batch", "--homedir", str(homedir), *loopback]


def _run(argv: list[str], data: bytes | None = None) -> bytes:
    proc = subprocess.run(argv, input=data, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout


# ---------------------------------------------------------------------------- the mirror
class MirrorApi:
    """What the signature tests need of the mirror: its gRPC stubs and its pull endpoint."""

    def __init__(
        self, channel: grpc.aio.Channel, endpoint: str, session: aiohttp.ClientSession
    ) -> None:
        self.repositories = pb_grpc.RepositoryServiceStub(channel)
        self.remotes = pb_grpc.RemoteServiceStub(channel)
        self.syncs = pb_grpc.SyncServiceStub(channel)
        self.versions = pb_grpc.VersionServiceStub(channel)
        self.content = pb_grpc.ContentServiceStub(channel)
        self.distributions = pb_grpc.DistributionServiceStub(channel)
        self.endpoint = endpoint
        self.http = session

    async def setup(self, name: str, url: str, upstream_name: str, **remote: Any) -> None:
        """A repository and a remote, both called ``name``."""
        await self.repositories.CreateRepository(
            pb.CreateRepositoryRequest(repository_id=name, repository=pb.Repository())
        )
        await self.remotes.CreateRemote(
            pb.CreateRemoteRequest(
                remote_id=name,
                remote=pb.Remote(url=url, upstream_name=upstream_name, **remote),
            )
        )

    async def sync(self, name: str, *, mirror: bool = False) -> pb.Task:
        """Sync remote ``name`` into repository ``name``; the final task."""
        request = pb.SyncRequest(
            repository=f"repositories/{name}", remote=f"remotes/{name}", mirror=mirror
        )
        last = None
        async with asyncio.timeout(SYNC_TIMEOUT):
            async for event in self.syncs.Sync(request):
                last = event
        assert last is not None and last.kind == pb.TASK_EVENT_KIND_FINISHED, last
        return last.task

    async def version(self, name: str, number: int | str = "latest") -> Any:
        resp = await self.versions.GetVersion(
            pb.GetVersionRequest(name=f"repositories/{name}/versions/{number}")
        )
        return resp.version

    async def content_of(
        self,
        name: str,
        content_type: str,
        *,
        version: int | str = "latest",
        manifest_digest: str = "",
    ) -> list[Any]:
        """Every unit of one type present in a version (all pages), as the oneof message."""
        out: list[Any] = []
        token = ""
        while True:
            resp = await self.content.ListContent(
                pb.ListContentRequest(
                    parent=f"repositories/{name}/versions/{version}",
                    content_type=content_type,
                    manifest_digest=manifest_digest,
                    page_size=7,
                    page_token=token,
                )
            )
            out.extend(getattr(c, c.WhichOneof("content")) for c in resp.content)
            token = resp.next_page_token
            if not token:
                return out

    async def tags(self, name: str, version: int | str = "latest") -> dict[str, str]:
        return {
            t.name: t.manifest_digest
            for t in await self.content_of(name, "container.tag", version=version)
        }

    async def manifests(self, name: str, version: int | str = "latest") -> dict[str, Any]:
        return {
            m.digest: m for m in await self.content_of(name, "container.manifest", version=version)
        }

    async def blobs(self, name: str, version: int | str = "latest") -> dict[str, Any]:
        return {b.digest: b for b in await self.content_of(name, "container.blob", version=version)}

    async def signatures(
        self, name: str, manifest_digest: str = "", version: int | str = "latest"
    ) -> list[Any]:
        return await self.content_of(
            name, "container.signature", version=version, manifest_digest=manifest_digest
        )

    async def publish(self, name: str) -> str:
        """A distribution of repository ``name`` (latest version) at base path ``name``."""
        await self.distributions.CreateDistribution(
            pb.CreateDistributionRequest(
                distribution_id=name,
                distribution=pb.Distribution(base_path=name, repository=f"repositories/{name}"),
            )
        )
        return name

    async def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, CIMultiDict[str], bytes]:
        """GET ``path`` from the mirror's pull endpoint: (status, headers, exact body)."""
        async with self.http.get(self.endpoint + path, headers=headers or {}) as resp:
            return resp.status, CIMultiDict(resp.headers), await resp.read()


# ---------------------------------------------------------------------------- artifacts
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode() + b"\n"


def make_cosign_attestation(subject_digest: str, seed: int | str = 0) -> img.Image:
    """A cosign-style attestation image (push it under ``sha256-<hex>.att``)."""
    statement = _json(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "repo", "digest": {"sha256": subject_digest.partition(":")[2]}}],
            "predicate": {"seed": str(seed)},
        }
    )
    envelope = _json(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(f"att:{seed}".encode()).decode()}],
        }
    )
    layer = img.Layer(envelope, img.digest_of(envelope))
    config = _json({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers"}})
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": img.OCI_MANIFEST,
            "config": {
                "mediaType": img.OCI_CONFIG,
                "digest": img.digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": DSSE_ENVELOPE,
                    "digest": layer.digest,
                    "size": layer.size,
                    "annotations": {"predicateType": "https://slsa.dev/provenance/v0.2"},
                }
            ],
        }
    )
    return img.Image(manifest, img.OCI_MANIFEST, config, img.OCI_CONFIG, (layer,))


def make_referrer(
    subject: img.Image | img.Index,
    artifact_type: str | None,
    payload: bytes,
    *,
    config_media_type: str = EMPTY_CONFIG,
    layer_media_type: str = "application/jose+json",
    annotations: dict[str, str] | None = None,
) -> img.Image:
    """An OCI 1.1 artifact manifest about ``subject`` (push it by digest)."""
    config = b"{}" if config_media_type == EMPTY_CONFIG else _json({"seed": payload.hex()})
    layer = img.Layer(payload, img.digest_of(payload))
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": img.OCI_MANIFEST}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = {
        "mediaType": config_media_type,
        "digest": img.digest_of(config),
        "size": len(config),
    }
    doc["layers"] = [{"mediaType": layer_media_type, "digest": layer.digest, "size": layer.size}]
    doc["subject"] = {
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    }
    if annotations:
        doc["annotations"] = annotations
    return img.Image(_json(doc), img.OCI_MANIFEST, config, config_media_type, (layer,))


def referrer_descriptor(artifact: img.Image) -> dict[str, Any]:
    """The descriptor of ``artifact`` as the referrers API lists it."""
    doc = json.loads(artifact.manifest)
    descriptor: dict[str, Any] = {
        "mediaType": artifact.media_type,
        "digest": artifact.digest,
        "size": artifact.size,
        "artifactType": doc.get("artifactType") or doc["config"]["mediaType"],
    }
    if doc.get("annotations"):
        descriptor["annotations"] = doc["annotations"]
    return descriptor


def make_referrers_index(*artifacts: img.Image) -> img.Index:
    """The OCI 1.1 fallback index listing ``artifacts`` (tag it ``sha256-<subject hex>``)."""
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": img.OCI_INDEX,
            "manifests": [referrer_descriptor(a) for a in artifacts],
        }
    )
    return img.Index(manifest, img.OCI_INDEX, tuple(artifacts))


def fallback_tag(digest: str) -> str:
    """The OCI 1.1 referrers tag schema: ``sha256-<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"


def cosign_tag(digest: str, suffix: str) -> str:
    """``sha256-<hex>.<suffix>`` (``sig``, ``att``, ``sbom``)."""
    return f"{fallback_tag(digest)}.{suffix}"


async def push_two(url: str, name: str) -> tuple[img.Image, img.Image]:
    """Image A (tag 1.0) and image B (tag 1.1)."""
    a = img.make_image(f"{name}-a", layers=1, layer_size=512)
    b = img.make_image(f"{name}-b", layers=1, layer_size=512)
    async with img.RegistryClient(url) as client:
        await client.push_image(name, "1.0", a)
        await client.push_image(name, "1.1", b)
    return a, b


def present(version: pb.Version) -> dict[str, int]:
    """The present counts of a version's content summary, without zeros."""
    return {k: v for k, v in version.content_summary.present.items() if v}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", name="registry")
def registry_fixture() -> Iterator[RegistryProcess]:
    """One anonymous docker-registry per test module; tests use their own upstream names."""
    with RegistryProcess() as registry:
        yield registry


@pytest.fixture(scope="session", name="gpg_key")
def gpg_key_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKey]:
    """One real GnuPG signing key for the whole session."""
    key = create_gpg_key(tmp_path_factory.mktemp("gpg"))
    try:
        yield key
    finally:
        key.close()


@pytest.fixture(name="api")
async def api_fixture(
    services: Services, grpc_target: str, admin_token: str
) -> AsyncIterator[MirrorApi]:
    """The mirror under test: gRPC on ``grpc_target`` and its pull endpoint, started here."""
    runner, port = await start_registry(services, "127.0.0.1:0")
    try:
        async with (
            grpc.aio.insecure_channel(
                grpc_target, interceptors=aio_interceptors(admin_token)
            ) as channel,
            aiohttp.ClientSession(
                auto_decompress=False, middlewares=(DockerTokenAuth("admin", admin_token),)
            ) as session,
        ):
            yield MirrorApi(channel, f"http://127.0.0.1:{port}", session)
    finally:
        await runner.cleanup()
