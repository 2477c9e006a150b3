"""Unit tests of the sync client against ``grpc_testing`` and of the CLI's argument wiring.

``grpc_testing`` plays the server: the client call runs in a worker thread while the test
takes the RPC off the channel, checks the request and scripts the answer.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from client import MirrorClient, MirrorClientError, builders, names
from client.cli import build_parser, connection, remote_fields
from client.errors import STATUS_DETAILS_KEY
from protos import mirror_pb2 as pb

UUID = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _method(service: str, name: str) -> Any:
    """The descriptor of one RPC."""
    return pb.DESCRIPTOR.services_by_name[service].methods_by_name[name]


class Harness:
    """A ``grpc_testing`` channel, a client on it and a thread to run client calls in."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel(
            pb.DESCRIPTOR.services_by_name.values(), grpc_testing.strict_real_time()
        )
        self.client = MirrorClient(channel=self.channel)
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future: Future[Any] = Future()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Start a client call in the worker thread."""
        self.future = self.pool.submit(fn, *args, **kwargs)
        return self.future

    def _take(self, take: Callable[[Any], Any], service: str, name: str) -> tuple[Any, Any]:
        """Take the next RPC of a method, failing fast if the client call ends without one.

        ``take_*`` blocks without a timeout, so it runs in a daemon thread that may be left
        behind when the client raised before invoking the RPC.
        """
        taken: Future[Any] = Future()

        def run() -> None:
            taken.set_result(take(_method(service, name)))

        threading.Thread(target=run, daemon=True).start()
        done, _ = wait([taken, self.future], timeout=10, return_when=FIRST_COMPLETED)
        if taken in done:
            _, request, rpc = taken.result()
            return request, rpc
        if self.future in done:
            self.future.result()  # re-raises what the client raised
        raise AssertionError(f"the client did not call {service}.{name}")

    def unary(self, service: str, name: str) -> tuple[Any, Any]:
        """Wait for the client to invoke a unary RPC; return its request and handle."""
        return self._take(self.channel.take_unary_unary, service, name)

    def stream(self, service: str, name: str) -> tuple[Any, Any]:
        """Wait for the client to invoke a server-streaming RPC."""
        return self._take(self.channel.take_unary_stream, service, name)


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A fresh harness per test."""
    h = Harness()
    yield h
    h.client.close()
    h.pool.shutdown(wait=False, cancel_futures=True)


def _ok(rpc: Any, response: Any) -> None:
    """Answer a unary RPC successfully."""
    rpc.terminate(response, (), grpc.StatusCode.OK, "")


def _rich_status(code: grpc.StatusCode, message: str, *details: Any) -> status_pb2.Status:
    """A ``google.rpc.Status`` with packed details."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return status


# -- errors -------------------------------------------------------------------------------


def test_rich_status_becomes_client_error(harness: Harness) -> None:
    message = 'repository "x" not found'
    status = _rich_status(
        grpc.StatusCode.NOT_FOUND,
        message,
        error_details_pb2.ErrorInfo(
            reason="REPOSITORY_NOT_FOUND", domain="mirror.v1", metadata={"repository": "x"}
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="repository_id", description="must match\n[a-z0-9-]+"
                )
            ]
        ),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=5 * 10**8)),
    )
    future = harness.call(harness.client.get_repository, "x")
    request, rpc = harness.unary("RepositoryService", "GetRepository")
    assert request.name == "repositories/x"
    rpc.terminate(
        pb.GetRepositoryResponse(),
        ((STATUS_DETAILS_KEY, status.SerializeToString()),),
        grpc.StatusCode.NOT_FOUND,
        message,
    )
    with pytest.raises(MirrorClientError) as caught:
        future.result(timeout=5)
    err = caught.value
    assert err.code is grpc.StatusCode.NOT_FOUND
    assert err.message == message
    assert err.reason == "REPOSITORY_NOT_FOUND"
    assert err.domain == "mirror.v1"
    assert err.metadata == {"repository": "x"}
    assert err.field_violations == [("repository_id", "must match\n[a-z0-9-]+")]
    assert err.retry_delay == 2.5
    assert err.__cause__ is None and err.__suppress_context__
    assert str(err) == (
        'NOT_FOUND: repository "x" not found [reason=REPOSITORY_NOT_FOUND] '
        "(field repository_id: must match [a-z0-9-]+) (retry in 2.5s)"
    )
    assert "\n" not in str(err)


def test_plain_status_without_details(harness: Harness) -> None:
    future = harness.call(harness.client.delete_remote, "hub")
    request, rpc = harness.unary("RemoteService", "DeleteRemote")
    assert request.name == "remotes/hub"
    rpc.terminate(pb.DeleteRemoteResponse(), (), grpc.StatusCode.UNAVAILABLE, "connect: refused")
    with pytest.raises(MirrorClientError) as caught:
        future.result(timeout=5)
    err = caught.value
    assert (err.reason, err.metadata, err.field_violations, err.retry_delay) == ("", {}, [], None)
    assert err.is_connection_error
    assert str(err) == "UNAVAILABLE: connect: refused"


def test_garbled_details_trailer_is_ignored(harness: Harness) -> None:
    future = harness.call(harness.client.get_task, UUID)
    _, rpc = harness.unary("TaskService", "GetTask")
    rpc.terminate(
        pb.GetTaskResponse(), ((STATUS_DETAILS_KEY, b"\xff\xff"),), grpc.StatusCode.INTERNAL, "x"
    )
    with pytest.raises(MirrorClientError, match=r"^INTERNAL: x$"):
        future.result(timeout=5)


def test_bad_request_with_several_violations_is_one_line() -> None:
    status = _rich_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid remote",
        error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="mirror.v1"),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="url", description="required"),
                error_details_pb2.BadRequest.FieldViolation(
                    field="remote.download_concurrency", description="must be 1..100"
                ),
            ]
        ),
    )
    err = MirrorClientError.from_status(grpc.StatusCode.UNKNOWN, "", status)
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT
    assert str(err) == (
        "INVALID_ARGUMENT: invalid remote [reason=INVALID_ARGUMENT] "
        "(field url: required; field remote.download_concurrency: must be 1..100)"
    )


def test_violations_listed_in_the_message_print_once() -> None:
    status = _rich_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "repository_id: invalid id 'Not_Valid': must be lower-case; remote.url: is required",
        error_details_pb2.ErrorInfo(
            reason="MULTIPLE_RULES", domain="mirror.v1", metadata={"id": "Not_Valid"}
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="repository_id",
                    description="invalid id 'Not_Valid': must be lower-case",
                    reason="INVALID_RESOURCE_ID",
                ),
                error_details_pb2.BadRequest.FieldViolation(
                    field="remote.url", description="is required", reason="REQUIRED_FIELD"
                ),
            ]
        ),
    )
    err = MirrorClientError.from_status(grpc.StatusCode.UNKNOWN, "", status)
    assert str(err) == (
        "INVALID_ARGUMENT [reason=MULTIPLE_RULES] (field repository_id: invalid id 'Not_Valid': "
        "must be lower-case (INVALID_RESOURCE_ID); field remote.url: is required (REQUIRED_FIELD))"
    )
    assert str(err).count("Not_Valid") == 1
    assert [v.reason for v in err.violations] == ["INVALID_RESOURCE_ID", "REQUIRED_FIELD"]


# -- pagination ---------------------------------------------------------------------------


def test_iter_repositories_follows_page_tokens(harness: Harness) -> None:
    future = harness.call(lambda: [r.name for r in harness.client.iter_repositories(page_size=2)])
    pages = [
        (["repositories/a", "repositories/b"], "t1"),
        (["repositories/c", "repositories/d"], "t2"),
        (["repositories/e"], ""),
    ]
    tokens = []
    for names_, next_token in pages:
        request, rpc = harness.unary("RepositoryService", "ListRepositories")
        tokens.append(request.page_token)
        assert request.page_size == 2
        repositories = [pb.Repository(name=n) for n in names_]
        _ok(rpc, pb.ListRepositoriesResponse(repositories=repositories, next_page_token=next_token))
    assert future.result(timeout=5) == [f"repositories/{c}" for c in "abcde"]
    assert tokens == ["", "t1", "t2"]


def test_iter_versions_uses_the_repository_as_parent(harness: Harness) -> None:
    future = harness.call(lambda: list(harness.client.iter_versions("codzo")))
    request, rpc = harness.unary("VersionService", "ListVersions")
    assert request.parent == "repositories/codzo"
    _ok(rpc, pb.ListVersionsResponse(versions=[pb.Version(number=1), pb.Version(number=0)]))
    assert [v.number for v in future.result(timeout=5)] == [1, 0]


def test_list_tasks_returns_one_page(harness: Harness) -> None:
    future = harness.call(harness.client.list_tasks, 10, "tok", state="running")
    request, rpc = harness.unary("TaskService", "ListTasks")
    assert (request.page_size, request.page_token, request.state) == (
        10,
        "tok",
        pb.TASK_STATE_RUNNING,
    )
    _ok(rpc, pb.ListTasksResponse(tasks=[pb.Task(name="tasks/1")], next_page_token="n"))
    response = future.result(timeout=5)
    assert response.next_page_token == "n"


# -- field masks --------------------------------------------------------------------------


def test_update_repository_masks_only_given_fields(harness: Harness) -> None:
    future = harness.call(harness.client.update_repository, "codzo", retain_versions=0)
    request, rpc = harness.unary("RepositoryService", "UpdateRepository")
    assert request.repository.name == "repositories/codzo"
    assert list(request.update_mask.paths) == ["retain_versions"]
    _ok(rpc, pb.UpdateRepositoryResponse(repository=pb.Repository(name="repositories/codzo")))
    assert future.result(timeout=5).name == "repositories/codzo"


def test_update_remote_masks_exactly_the_keywords(harness: Harness) -> None:
    future = harness.call(
        harness.client.update_remote,
        "remotes/hub",
        include_tags=["1.*", "latest"],
        policy="on_demand",
        ssl_validation=False,
        download_concurrency=None,
    )
    request, rpc = harness.unary("RemoteService", "UpdateRemote")
    assert list(request.update_mask.paths) == [
        "include_tags",
        "policy",
        "ssl_validation",
        "download_concurrency",
    ]
    remote = request.remote
    assert remote.name == "remotes/hub"
    assert list(remote.include_tags) == ["1.*", "latest"]
    assert remote.policy == pb.POLICY_ON_DEMAND
    assert remote.HasField("ssl_validation") and remote.ssl_validation is False
    assert not remote.HasField("download_concurrency")
    _ok(rpc, pb.UpdateRemoteResponse(remote=remote))
    future.result(timeout=5)


def test_update_requests_reject_misuse() -> None:
    with pytest.raises(ValueError, match="nothing to update"):
        builders.update_repository_request("x")
    with pytest.raises(ValueError, match="nothing to update"):
        builders.update_remote_request("x")
    with pytest.raises(TypeError, match="output only"):
        builders.update_remote_request("x", password_set=True)
    with pytest.raises(TypeError, match="no field"):
        builders.create_remote_request("x", "https://r", "u", colour="red")
    with pytest.raises(TypeError, match="list of strings"):
        builders.create_remote_request("x", "https://r", "u", include_tags="a,b")
    with pytest.raises(ValueError, match="choose one of immediate, on_demand, streamed"):
        builders.create_remote_request("x", "https://r", "u", policy="lazy")


def test_create_remote_sets_every_input_field() -> None:
    request = builders.create_remote_request(
        "hub",
        "https://registry-1.docker.io",
        "library/alpine",
        headers={"X-A": "1"},
        max_retries=0,
        rate_limit=2.5,
        password="s3cret",
        username=None,
    )
    assert request.remote_id == "hub"
    remote = request.remote
    assert (remote.url, remote.upstream_name) == ("https://registry-1.docker.io", "library/alpine")
    assert dict(remote.headers) == {"X-A": "1"}
    assert remote.HasField("max_retries") and remote.max_retries == 0
    assert remote.password == "s3cret" and remote.username == ""
    assert "name" not in builders.REMOTE_INPUT_FIELDS
    assert "password" in builders.REMOTE_INPUT_FIELDS


def test_update_distribution_switches_between_repository_and_version() -> None:
    request = builders.update_distribution_request("web", version="codzo/versions/3")
    assert request.distribution.version == "repositories/codzo/versions/3"
    assert list(request.update_mask.paths) == ["repository", "version"]
    request = builders.update_distribution_request("web", description="d")
    assert list(request.update_mask.paths) == ["description"]


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (names.repository_name, "codzo", "repositories/codzo"),
        (names.repository_name, "repositories/codzo", "repositories/codzo"),
        (names.remote_name, "hub", "remotes/hub"),
        (names.remote_name, "remotes/hub", "remotes/hub"),
        (names.distribution_name, "web", "distributions/web"),
        (names.task_name, UUID, f"tasks/{UUID}"),
        (names.task_name, UUID.upper(), f"tasks/{UUID}"),
        (names.task_name, f"tasks/{UUID}", f"tasks/{UUID}"),
        (names.version_name, "codzo", "repositories/codzo/versions/latest"),
        (names.version_name, "codzo/versions/2", "repositories/codzo/versions/2"),
        (names.version_name, "repositories/c/versions/2", "repositories/c/versions/2"),
    ],
)
def test_name_normalisation(fn: Callable[[str], str], value: str, expected: str) -> None:
    assert fn(value) == expected


def test_version_name_with_number() -> None:
    assert names.version_name("codzo", 3) == "repositories/codzo/versions/3"
    assert (
        names.version_name("repositories/codzo", "latest") == "repositories/codzo/versions/latest"
    )
    with pytest.raises(ValueError):
        names.version_name("codzo", "-1")
    with pytest.raises(ValueError):
        names.version_name("codzo/versions/1", 2)
    with pytest.raises(ValueError):
        names.repository_name("")


def test_client_methods_normalise_names(harness: Harness) -> None:
    cases: list[tuple[Callable[[], Any], str, str, Any, Callable[[Any], str]]] = [
        (
            lambda: harness.client.get_task(UUID),
            "TaskService",
            "GetTask",
            pb.GetTaskResponse(),
            lambda r: r.name,
        ),
        (
            lambda: harness.client.cancel_task(f"tasks/{UUID}"),
            "TaskService",
            "CancelTask",
            pb.CancelTaskResponse(),
            lambda r: r.name,
        ),
        (
            lambda: harness.client.get_version("codzo", 2),
            "VersionService",
            "GetVersion",
            pb.GetVersionResponse(),
            lambda r: r.name,
        ),
        (
            lambda: harness.client.delete_version("repositories/codzo/versions/1"),
            "VersionService",
            "DeleteVersion",
            pb.DeleteVersionResponse(),
            lambda r: r.name,
        ),
        (
            lambda: harness.client.get_distribution("web"),
            "DistributionService",
            "GetDistribution",
            pb.GetDistributionResponse(),
            lambda r: r.name,
        ),
        (
            lambda: harness.client.start_sync("codzo", "hub", mirror=True),
            "SyncService",
            "StartSync",
            pb.StartSyncResponse(),
            lambda r: f"{r.repository} {r.remote} {r.mirror}",
        ),
        (
            lambda: harness.client.list_content("codzo", membership="added", content_type="t"),
            "ContentService",
            "ListContent",
            pb.ListContentResponse(),
            lambda r: f"{r.parent} {r.membership}",
        ),
        (
            lambda: harness.client.diff_versions(1, "latest", repository="codzo"),
            "ContentService",
            "DiffVersions",
            pb.DiffVersionsResponse(),
            lambda r: f"{r.base_version} {r.target_version}",
        ),
    ]
    seen = []
    for call, service, method, response, describe in cases:
        future = harness.call(call)
        request, rpc = harness.unary(service, method)
        seen.append(describe(request))
        _ok(rpc, response)
        future.result(timeout=5)
    assert seen == [
        f"tasks/{UUID}",
        f"tasks/{UUID}",
        "repositories/codzo/versions/2",
        "repositories/codzo/versions/1",
        "distributions/web",
        "repositories/codzo remotes/hub True",
        f"repositories/codzo/versions/latest {pb.MEMBERSHIP_ADDED}",
        "repositories/codzo/versions/1 repositories/codzo/versions/latest",
    ]


def test_delete_version_needs_a_number() -> None:
    with pytest.raises(ValueError, match="give a version number"):
        MirrorClient(
            channel=grpc_testing.channel([], grpc_testing.strict_real_time())
        ).delete_version("codzo")


# -- streams ------------------------------------------------------------------------------


def _task(state: Any, **kwargs: Any) -> pb.Task:
    return pb.Task(name=f"tasks/{UUID}", kind="sync", state=state, **kwargs)


def test_sync_streams_events(harness: Harness) -> None:
    future = harness.call(
        lambda: [e.kind for e in harness.client.sync("codzo", "hub", request_id=UUID)]
    )
    request, rpc = harness.stream("SyncService", "Sync")
    assert (request.repository, request.remote, request.request_id) == (
        "repositories/codzo",
        "remotes/hub",
        UUID,
    )
    rpc.send_response(pb.SyncResponse(kind=pb.TASK_EVENT_KIND_SNAPSHOT, task=_task(1)))
    rpc.send_response(pb.SyncResponse(kind=pb.TASK_EVENT_KIND_WARNING, task=_task(2), warning="w"))
    rpc.send_response(pb.SyncResponse(kind=pb.TASK_EVENT_KIND_FINISHED, task=_task(3)))
    rpc.terminate((), grpc.StatusCode.OK, "")
    assert future.result(timeout=5) == [
        pb.TASK_EVENT_KIND_SNAPSHOT,
        pb.TASK_EVENT_KIND_WARNING,
        pb.TASK_EVENT_KIND_FINISHED,
    ]


def test_stream_errors_become_client_errors(harness: Harness) -> None:
    events: list[int] = []
    first = threading.Event()

    def consume() -> None:
        for event in harness.client.watch_task(UUID):
            events.append(event.kind)
            first.set()

    future = harness.call(consume)
    request, rpc = harness.stream("TaskService", "WatchTask")
    assert request.name == f"tasks/{UUID}"
    rpc.send_response(pb.WatchTaskResponse(kind=pb.TASK_EVENT_KIND_SNAPSHOT, task=_task(2)))
    # grpc_testing drops unread responses once an RPC fails, so let the event be read first.
    assert first.wait(timeout=5)
    status = _rich_status(
        grpc.StatusCode.NOT_FOUND,
        "task gone",
        error_details_pb2.ErrorInfo(reason="TASK_NOT_FOUND", domain="mirror.v1"),
    )
    rpc.terminate(
        ((STATUS_DETAILS_KEY, status.SerializeToString()),), grpc.StatusCode.NOT_FOUND, "task gone"
    )
    with pytest.raises(MirrorClientError) as caught:
        future.result(timeout=5)
    assert caught.value.reason == "TASK_NOT_FOUND"
    assert events == [pb.TASK_EVENT_KIND_SNAPSHOT]


# -- CLI argument wiring ------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_remote_update_masks_only_given_options() -> None:
    args = _parse("remote", "update", "x", "--include-tags", "a,b")
    fields = remote_fields(args)
    assert fields == {"include_tags": ["a", "b"]}
    request = builders.update_remote_request(args.name, **fields)
    assert list(request.update_mask.paths) == ["include_tags"]
    assert request.remote.name == "remotes/x"


def test_remote_update_can_clear_and_toggle() -> None:
    args = _parse(
        "remote",
        "update",
        "x",
        "--include-tags",
        "",
        "--no-ssl-validation",
        "--signed-only",
        "--header",
        "A=1",
        "--header",
        "B=x=y",
        "--policy",
        "streamed",
    )
    fields = remote_fields(args)
    assert fields == {
        "include_tags": [],
        "ssl_validation": False,
        "signed_only": True,
        "headers": {"A": "1", "B": "x=y"},
        "policy": "streamed",
    }
    request = builders.update_remote_request("x", **fields)
    assert sorted(request.update_mask.paths) == [
        "headers",
        "include_tags",
        "policy",
        "signed_only",
        "ssl_validation",
    ]


def test_remote_create_reads_files_and_password_stdin(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    args = _parse(
        "remote",
        "create",
        "hub",
        "--url",
        "https://r.example",
        "--upstream-name",
        "library/alpine",
        "--include-tags",
        "1.*",
        "--include-tags",
        "latest",
        "--password-stdin",
        "--ssl-ca-certificate",
        str(ca),
        "--download-concurrency",
        "4",
    )
    fields = remote_fields(args, stdin=io.StringIO("tok\n"))
    assert fields == {
        "url": "https://r.example",
        "upstream_name": "library/alpine",
        "include_tags": ["1.*", "latest"],
        "password": "tok",
        "ssl_ca_certificate": "-----BEGIN CERTIFICATE-----\n",
        "download_concurrency": 4,
    }


def test_remote_create_requires_url_and_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse("remote", "create", "hub", "--url", "https://r")
    assert exited.value.code == 2
    assert "--upstream-name" in capsys.readouterr().err


def test_global_options_before_or_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_SERVER", "env:1")
    monkeypatch.setenv("MIRROR_CONFIG", "/nonexistent/config.toml")
    assert _parse("repository", "list").server is None  # resolved later: variable, profile
    assert connection(_parse("repository", "list"))[0] == "env:1"
    args = _parse("--server", "a:1", "-o", "json", "repository", "list")
    assert (args.server, args.output) == ("a:1", "json")
    args = _parse("repo", "list", "--server", "b:2", "--output", "json")
    assert (args.server, args.output) == ("b:2", "json")


def test_other_commands_parse() -> None:
    args = _parse("distribution", "create", "web", "--base-path", "lib/a", "--version", "r", "3")
    assert (args.version, args.repository) == (["r", "3"], None)
    args = _parse("content", "list", "r", "--type", "tag", "--membership", "added")
    assert (args.type, args.membership, args.version) == ("container.tag", "added", "latest")
    args = _parse("content", "list", "r")
    assert (args.type, args.membership, args.version) == (None, "present", "latest")
    args = _parse("content", "diff", "r", "1", "latest")
    assert (args.base, args.target, args.type) == ("1", "latest", None)
    args = _parse("sync", "r", "--remote", "hub", "--mirror", "--detach")
    assert (args.repository, args.remote, args.mirror, args.detach) == ("r", "hub", True, True)
    args = _parse("version", "show", "r", "latest")
    assert args.number == "latest"
    args = _parse("task", "list", "--state", "running")
    assert args.state == "running"
    with pytest.raises(SystemExit):
        _parse("distribution", "create", "web", "--base-path", "p")
    with pytest.raises(SystemExit):
        _parse("version", "delete", "r", "latest")


def test_cancelled_stream_just_ends(harness: Harness) -> None:
    stream = harness.client.watch_task(UUID)  # the call starts here, in this thread
    harness.future = Future()  # nothing runs in the worker: wait for the RPC alone
    _, rpc = harness.stream("TaskService", "WatchTask")
    rpc.send_response(pb.WatchTaskResponse(kind=pb.TASK_EVENT_KIND_SNAPSHOT, task=_task(2)))
    with stream:
        assert next(stream).kind == pb.TASK_EVENT_KIND_SNAPSHOT
    assert list(stream) == []


def test_python_dash_m_client_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "client", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "usage: mirrorctl" in result.stdout
