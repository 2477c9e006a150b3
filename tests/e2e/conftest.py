"""End-to-end fixtures for the registry (pull) endpoint: upstream registry -> sync -> serve.

``registry_endpoint`` starts the OCI pull API of the server under test on a free port (beside
``grpc_target``, same ``services``) and yields its ``host:port``. ``e2e`` is a user-level
client: gRPC stubs for repositories, remotes, syncs and distributions, plus the real skopeo
and a raw aiohttp session against the endpoint. The helper functions at the bottom check
what skopeo wrote (OCI layout or ``dir:``) against what was pushed upstream, byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest

from client.auth import aio_interceptors
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.app import Services, start_registry
from server.config import Settings
from tests.support import images as img
from tests.support.registry import RegistryProcess, registry_available
from tests.support.registry_auth import DockerTokenAuth
from tests.support.s3 import FilesystemView, StorageView, assert_sound

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
SYNC_TIMEOUT = 30.0
SKOPEO_TIMEOUT = 30.0

Artifact = img.Image | img.Index

needs_registry = pytest.mark.skipif(
    not registry_available(), reason="docker-registry is not installed"
)
needs_skopeo = pytest.mark.skipif(not os.access(SKOPEO, os.X_OK), reason="skopeo is not installed")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture
async def registry_endpoint(services: Services, grpc_target: str) -> AsyncIterator[str]:
    """``host:port`` of the server's OCI pull endpoint, started on port 0 next to gRPC."""
    runner, port = await start_registry(services, "127.0.0.1:0")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def upstream_registry() -> Iterator[RegistryProcess]:
    """One anonymous docker-registry for the session; tests never stop it and use fresh
    upstream names. A test that stops its upstream starts a RegistryProcess of its own."""
    if not registry_available():
        pytest.skip("docker-registry is not installed")
    with RegistryProcess() as reg:
        yield reg


@pytest.fixture
def upstream_name() -> str:
    return f"e2e{uuid.uuid4().hex[:10]}/app"


@pytest.fixture
async def e2e(
    grpc_target: str,
    admin_token: str,
    registry_endpoint: str,
    settings: Settings,
    tmp_path: Path,
    storage_view: StorageView,
) -> AsyncIterator[E2E]:
    async with grpc.aio.insecure_channel(
        grpc_target, interceptors=aio_interceptors(admin_token)
    ) as channel:
        # The pull side runs as shipped, with access control: raw requests answer the Bearer
        # challenge with a token for `admin`, and skopeo finds admin's credentials in the
        # auth file `skopeo login` would write (tests of login itself are in test_access_*).
        auth_file = write_auth_file(tmp_path / "auth.json", registry_endpoint, "admin", admin_token)
        registry_auth = DockerTokenAuth("admin", admin_token)
        async with aiohttp.ClientSession(
            auto_decompress=False, middlewares=(registry_auth,)
        ) as http:
            e2e = E2E(channel, registry_endpoint, settings.data_dir, tmp_path, http, auth_file)
            e2e.registry_auth = registry_auth
            e2e.storage = storage_view
            yield e2e


# ---------------------------------------------------------------------------- client
@dataclass
class SkopeoResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    def check(self) -> SkopeoResult:
        assert self.returncode == 0, f"skopeo failed ({self.returncode}): {self.stderr.decode()}"
        return self


class E2E:
    """The mirror as a user sees it: gRPC on one side, the registry endpoint on the other."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        endpoint: str,
        data_dir: Path,
        tmp_path: Path,
        http: aiohttp.ClientSession,
        auth_file: Path | None = None,
    ) -> None:
        self.channel = channel
        self.endpoint = endpoint
        self.auth_file = auth_file
        self.registry_auth: DockerTokenAuth | None = None
        """The token-flow middleware of `http`, for sessions a test opens itself."""
        self.base_url = f"http://{endpoint}"
        self.data_dir = data_dir
        self.storage: StorageView = FilesystemView(data_dir)
        """The blob store under test, whichever backend (see tests/support/s3.py)."""
        self.tmp_path = tmp_path
        self.http = http
        self.repositories = pb_grpc.RepositoryServiceStub(channel)
        self.remotes = pb_grpc.RemoteServiceStub(channel)
        self.syncs = pb_grpc.SyncServiceStub(channel)
        self.distributions = pb_grpc.DistributionServiceStub(channel)
        self.content = pb_grpc.ContentServiceStub(channel)
        self.versions = pb_grpc.VersionServiceStub(channel)
        self._dirs = 0

    # -- gRPC ------------------------------------------------------------------------
    async def setup(
        self, name: str, url: str, upstream_name: str, policy: int = pb.POLICY_IMMEDIATE
    ) -> None:
        """Repository and remote, both called ``name``."""
        await self.repositories.CreateRepository(pb.CreateRepositoryRequest(repository_id=name))
        await self.remotes.CreateRemote(
            pb.CreateRemoteRequest(
                remote_id=name,
                remote=pb.Remote(
                    url=url, upstream_name=upstream_name, policy=policy, max_retries=0
                ),
            )
        )

    async def sync(self, name: str, remote: str | None = None, *, mirror: bool = False) -> pb.Task:
        """Sync to the end over the streaming RPC; asserts FINISHED / COMPLETED."""
        events: list[pb.SyncResponse] = []
        request = pb.SyncRequest(
            repository=f"repositories/{name}", remote=f"remotes/{remote or name}", mirror=mirror
        )
        async with asyncio.timeout(SYNC_TIMEOUT):
            async for event in self.syncs.Sync(request):
                events.append(event)
        assert events, "no sync events"
        last = events[-1]
        assert last.kind == pb.TASK_EVENT_KIND_FINISHED, last
        assert last.task.state == pb.TASK_STATE_COMPLETED, last.task
        return last.task

    async def distribute(
        self,
        distribution_id: str,
        base_path: str,
        *,
        repository: str = "",
        version: str = "",
        public: bool = False,
    ) -> pb.Distribution:
        resp = await self.distributions.CreateDistribution(
            pb.CreateDistributionRequest(
                distribution_id=distribution_id,
                distribution=pb.Distribution(
                    base_path=base_path, repository=repository, version=version, public=public
                ),
            )
        )
        return resp.distribution

    async def publish(
        self,
        name: str,
        url: str,
        upstream_name: str,
        base_path: str,
        policy: int = pb.POLICY_IMMEDIATE,
        *,
        public: bool = False,
    ) -> pb.Distribution:
        """setup + sync + a distribution following the repository's latest version."""
        await self.setup(name, url, upstream_name, policy)
        await self.sync(name)
        return await self.distribute(
            name, base_path, repository=f"repositories/{name}", public=public
        )

    async def blobs(self, name: str) -> dict[str, pb.Blob]:
        out: dict[str, pb.Blob] = {}
        token = ""
        while True:
            resp = await self.content.ListContent(
                pb.ListContentRequest(
                    parent=f"repositories/{name}/versions/latest",
                    content_type="container.blob",
                    page_token=token,
                )
            )
            out.update({c.blob.digest: c.blob for c in resp.content})
            token = resp.next_page_token
            if not token:
                return out

    # -- skopeo ----------------------------------------------------------------------
    def ref(self, base_path: str, tag: str) -> str:
        return f"docker://{self.endpoint}/{base_path}:{tag}"

    def new_dir(self, label: str = "pull") -> Path:
        """A fresh, not yet existing destination directory (its parent exists)."""
        self._dirs += 1
        parent = self.tmp_path / "pulls"
        parent.mkdir(exist_ok=True)
        return parent / f"{label}-{self._dirs}"

    async def skopeo(self, *args: str) -> SkopeoResult:
        """Run skopeo without blocking the event loop the server runs in."""
        return await run_skopeo(self.auth_file, *args)

    async def inspect(self, base_path: str, tag: str, *extra: str) -> dict[str, object]:
        result = await self.skopeo(
            "inspect", "--tls-verify=false", *extra, self.ref(base_path, tag)
        )
        return json.loads(result.check().stdout)

    async def inspect_raw(self, base_path: str, tag: str) -> bytes:
        result = await self.skopeo(
            "inspect", "--raw", "--tls-verify=false", self.ref(base_path, tag)
        )
        return result.check().stdout

    async def copy(self, base_path: str, tag: str, dest: str) -> SkopeoResult:
        """``skopeo copy --all --preserve-digests`` to ``dest`` (``oci:DIR`` or ``dir:DIR``)."""
        return await self.skopeo(
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            self.ref(base_path, tag),
            dest,
        )

    async def copy_oci(self, base_path: str, tag: str, label: str = "oci") -> Path:
        out = self.new_dir(label)
        (await self.copy(base_path, tag, f"oci:{out}")).check()
        return out

    # -- raw HTTP --------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path


async def run_skopeo(auth_file: Path | None, *args: str) -> SkopeoResult:
    """skopeo with `auth_file` as its only credentials, off the event loop's thread."""
    proc = await asyncio.create_subprocess_exec(
        SKOPEO,
        "--insecure-policy",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=skopeo_env(auth_file),
    )
    try:
        async with asyncio.timeout(SKOPEO_TIMEOUT):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return SkopeoResult(proc.returncode, stdout, stderr)


def write_auth_file(path: Path, endpoint: str, user: str, secret: str) -> Path:
    """The containers-auth.json that `skopeo login` writes for `endpoint`."""
    auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
    path.write_text(json.dumps({"auths": {endpoint: {"auth": auth}}}))
    path.chmod(0o600)
    return path


def skopeo_env(auth_file: Path | None) -> dict[str, str]:
    """skopeo's environment: only `auth_file` as credentials (never the user's own)."""
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}
    env["REGISTRY_AUTH_FILE"] = str(auth_file) if auth_file else "/nonexistent/auth.json"
    return env


# ---------------------------------------------------------------------------- checks
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_digests(artifact: Artifact) -> set[str]:
    """Every digest a ``--all`` copy of ``artifact`` holds: manifests, configs, layers."""
    return set(artifact.manifests) | set(artifact.blobs)


def expected_bytes(artifact: Artifact) -> dict[str, bytes]:
    out = {d: data for d, (_, data) in artifact.manifests.items()}
    out.update(artifact.blobs)
    return out


def check_oci_layout(out: Path, artifact: Artifact) -> None:
    """The OCI layout skopeo wrote is byte-identical to what was pushed upstream."""
    index = json.loads((out / "index.json").read_text())
    entries = index["manifests"]
    assert len(entries) == 1, entries
    assert entries[0]["digest"] == artifact.digest
    assert entries[0]["mediaType"] == artifact.media_type
    assert entries[0]["size"] == artifact.size
    blob_dir = out / "blobs" / "sha256"
    found: dict[str, bytes] = {}
    for path in blob_dir.iterdir():
        data = path.read_bytes()
        assert sha256_hex(data) == path.name, f"{path} does not re-hash to its name"
        found[f"sha256:{path.name}"] = data
    assert set(found) == expected_digests(artifact)
    assert found == expected_bytes(artifact)


def check_dir_layout(out: Path, artifact: img.Index) -> None:
    """A ``dir:`` copy of an index / manifest list: ``manifest.json`` is the top-level
    bytes, children are ``<hex>.manifest.json``, blobs are ``<hex>``; all byte-identical."""
    assert (out / "manifest.json").read_bytes() == artifact.manifest
    found: dict[str, bytes] = {f"sha256:{sha256_hex(artifact.manifest)}": artifact.manifest}
    for path in out.iterdir():
        if path.name in ("manifest.json", "version"):
            continue
        data = path.read_bytes()
        name = path.name.removesuffix(".manifest.json")
        assert sha256_hex(data) == name, f"{path} does not re-hash to its name"
        found[f"sha256:{name}"] = data
    assert set(found) == expected_digests(artifact)
    assert found == expected_bytes(artifact)


def blob_path(data_dir: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def stored_digests(where: Path | StorageView) -> set[str]:
    """Digests of every stored blob (each checked to re-hash to its name); no temporary may
    be left. `where`: a data dir, or any backend's view (`e2e.storage`)."""
    return assert_sound(FilesystemView(where) if isinstance(where, Path) else where)


def layer_digests(artifact: Artifact) -> set[str]:
    images = artifact.children if isinstance(artifact, img.Index) else (artifact,)
    return {layer.digest for image in images for layer in image.layers}


def config_digests(artifact: Artifact) -> set[str]:
    images = artifact.children if isinstance(artifact, img.Index) else (artifact,)
    return {image.config_digest for image in images}
