"""The asyncio client and the ``mirrorctl`` CLI against an in-process fake server.

The fakes are small ``grpc.aio`` servicers that keep state in memory and answer errors the
way the contract says (a ``google.rpc.Status`` with ``ErrorInfo`` / ``BadRequest`` in the
``grpc-status-details-bin`` trailer). The CLI runs in a worker thread (it is blocking)
while the server runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from client import AsyncMirrorClient, MirrorClientError
from client.cli import main
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc

UUID = "0d4c2a8e-9c3f-4f1a-a7d2-5b6e8f9a0b1c"
FAILING = "7e2a1b3c-1111-4a6b-8c7d-9e0f1a2b3c4d"
SUMMARY = pb.ContentSummary(
    added={"container.tag": 2, "container.manifest": 2, "container.blob": 5},
    present={"container.tag": 2, "container.manifest": 2, "container.blob": 5},
)


async def _abort(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str] | None = None,
    violations: list[tuple[str, str]] | None = None,
) -> NoReturn:
    """Fail the RPC with a rich status, as the real server does."""
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain="mirror.v1", metadata=metadata)
    status.details.add().Pack(info)
    if violations:
        bad = error_details_pb2.BadRequest()
        for field, description in violations:
            bad.field_violations.add(field=field, description=description)
        status.details.add().Pack(bad)
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("unreachable")


class Repositories(pb_grpc.RepositoryServiceServicer):
    """In-memory repositories."""

    def __init__(self) -> None:
        self.items: dict[str, pb.Repository] = {}

    async def _get(self, name: str, context: Any) -> pb.Repository:
        if name not in self.items:
            rid = name.removeprefix("repositories/")
            await _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f'repository "{rid}" not found',
                "REPOSITORY_NOT_FOUND",
                {"repository": rid},
            )
        return self.items[name]

    async def CreateRepository(self, request: Any, context: Any) -> Any:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", request.repository_id):
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid repository id",
                "INVALID_ARGUMENT",
                violations=[("repository_id", "must match [a-z][a-z0-9-]*")],
            )
        repository = pb.Repository()
        repository.CopyFrom(request.repository)
        repository.name = f"repositories/{request.repository_id}"
        repository.latest_version = f"{repository.name}/versions/0"
        self.items[repository.name] = repository
        return pb.CreateRepositoryResponse(repository=repository)

    async def GetRepository(self, request: Any, context: Any) -> Any:
        return pb.GetRepositoryResponse(repository=await self._get(request.name, context))

    async def ListRepositories(self, request: Any, context: Any) -> Any:
        names = sorted(self.items)
        start = int(request.page_token or 0)
        end = start + (request.page_size or 50)
        return pb.ListRepositoriesResponse(
            repositories=[self.items[n] for n in names[start:end]],
            next_page_token=str(end) if end < len(names) else "",
        )

    async def UpdateRepository(self, request: Any, context: Any) -> Any:
        repository = await self._get(request.repository.name, context)
        for path in request.update_mask.paths:
            setattr(repository, path, getattr(request.repository, path))
        return pb.UpdateRepositoryResponse(repository=repository)

    async def DeleteRepository(self, request: Any, context: Any) -> Any:
        await self._get(request.name, context)
        del self.items[request.name]
        return pb.DeleteRepositoryResponse()


class Remotes(pb_grpc.RemoteServiceServicer):
    """One fixed remote whose password is set."""

    async def GetRemote(self, request: Any, context: Any) -> Any:
        remote = pb.Remote(
            name=request.name,
            url="https://registry-1.docker.io",
            upstream_name="library/alpine",
            policy=pb.POLICY_ON_DEMAND,
            include_tags=["3.*"],
            username="bob",
            password_set=True,
            ssl_validation=False,
            headers={"X-B": "2", "X-A": "1"},
        )
        return pb.GetRemoteResponse(remote=remote)


def _task(state: Any, **kwargs: Any) -> pb.Task:
    return pb.Task(name=f"tasks/{UUID}", kind="sync", state=state, **kwargs)


def _report(code: str, done: int, total: int, state: Any, size: int = 0) -> pb.ProgressReport:
    return pb.ProgressReport(
        code=code, message=code, done=done, total=total, state=state, done_bytes=size
    )


class Syncs(pb_grpc.SyncServiceServicer):
    """Syncs that succeed with version 1 and a warning on the way."""

    async def StartSync(self, request: Any, context: Any) -> Any:
        parameters = {"repository": request.repository, "remote": request.remote}
        return pb.StartSyncResponse(task=_task(pb.TASK_STATE_QUEUED, parameters=parameters))

    async def Sync(self, request: Any, context: Any) -> AsyncIterator[pb.SyncResponse]:
        running = pb.TASK_STATE_RUNNING
        reports = [_report("sync.listing_tags", 2, 2, pb.PROGRESS_STATE_COMPLETED)]
        yield pb.SyncResponse(kind=pb.TASK_EVENT_KIND_SNAPSHOT, task=_task(pb.TASK_STATE_QUEUED))
        yield pb.SyncResponse(kind=pb.TASK_EVENT_KIND_STATE, task=_task(running))
        yield pb.SyncResponse(
            kind=pb.TASK_EVENT_KIND_PROGRESS, task=_task(running, progress_reports=reports)
        )
        yield pb.SyncResponse(
            kind=pb.TASK_EVENT_KIND_WARNING,
            task=_task(running, progress_reports=reports, warnings=["tag 9 skipped"]),
            warning="tag 9 skipped",
        )
        reports.append(
            _report("sync.downloading_blobs", 5, 5, pb.PROGRESS_STATE_COMPLETED, size=2_000_000)
        )
        done = _task(
            pb.TASK_STATE_COMPLETED,
            progress_reports=reports,
            created_resources=[f"{request.repository}/versions/1"],
        )
        yield pb.SyncResponse(kind=pb.TASK_EVENT_KIND_FINISHED, task=done)


class Versions(pb_grpc.VersionServiceServicer):
    """Every version is number 1 with :data:`SUMMARY`."""

    async def GetVersion(self, request: Any, context: Any) -> Any:
        version = pb.Version(
            name=request.name.replace("latest", "1"),
            number=1,
            base_version=request.name.rsplit("/", 1)[0] + "/0",
            content_summary=SUMMARY,
        )
        return pb.GetVersionResponse(version=version)


class Tasks(pb_grpc.TaskServiceServicer):
    """WatchTask: the FAILING task fails upstream; any other uuid is not found mid-stream."""

    async def WatchTask(self, request: Any, context: Any) -> AsyncIterator[pb.WatchTaskResponse]:
        task = pb.Task(name=request.name, kind="sync", state=pb.TASK_STATE_RUNNING)
        yield pb.WatchTaskResponse(kind=pb.TASK_EVENT_KIND_SNAPSHOT, task=task)
        if request.name != f"tasks/{FAILING}":
            await _abort(context, grpc.StatusCode.NOT_FOUND, "task gone", "TASK_NOT_FOUND")
        task.state = pb.TASK_STATE_FAILED
        task.error.CopyFrom(
            pb.TaskError(
                code="UNAUTHENTICATED",
                reason="UPSTREAM_AUTH_FAILED",
                message="registry said 401",
                metadata={"registry": "r.example"},
            )
        )
        yield pb.WatchTaskResponse(kind=pb.TASK_EVENT_KIND_FINISHED, task=task)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """Start the fake server on a free port; yield its address."""
    srv = grpc.aio.server()
    pb_grpc.add_RepositoryServiceServicer_to_server(Repositories(), srv)
    pb_grpc.add_RemoteServiceServicer_to_server(Remotes(), srv)
    pb_grpc.add_SyncServiceServicer_to_server(Syncs(), srv)
    pb_grpc.add_VersionServiceServicer_to_server(Versions(), srv)
    pb_grpc.add_TaskServiceServicer_to_server(Tasks(), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    yield f"127.0.0.1:{port}"
    await srv.stop(None)


# -- asyncio client -----------------------------------------------------------------------


async def test_async_crud_and_pagination(server: str) -> None:
    async with AsyncMirrorClient(server) as client:
        for rid in ("c", "a", "b"):
            created = await client.create_repository(rid, description=f"repo {rid}")
            assert created.name == f"repositories/{rid}"
        names = [r.name async for r in client.iter_repositories(page_size=1)]
        assert names == ["repositories/a", "repositories/b", "repositories/c"]
        page = await client.list_repositories(page_size=2)
        assert page.next_page_token == "2"
        updated = await client.update_repository("a", retain_versions=3)
        assert (updated.retain_versions, updated.description) == (3, "repo a")
        await client.delete_repository("repositories/a")
        with pytest.raises(MirrorClientError) as caught:
            await client.get_repository("a")
    err = caught.value
    assert err.code is grpc.StatusCode.NOT_FOUND
    assert (err.reason, err.domain, err.metadata) == (
        "REPOSITORY_NOT_FOUND",
        "mirror.v1",
        {"repository": "a"},
    )
    assert str(err) == ('NOT_FOUND: repository "a" not found [reason=REPOSITORY_NOT_FOUND]')


async def test_async_bad_request(server: str) -> None:
    async with AsyncMirrorClient(server) as client:
        with pytest.raises(MirrorClientError) as caught:
            await client.create_repository("Bad Id")
    assert caught.value.field_violations == [("repository_id", "must match [a-z][a-z0-9-]*")]
    assert str(caught.value).endswith("(field repository_id: must match [a-z][a-z0-9-]*)")


async def test_async_sync_stream_and_start_sync(server: str) -> None:
    async with AsyncMirrorClient(server) as client:
        kinds = [event.kind async for event in client.sync("codzo", "hub")]
        assert kinds[0] == pb.TASK_EVENT_KIND_SNAPSHOT
        assert kinds[-1] == pb.TASK_EVENT_KIND_FINISHED
        task = await client.start_sync("codzo", "hub", mirror=True)
        assert task.state == pb.TASK_STATE_QUEUED
        assert task.parameters["repository"] == "repositories/codzo"
        version = await client.get_version("codzo")
        assert version.name == "repositories/codzo/versions/1"


async def test_async_stream_error_mid_stream(server: str) -> None:
    events = []
    async with AsyncMirrorClient(server) as client:
        with pytest.raises(MirrorClientError) as caught:
            async for event in client.watch_task(UUID):
                events.append(event)
    assert len(events) == 1
    assert caught.value.reason == "TASK_NOT_FOUND"


async def test_async_stream_can_be_cancelled(server: str) -> None:
    async with AsyncMirrorClient(server) as client:
        async with client.sync("codzo", "hub") as stream:
            first = await anext(stream)
        assert first.kind == pb.TASK_EVENT_KIND_SNAPSHOT
        assert [event async for event in stream] == []


async def test_async_unimplemented_is_a_client_error(server: str) -> None:
    async with AsyncMirrorClient(server) as client:
        with pytest.raises(MirrorClientError) as caught:
            await client.list_distributions()
    assert caught.value.code is grpc.StatusCode.UNIMPLEMENTED


# -- CLI ----------------------------------------------------------------------------------


async def _run(server: str, *argv: str) -> int:
    """Run ``mirrorctl`` in a thread against the fake server."""
    return await asyncio.to_thread(main, ["--server", server, *argv])


async def test_cli_repository_commands(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(server, "repository", "create", "codzo", "--description", "hi") == 0
    assert await _run(server, "repo", "create", "alpha", "--retain-versions", "2") == 0
    capsys.readouterr()
    assert await _run(server, "repository", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "LATEST", "RETAIN", "MIRROR", "DESCRIPTION"]
    assert lines[1].split() == ["repositories/alpha", "0", "2", "no"]
    assert lines[2].split() == ["repositories/codzo", "0", "all", "no", "hi"]
    assert await _run(server, "repository", "list", "-o", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    # The List response as grpcurl prints it, every page gathered, lowerCamelCase names.
    assert [r["name"] for r in doc["repositories"]] == ["repositories/alpha", "repositories/codzo"]
    assert [r.get("retainVersions") for r in doc["repositories"]] == [2, None]
    assert "nextPageToken" not in doc
    assert await _run(server, "repository", "show", "codzo") == 0
    out = capsys.readouterr().out
    assert "name: repositories/codzo\n" in out and "description: hi\n" in out
    assert await _run(server, "repository", "update", "codzo", "--description", "new") == 0
    assert "description: new" in capsys.readouterr().out
    assert await _run(server, "repository", "delete", "codzo", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out) == {}  # DeleteRepositoryResponse, as grpcurl


async def test_cli_error_is_one_line(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(server, "repository", "show", "nope") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        'error: NOT_FOUND: repository "nope" not found [reason=REPOSITORY_NOT_FOUND]\n'
    )


async def test_cli_remote_show_hides_secrets(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(server, "remote", "show", "hub") == 0
    out = capsys.readouterr().out
    assert "password: (set)\n" in out
    assert "policy: on_demand\n" in out
    assert "ssl_validation: no\n" in out
    assert "headers: X-A=1, X-B=2\n" in out
    assert "password_set" not in out


async def test_cli_sync_prints_progress_and_version(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(server, "sync", "codzo", "--remote", "hub") == 0
    out = capsys.readouterr().out
    # Not a terminal: one plain line per event that carries news.
    assert out.splitlines()[:5] == [
        f"tasks/{UUID} queued",
        f"tasks/{UUID} running",
        f"tasks/{UUID} running: sync.listing_tags 2/2 (completed)",
        "warning: tag 9 skipped",
        f"tasks/{UUID} completed: sync.downloading_blobs 5/5, 2.0 MB (completed)",
    ]
    assert "created repositories/codzo/versions/1\n" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["TYPE", "ADDED", "REMOVED", "PRESENT"] in rows
    assert ["container.blob", "5", "0", "5"] in rows


async def test_cli_sync_json_and_detach(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(server, "-o", "json", "sync", "codzo", "--remote", "hub") == 0
    # The streamed SyncResponse events, one JSON object per line, as grpcurl encodes them.
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["kind"] for e in events] == [
        "TASK_EVENT_KIND_SNAPSHOT",
        "TASK_EVENT_KIND_STATE",
        "TASK_EVENT_KIND_PROGRESS",
        "TASK_EVENT_KIND_WARNING",
        "TASK_EVENT_KIND_FINISHED",
    ]
    assert events[-1]["task"]["state"] == "TASK_STATE_COMPLETED"
    assert events[-1]["task"]["createdResources"] == ["repositories/codzo/versions/1"]
    assert events[-1]["task"]["progressReports"][-1]["doneBytes"] == "2000000"
    assert await _run(server, "sync", "codzo", "--remote", "hub", "--detach") == 0
    out = capsys.readouterr().out
    assert f"name: tasks/{UUID}\n" in out and "state: queued\n" in out


async def test_cli_failed_task_exits_non_zero(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(server, "task", "watch", FAILING) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        f"error: tasks/{FAILING} failed: UNAUTHENTICATED UPSTREAM_AUTH_FAILED: "
        "registry said 401 [registry=r.example]\n"
    )


async def test_cli_version_show(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(server, "version", "show", "codzo", "latest") == 0
    out = capsys.readouterr().out
    assert "name: repositories/codzo/versions/1\n" in out
    assert "number: 1\n" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["container.tag", "2", "0", "2"] in rows
