"""Shared fixtures and helpers of the sync integration tests (``test_sync_*.py``).

The tests talk to the service only as a user would: generated gRPC stubs on ``grpc_target``.
The one other window they use is the data directory, where every blob must be whole and
named by its digest (``<data_dir>/blobs/sha256/<hex[:2]>/<hex>``) and ``<data_dir>/tmp/``
must be empty once no sync runs.

Fixtures are exported under pytest names (``registry``, ``proxy``, ``mirror``,
``upstream_name``) from functions with other Python names; a test module re-exports the ones
it needs (``from ...sync_helpers import mirror_fixture as mirror_fixture``), so ruff sees
neither an unused import nor a redefinition.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from client.auth import aio_interceptors
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.config import Settings
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess, registry_available
from tests.support.s3 import FilesystemView, StorageView, assert_sound

BLOB = "container.blob"
MANIFEST = "container.manifest"
TAG = "container.tag"

SYNC_TIMEOUT = 60.0
LAYER_SIZE = 1024  # tiny layers keep the whole suite fast

REGISTRY_MARKS = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]

TERMINAL = frozenset({pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED})
_STATE_RANK = {
    pb.TASK_STATE_QUEUED: 1,
    pb.TASK_STATE_RUNNING: 2,
    pb.TASK_STATE_COMPLETED: 3,
    pb.TASK_STATE_FAILED: 3,
    pb.TASK_STATE_CANCELED: 3,
}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", name="registry")
def registry_fixture() -> Iterator[RegistryProcess]:
    """One anonymous docker-registry per test module; tests use their own upstream names."""
    with RegistryProcess() as reg:
        yield reg


@pytest.fixture(name="upstream_name")
def upstream_name_fixture() -> str:
    """A fresh upstream repository name (each test runs once per database)."""
    return f"t{uuid.uuid4().hex[:10]}/app"


@pytest.fixture(name="proxy")
async def proxy_fixture(registry: RegistryProcess) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the module's registry."""
    async with FaultProxy(registry.url) as proxy:
        yield proxy


@pytest.fixture(name="mirror")
async def mirror_fixture(
    grpc_target: str, admin_token: str, settings: Settings, storage_view: StorageView
) -> AsyncIterator[Mirror]:
    """A gRPC client of the server under test, with its data directory and blob store."""
    async with grpc.aio.insecure_channel(
        grpc_target, interceptors=aio_interceptors(admin_token)
    ) as channel:
        yield Mirror(channel, settings.data_dir, storage_view)


# ---------------------------------------------------------------------------- upstream
Artifact = img.Image | img.Index


@dataclass
class Upstream:
    """An upstream repository the test pushes to, and what its tags reach."""

    url: str
    name: str
    auth: img.Auth = None
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)

    async def push(self, tag: str | None, artifact: Artifact) -> str:
        """Push an image or index under ``tag`` (None: by digest only)."""
        if isinstance(artifact, img.Index):
            digest = await img.push_index(self.url, self.name, tag, artifact, self.auth)
        else:
            digest = await img.push_image(self.url, self.name, tag, artifact, self.auth)
        assert digest == artifact.digest
        self.artifacts[digest] = artifact
        if tag is not None:
            self.tags[tag] = digest
        return digest

    async def push_tags(self, tags: Iterable[str], artifact: Artifact) -> None:
        """Push ``artifact`` once, then tag it with every tag (manifest PUTs only)."""
        tags = list(tags)
        await self.push(tags[0], artifact)
        async with img.RegistryClient(self.url, self.auth) as client:
            for tag in tags[1:]:
                await client.put_manifest(self.name, tag, artifact.manifest, artifact.media_type)
                self.tags[tag] = artifact.digest

    async def delete(self, tag: str) -> str:
        """Delete the manifest ``tag`` points at (and with it every tag on that digest)."""
        digest = self.tags[tag]
        await img.delete_manifest(self.url, self.name, digest, self.auth)
        self.tags = {t: d for t, d in self.tags.items() if d != digest}
        return digest

    def expected(self, tags: Iterable[str] | None = None, digests: Iterable[str] = ()) -> Expected:
        """What a sync of ``tags`` (default: every tag) plus ``digests`` must hold."""
        names = list(self.tags) if tags is None else list(tags)
        roots = [self.artifacts[self.tags[t]] for t in names]
        roots += [self.artifacts[d] for d in digests]
        return Expected.of(roots, {t: self.tags[t] for t in names})


@dataclass
class Expected:
    """Content reachable from some artifacts: manifests, blobs and tags."""

    manifests: dict[str, str]  # digest -> media type
    blobs: dict[str, bytes]  # digest -> bytes
    tags: dict[str, str]  # name -> manifest digest

    @classmethod
    def of(cls, roots: Iterable[Artifact], tags: Mapping[str, str]) -> Expected:
        manifests: dict[str, str] = {}
        blobs: dict[str, bytes] = {}
        for artifact in roots:
            manifests.update({d: mt for d, (mt, _) in artifact.manifests.items()})
            blobs.update(artifact.blobs)
        return cls(manifests, blobs, dict(tags))

    def counts(self) -> dict[str, int]:
        return counts(blobs=len(self.blobs), manifests=len(self.manifests), tags=len(self.tags))


def counts(blobs: int = 0, manifests: int = 0, tags: int = 0) -> dict[str, int]:
    """A content-summary map, without zero entries."""
    return nonzero({BLOB: blobs, MANIFEST: manifests, TAG: tags})


def nonzero(values: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in values.items() if v}


def summary(version: pb.Version) -> dict[str, dict[str, int]]:
    """``{"added": .., "removed": .., "present": ..}`` of a version, zeros dropped."""
    s = version.content_summary
    return {
        "added": nonzero(s.added),
        "removed": nonzero(s.removed),
        "present": nonzero(s.present),
    }


def layer_digests(artifacts: Iterable[Artifact]) -> set[str]:
    out: set[str] = set()
    for artifact in artifacts:
        images = artifact.children if isinstance(artifact, img.Index) else (artifact,)
        for image in images:
            out.update(layer.digest for layer in image.layers)
    return out


def config_digests(artifacts: Iterable[Artifact]) -> set[str]:
    out: set[str] = set()
    for artifact in artifacts:
        images = artifact.children if isinstance(artifact, img.Index) else (artifact,)
        out.update(image.config_digest for image in images)
    return out


def small_image(seed: str, media: img.Media = "docker", **kwargs: object) -> img.Image:
    """A one-layer image of ~1 KiB layers."""
    kwargs.setdefault("layers", 1)
    kwargs.setdefault("layer_size", LAYER_SIZE)
    return img.make_image(seed, media=media, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- storage
def blob_path(data_dir: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def stored_digests(data_dir: Path) -> set[str]:
    """Digests of every file under ``blobs/`` (named by the storage layout)."""
    root = data_dir / "blobs"
    return {f"{path.parent.parent.name}:{path.name}" for path in root.rglob("*") if path.is_file()}


def assert_storage_sound(where: Path | StorageView) -> set[str]:
    """Every stored blob re-hashes to its name and sits where the layout puts it; no
    temporary is left. Returns the stored digests (a data dir, or any backend's view)."""
    return assert_sound(FilesystemView(where) if isinstance(where, Path) else where)


# ---------------------------------------------------------------------------- gRPC client
def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a rich gRPC status, if any."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
    return None


@dataclass
class SyncRun:
    """The events of one Sync stream; ``task`` is the last snapshot."""

    events: list[pb.SyncResponse | pb.WatchTaskResponse]

    @property
    def task(self) -> pb.Task:
        return self.events[-1].task


def check_event_order(events: list[pb.SyncResponse] | list[pb.WatchTaskResponse]) -> None:
    """SNAPSHOT first, FINISHED last (and only last), the task state never goes back, and
    per progress code neither ``done`` nor ``total`` ever decrease, a total once known never
    changes while its stage runs (clients draw rates and ETAs from it), and every report
    states its unit."""
    assert events, "no events"
    kinds = [e.kind for e in events]
    assert kinds[0] == pb.TASK_EVENT_KIND_SNAPSHOT, kinds
    assert kinds[-1] == pb.TASK_EVENT_KIND_FINISHED or (
        len(kinds) == 1 and events[0].task.state in TERMINAL
    ), kinds
    assert pb.TASK_EVENT_KIND_FINISHED not in kinds[:-1], kinds
    assert pb.TASK_EVENT_KIND_SNAPSHOT not in kinds[1:], kinds
    names = {e.task.name for e in events}
    assert len(names) == 1, names
    rank = 0
    done: dict[str, int] = {}
    totals: dict[str, int] = {}
    for i, event in enumerate(events):
        state_rank = _STATE_RANK[event.task.state]
        assert state_rank >= rank, f"event {i}: state went back to {event.task.state}"
        rank = state_rank
        for report in event.task.progress_reports:
            before = done.get(report.code, 0)
            assert report.done >= before, (
                f"event {i}: {report.code} done went from {before} back to {report.done}"
            )
            done[report.code] = report.done
            assert report.unit, f"event {i}: {report.code} states no unit"
            if report.state == pb.PROGRESS_STATE_RUNNING and report.total:
                known = totals.setdefault(report.code, report.total)
                assert report.total == known, (
                    f"event {i}: {report.code} total changed from {known} to {report.total}"
                )
    assert events[-1].task.state in TERMINAL


class Mirror:
    """Thin user-level client of the mirror service, plus its data directory."""

    def __init__(
        self, channel: grpc.aio.Channel, data_dir: Path, storage: StorageView | None = None
    ) -> None:
        self.channel = channel
        self.data_dir = data_dir
        self.storage = storage or FilesystemView(data_dir)
        self.repositories = pb_grpc.RepositoryServiceStub(channel)
        self.remotes = pb_grpc.RemoteServiceStub(channel)
        self.syncs = pb_grpc.SyncServiceStub(channel)
        self.versions = pb_grpc.VersionServiceStub(channel)
        self.content = pb_grpc.ContentServiceStub(channel)
        self.tasks = pb_grpc.TaskServiceStub(channel)
        self.operations = pb_grpc.ContentOperationServiceStub(channel)

    # -- resources -----------------------------------------------------------------
    async def create_repository(self, repo_id: str, retain_versions: int = 0) -> pb.Repository:
        resp = await self.repositories.CreateRepository(
            pb.CreateRepositoryRequest(
                repository_id=repo_id,
                repository=pb.Repository(retain_versions=retain_versions),
            )
        )
        return resp.repository

    async def create_remote(
        self, remote_id: str, url: str, upstream_name: str, **fields: object
    ) -> pb.Remote:
        resp = await self.remotes.CreateRemote(
            pb.CreateRemoteRequest(
                remote_id=remote_id,
                remote=pb.Remote(url=url, upstream_name=upstream_name, **fields),  # type: ignore[arg-type]
            )
        )
        return resp.remote

    async def update_remote(self, remote_id: str, paths: list[str], **fields: object) -> pb.Remote:
        resp = await self.remotes.UpdateRemote(
            pb.UpdateRemoteRequest(
                remote=pb.Remote(name=f"remotes/{remote_id}", **fields),  # type: ignore[arg-type]
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            )
        )
        return resp.remote

    async def setup(self, name: str, url: str, upstream_name: str, **remote: object) -> None:
        """A repository and a remote, both called ``name``."""
        await self.create_repository(name)
        await self.create_remote(name, url, upstream_name, **remote)

    async def repository(self, repo_id: str) -> pb.Repository:
        resp = await self.repositories.GetRepository(
            pb.GetRepositoryRequest(name=f"repositories/{repo_id}")
        )
        return resp.repository

    # -- syncs and tasks -------------------------------------------------------------
    async def sync(
        self, repo_id: str, remote_id: str | None = None, *, mirror: bool = False
    ) -> SyncRun:
        """Run a sync over the streaming RPC and return every event."""
        request = pb.SyncRequest(
            repository=f"repositories/{repo_id}",
            remote=f"remotes/{remote_id or repo_id}",
            mirror=mirror,
        )
        events: list[pb.SyncResponse | pb.WatchTaskResponse] = []
        async with asyncio.timeout(SYNC_TIMEOUT):
            async for event in self.syncs.Sync(request):
                events.append(event)
        return SyncRun(events)

    async def start_sync(
        self, repo_id: str, remote_id: str | None = None, *, mirror: bool = False
    ) -> pb.Task:
        resp = await self.syncs.StartSync(
            pb.StartSyncRequest(
                repository=f"repositories/{repo_id}",
                remote=f"remotes/{remote_id or repo_id}",
                mirror=mirror,
            )
        )
        return resp.task

    async def watch(
        self, task_name: str, max_wait: float = SYNC_TIMEOUT
    ) -> list[pb.WatchTaskResponse]:
        events: list[pb.WatchTaskResponse] = []
        async with asyncio.timeout(max_wait):
            async for event in self.tasks.WatchTask(pb.WatchTaskRequest(name=task_name)):
                events.append(event)
        return events

    async def wait(self, task_name: str, max_wait: float = SYNC_TIMEOUT) -> pb.Task:
        """Watch a task until it ends; its final snapshot."""
        events = await self.watch(task_name, max_wait)
        task = events[-1].task
        assert task.state in TERMINAL, task
        return task

    async def get_task(self, task_name: str) -> pb.Task:
        return (await self.tasks.GetTask(pb.GetTaskRequest(name=task_name))).task

    async def wait_for_state(
        self, task_name: str, states: Iterable[int], max_wait: float = 10.0
    ) -> pb.Task:
        wanted = set(states)
        async with asyncio.timeout(max_wait):
            while True:
                task = await self.get_task(task_name)
                if task.state in wanted:
                    return task
                await asyncio.sleep(0.02)

    # -- versions and content ---------------------------------------------------------
    async def version(self, repo_id: str, number: int | str = "latest") -> pb.Version:
        resp = await self.versions.GetVersion(
            pb.GetVersionRequest(name=f"repositories/{repo_id}/versions/{number}")
        )
        return resp.version

    async def list_versions(self, repo_id: str) -> list[pb.Version]:
        out: list[pb.Version] = []
        token = ""
        while True:
            resp = await self.versions.ListVersions(
                pb.ListVersionsRequest(parent=f"repositories/{repo_id}", page_token=token)
            )
            out.extend(resp.versions)
            token = resp.next_page_token
            if not token:
                return out

    async def version_numbers(self, repo_id: str) -> list[int]:
        return [v.number for v in await self.list_versions(repo_id)]

    async def delete_version(self, repo_id: str, number: int) -> None:
        await self.versions.DeleteVersion(
            pb.DeleteVersionRequest(name=f"repositories/{repo_id}/versions/{number}")
        )

    async def list_content(
        self,
        repo_id: str,
        version: int | str = "latest",
        content_type: str = "",
        membership: int = pb.MEMBERSHIP_PRESENT,
    ) -> list[pb.Content]:
        out: list[pb.Content] = []
        token = ""
        while True:
            resp = await self.content.ListContent(
                pb.ListContentRequest(
                    parent=f"repositories/{repo_id}/versions/{version}",
                    content_type=content_type,
                    membership=membership,  # type: ignore[arg-type]
                    page_token=token,
                )
            )
            out.extend(resp.content)
            token = resp.next_page_token
            if not token:
                return out

    async def tags(
        self,
        repo_id: str,
        version: int | str = "latest",
        membership: int = pb.MEMBERSHIP_PRESENT,
    ) -> dict[str, str]:
        items = await self.list_content(repo_id, version, TAG, membership)
        assert all(c.WhichOneof("content") == "tag" for c in items)
        result = {c.tag.name: c.tag.manifest_digest for c in items}
        assert len(result) == len(items), "a tag name appears twice in one version"
        return result

    async def manifests(
        self,
        repo_id: str,
        version: int | str = "latest",
        membership: int = pb.MEMBERSHIP_PRESENT,
    ) -> dict[str, pb.Manifest]:
        items = await self.list_content(repo_id, version, MANIFEST, membership)
        assert all(c.WhichOneof("content") == "manifest" for c in items)
        return {c.manifest.digest: c.manifest for c in items}

    async def blobs(
        self,
        repo_id: str,
        version: int | str = "latest",
        membership: int = pb.MEMBERSHIP_PRESENT,
    ) -> dict[str, pb.Blob]:
        items = await self.list_content(repo_id, version, BLOB, membership)
        assert all(c.WhichOneof("content") == "blob" for c in items)
        return {c.blob.digest: c.blob for c in items}

    async def diff(
        self, repo_id: str, base: int, target: int, content_type: str = ""
    ) -> tuple[list[pb.ContentChange], pb.ContentSummary]:
        changes: list[pb.ContentChange] = []
        token = ""
        while True:
            resp = await self.content.DiffVersions(
                pb.DiffVersionsRequest(
                    base_version=f"repositories/{repo_id}/versions/{base}",
                    target_version=f"repositories/{repo_id}/versions/{target}",
                    content_type=content_type,
                    page_size=7,  # small pages: the paging must not lose or repeat changes
                    page_token=token,
                )
            )
            changes.extend(resp.changes)
            token = resp.next_page_token
            if not token:
                return changes, resp.summary

    async def assert_matches(
        self, repo_id: str, expected: Expected, version: int | str = "latest"
    ) -> None:
        """The version holds exactly the expected tags, manifests and blobs."""
        assert await self.tags(repo_id, version) == expected.tags
        manifests = await self.manifests(repo_id, version)
        assert {d: m.media_type for d, m in manifests.items()} == expected.manifests
        blobs = await self.blobs(repo_id, version)
        assert set(blobs) == set(expected.blobs)
        for digest, blob in blobs.items():
            assert blob.size == len(expected.blobs[digest]), digest


class EventCollector:
    """Reads a server stream (Sync or WatchTask) in the background."""

    def __init__(
        self, stream: AsyncIterator[pb.SyncResponse] | AsyncIterator[pb.WatchTaskResponse]
    ) -> None:
        self.events: list[pb.SyncResponse | pb.WatchTaskResponse] = []
        self.last_event_at = 0.0  # time.monotonic() of the latest event
        self._first = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(
        self, stream: AsyncIterator[pb.SyncResponse] | AsyncIterator[pb.WatchTaskResponse]
    ) -> None:
        try:
            async for event in stream:
                self.events.append(event)
                self.last_event_at = time.monotonic()
                self._first.set()
        finally:
            self._first.set()

    async def first(self, max_wait: float = 10.0) -> pb.SyncResponse | pb.WatchTaskResponse:
        """The first event (waits for it)."""
        async with asyncio.timeout(max_wait):
            await self._first.wait()
        assert self.events, "the stream ended without any event"
        return self.events[0]

    async def finish(
        self, max_wait: float = SYNC_TIMEOUT
    ) -> list[pb.SyncResponse | pb.WatchTaskResponse]:
        """Every event, once the stream has ended."""
        async with asyncio.timeout(max_wait):
            await self._task
        return self.events

    def cancel(self) -> None:
        self._task.cancel()


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], max_wait: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``check`` (sync or async) until it is true; TimeoutError after ``max_wait``."""
    async with asyncio.timeout(max_wait):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)


def nanos(stamp: object) -> int:
    """A protobuf Timestamp as integer nanoseconds."""
    return int(stamp.ToNanoseconds())  # type: ignore[attr-defined]
