"""Every validation rule: INVALID_ARGUMENT naming the offending field in a BadRequest.

One table of (RPC, request, field); each row is sent to the real server, which must answer
INVALID_ARGUMENT with ErrorInfo (domain ``mirror.v1``) and a BadRequest whose violations
name exactly that field. No call may answer INTERNAL or UNKNOWN for bad input.

The requests are built by hand (raw stubs on the client's channel) so that the client's
own name handling cannot repair them. One server per database serves the whole module (a
server per row would cost more than the rows); rows never depend on each other's effects.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from client import AsyncMirrorClient, MirrorClientError
from client.auth import read_token_file
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.app import build_services, start_grpc
from server.config import Settings
from server.domain.errors import Rule
from tests.conftest import fresh_database_url

pytestmark = pytest.mark.asyncio(loop_scope="module")

DOMAIN = "mirror.v1"
UUID = "0d4c2a8e-9c3f-4f1a-a7d2-5b6e8f9a0b1c"
URL = "https://registry.example.com"
BAD_IDS = ["UPPER", "a b", "-x", "x-", "x" * 129, "", "a/b", "caf\u00e9"]
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


# ----------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Target:
    address: str
    database: str
    token: str


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    """A real server with one repository, remote and distribution called `existing`."""
    tmp = tmp_path_factory.mktemp(f"validation-{request.param}")
    async with fresh_database_url(request.param, tmp) as url:
        settings = Settings(
            grpc_address="127.0.0.1:0",
            registry_address="127.0.0.1:0",
            data_dir=tmp / "data",
            database_url=url,
            workers=1,
            retry_backoff=0.01,
        )
        async with build_services(settings) as services:
            server, port = await start_grpc(services, "127.0.0.1:0")
            try:
                address = f"127.0.0.1:{port}"
                token = read_token_file(settings.admin_token_file)
                async with AsyncMirrorClient(address, timeout=10, token=token) as client:
                    await client.create_repository("existing")
                    await client.create_remote("existing", URL, "library/hello")
                    await client.create_distribution("existing", "existing", repository="existing")
                yield Target(address, request.param, token)
            finally:
                await server.stop(None)


_STUBS = {
    "RepositoryService": pb_grpc.RepositoryServiceStub,
    "RemoteService": pb_grpc.RemoteServiceStub,
    "SyncService": pb_grpc.SyncServiceStub,
    "VersionService": pb_grpc.VersionServiceStub,
    "ContentService": pb_grpc.ContentServiceStub,
    "ContentOperationService": pb_grpc.ContentOperationServiceStub,
    "DistributionService": pb_grpc.DistributionServiceStub,
    "TaskService": pb_grpc.TaskServiceStub,
    "AccessService": pb_grpc.AccessServiceStub,
    "HousekeepingService": pb_grpc.HousekeepingServiceStub,
}


async def invoke(target: Target, rpc: str, request: Message) -> Message | list[Message]:
    """Call `Service/Method` with `request`; gRPC errors raise MirrorClientError."""
    service, method = rpc.split("/")
    async with AsyncMirrorClient(target.address, timeout=10, token=target.token) as client:
        stub = _STUBS[service](client.channel)
        try:
            call = getattr(stub, method)(request, timeout=10)
            if pb.DESCRIPTOR.services_by_name[service].methods_by_name[method].server_streaming:
                return [response async for response in call]
            return await call
        except grpc.RpcError as err:
            raise MirrorClientError.from_rpc_error(err) from None


# ------------------------------------------------------------------------ the table

_ids = itertools.count()


def new_id() -> str:
    """A fresh valid id, so that no row could collide with another one."""
    return f"new-{next(_ids)}"


def remote(**fields: Any) -> pb.Remote:
    """A valid remote with `fields` replaced; a value of None leaves the field unset."""
    values: dict[str, Any] = {"url": URL, "upstream_name": "library/hello"}
    values.update(fields)
    return pb.Remote(**{k: v for k, v in values.items() if v is not None})


def create_remote(**fields: Any) -> tuple[str, Message]:
    return "RemoteService/CreateRemote", pb.CreateRemoteRequest(
        remote_id=new_id(), remote=remote(**fields)
    )


def update_remote(paths: list[str], **fields: Any) -> tuple[str, Message]:
    """UpdateRemote of the existing remote with `fields` and the mask `paths`."""
    return "RemoteService/UpdateRemote", pb.UpdateRemoteRequest(
        remote=pb.Remote(name="remotes/existing", **fields),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )


def create_distribution(**fields: Any) -> tuple[str, Message]:
    values: dict[str, Any] = {"base_path": new_id(), "repository": "repositories/existing"}
    values.update(fields)
    distribution = pb.Distribution(**{k: v for k, v in values.items() if v is not None})
    return "DistributionService/CreateDistribution", pb.CreateDistributionRequest(
        distribution_id=new_id(), distribution=distribution
    )


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


@dataclass(frozen=True)
class Case:
    rpc: str
    request: Message
    field: str


def case(call: tuple[str, Message], field: str) -> Case:
    return Case(call[0], call[1], field)


def rpc(name: str, request: Message, field: str) -> Case:
    return Case(name, request, field)


def _table() -> list[Any]:
    rows: list[Any] = []

    def add(label: str, row: Case, *marks: Any) -> None:
        rows.append(pytest.param(row, id=label, marks=marks))

    # ids of new resources
    for bad in BAD_IDS:
        label = repr(bad) if len(bad) < 20 else f"len{len(bad)}"
        add(
            f"repository_id={label}",
            rpc(
                "RepositoryService/CreateRepository",
                pb.CreateRepositoryRequest(repository_id=bad),
                "repository_id",
            ),
        )
        add(
            f"remote_id={label}",
            rpc(
                "RemoteService/CreateRemote",
                pb.CreateRemoteRequest(remote_id=bad, remote=remote()),
                "remote_id",
            ),
        )
        add(
            f"distribution_id={label}",
            rpc(
                "DistributionService/CreateDistribution",
                pb.CreateDistributionRequest(
                    distribution_id=bad,
                    distribution=pb.Distribution(
                        base_path=new_id(), repository="repositories/existing"
                    ),
                ),
                "distribution_id",
            ),
        )
    add(
        "repository.retain_versions=-1",
        rpc(
            "RepositoryService/CreateRepository",
            pb.CreateRepositoryRequest(
                repository_id=new_id(), repository=pb.Repository(retain_versions=-1)
            ),
            "repository.retain_versions",
        ),
    )
    add(
        "create_remote_without_remote",
        rpc("RemoteService/CreateRemote", pb.CreateRemoteRequest(remote_id=new_id()), "remote"),
    )

    # resource names
    for name in ("repository/x", "repositories/UPPER", "repositories/", "", "remotes/x"):
        add(
            f"GetRepository.name={name!r}",
            rpc("RepositoryService/GetRepository", pb.GetRepositoryRequest(name=name), "name"),
        )
    add(
        "DeleteRepository.name",
        rpc(
            "RepositoryService/DeleteRepository",
            pb.DeleteRepositoryRequest(name="repository/x"),
            "name",
        ),
    )
    add(
        "UpdateRepository.repository.name",
        rpc(
            "RepositoryService/UpdateRepository",
            pb.UpdateRepositoryRequest(
                repository=pb.Repository(name="repositories/UPPER", description="x"),
                update_mask=mask("description"),
            ),
            "repository.name",
        ),
    )
    for name in ("remote/x", "remotes/UPPER", "repositories/x"):
        add(
            f"GetRemote.name={name!r}",
            rpc("RemoteService/GetRemote", pb.GetRemoteRequest(name=name), "name"),
        )
    add(
        "DeleteRemote.name",
        rpc("RemoteService/DeleteRemote", pb.DeleteRemoteRequest(name="remotes/a b"), "name"),
    )
    add(
        "UpdateRemote.remote.name",
        rpc(
            "RemoteService/UpdateRemote",
            pb.UpdateRemoteRequest(
                remote=pb.Remote(name="remote/existing", username="x"), update_mask=mask("username")
            ),
            "remote.name",
        ),
    )
    for name in ("distribution/x", "distributions/UPPER"):
        add(
            f"GetDistribution.name={name!r}",
            rpc(
                "DistributionService/GetDistribution",
                pb.GetDistributionRequest(name=name),
                "name",
            ),
        )
    add(
        "DeleteDistribution.name",
        rpc(
            "DistributionService/DeleteDistribution",
            pb.DeleteDistributionRequest(name="distributions/-x"),
            "name",
        ),
    )
    add(
        "UpdateDistribution.distribution.name",
        rpc(
            "DistributionService/UpdateDistribution",
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name="distribution/existing", description="x"),
                update_mask=mask("description"),
            ),
            "distribution.name",
        ),
    )
    for name in (
        "repositories/existing/versions/abc",
        "repositories/existing/versions/-1",
        "repositories/existing/versions/1.5",
        "repositories/existing/versions/",
        "repositories/existing/versions/\u0661",  # an Arabic-Indic digit one
        "repositories/existing",
        "repositories/UPPER/versions/0",
        "repository/existing/versions/0",
    ):
        add(
            f"GetVersion.name={name!r}",
            rpc("VersionService/GetVersion", pb.GetVersionRequest(name=name), "name"),
        )
    for name in ("repositories/existing/versions/latest", "repositories/existing/versions/x"):
        add(
            f"DeleteVersion.name={name!r}",
            rpc("VersionService/DeleteVersion", pb.DeleteVersionRequest(name=name), "name"),
        )
    for parent in ("repository/existing", "repositories/existing/versions/0", ""):
        add(
            f"ListVersions.parent={parent!r}",
            rpc("VersionService/ListVersions", pb.ListVersionsRequest(parent=parent), "parent"),
        )
    for name in ("tasks/not-a-uuid", f"task/{UUID}", "tasks/", f"tasks/{UUID}/x", ""):
        add(
            f"GetTask.name={name!r}",
            rpc("TaskService/GetTask", pb.GetTaskRequest(name=name), "name"),
        )
    add(
        "CancelTask.name",
        rpc("TaskService/CancelTask", pb.CancelTaskRequest(name="tasks/not-a-uuid"), "name"),
    )
    add(
        "WatchTask.name",
        rpc("TaskService/WatchTask", pb.WatchTaskRequest(name="tasks/not-a-uuid"), "name"),
    )
    for method, message in (
        ("SyncService/StartSync", pb.StartSyncRequest),
        ("SyncService/Sync", pb.SyncRequest),
    ):
        short = method.rsplit("/", 1)[1]
        good = {"repository": "repositories/existing", "remote": "remotes/existing"}
        add(
            f"{short}.repository",
            rpc(method, message(**(good | {"repository": "repository/existing"})), "repository"),
        )
        add(f"{short}.remote", rpc(method, message(**(good | {"remote": "remotes/A"})), "remote"))
        add(
            f"{short}.request_id",
            rpc(method, message(**good, request_id="not-a-uuid"), "request_id"),
        )

    # remote fields, on create
    for url in (
        "",
        "ftp://x",
        "http://",
        "registry.example.com",
        "http://h/?q=1",
        "http://h:99999",
    ):
        add(f"remote.url={url!r}", case(create_remote(url=url or None), "remote.url"))
    for name in ("", "Library/Hello", "a//b", "/a", "a/", "a" * 256, "a b"):
        label = repr(name) if len(name) < 20 else f"len{len(name)}"
        add(
            f"remote.upstream_name={label}",
            case(create_remote(upstream_name=name or None), "remote.upstream_name"),
        )
    for pattern in ("[abc", "a b", "sha256:zz", "abc]", "", "x" * 129, "a/b"):
        label = repr(pattern) if len(pattern) < 20 else f"len{len(pattern)}"
        add(
            f"remote.include_tags={label}",
            case(create_remote(include_tags=[pattern]), "remote.include_tags[0]"),
        )
    add(
        "remote.include_tags[1]",
        case(create_remote(include_tags=["1.*", "[abc"]), "remote.include_tags[1]"),
    )
    for pattern in ("[abc", "a b", "sha256:zz"):
        add(
            f"remote.exclude_tags={pattern!r}",
            case(create_remote(exclude_tags=[pattern]), "remote.exclude_tags[0]"),
        )
    for value in (0, 101, -1):
        add(
            f"remote.download_concurrency={value}",
            case(create_remote(download_concurrency=value), "remote.download_concurrency"),
        )
    for value in (11, -1):
        add(
            f"remote.max_retries={value}",
            case(create_remote(max_retries=value), "remote.max_retries"),
        )
    for field, value in (
        ("connect_timeout", -1.0),
        ("sock_read_timeout", -0.5),
        ("total_timeout", float("nan")),
        ("rate_limit", float("inf")),
    ):
        add(f"remote.{field}={value}", case(create_remote(**{field: value}), f"remote.{field}"))
    for headers in (
        {"Authorization": "x"},
        {"authorization": "x"},
        {"Host": "x"},
        {"X-Header": "a\r\nInjected: 1"},
        {"X-Header": "a\x00"},
        {"Bad Name": "x"},
        {"": "x"},
    ):
        add(f"remote.headers={headers!r}", case(create_remote(headers=headers), "remote.headers"))
    add("remote.policy=99", case(create_remote(policy=99), "remote.policy"))
    add("remote.proxy_url=ftp", case(create_remote(proxy_url="ftp://proxy"), "remote.proxy_url"))
    add("remote.sigstore=file", case(create_remote(sigstore="file:///sigs"), "remote.sigstore"))
    add(
        "remote.ssl_client_certificate_without_key",
        case(create_remote(ssl_client_certificate="-----BEGIN"), "remote.ssl_client_key"),
    )
    add(
        "remote.ssl_client_key_without_certificate",
        case(create_remote(ssl_client_key="-----BEGIN"), "remote.ssl_client_key"),
    )
    for host in ("a/b", "", "a b"):
        add(
            f"remote.token_realm_allowlist={host!r}",
            case(create_remote(token_realm_allowlist=[host]), "remote.token_realm_allowlist[0]"),
        )
    # URLs that urlsplit() tolerates but no HTTP client can use.
    for url in ("http://exa mple.com", "http://h\r\n/", "http://a\x00b/"):
        add(
            f"remote.url={url!r}",
            case(create_remote(url=url), "remote.url"),
        )

    # remote fields, on update of an existing remote
    add("update remote.url", case(update_remote(["url"], url="ftp://x"), "remote.url"))
    add(
        "update remote.upstream_name",
        case(update_remote(["upstream_name"], upstream_name="A//B"), "remote.upstream_name"),
    )
    add(
        "update remote.download_concurrency",
        case(
            update_remote(["download_concurrency"], download_concurrency=0),
            "remote.download_concurrency",
        ),
    )
    add(
        "update remote.include_tags",
        case(update_remote(["include_tags"], include_tags=["[x"]), "remote.include_tags[0]"),
    )
    add("update remote.policy", case(update_remote(["policy"], policy=42), "remote.policy"))
    add(
        "update remote.headers",
        case(update_remote(["headers"], headers={"Authorization": "x"}), "remote.headers"),
    )
    add("update remote.url cleared", case(update_remote(["url"]), "remote.url"))

    # update masks
    add(
        "UpdateRepository.update_mask=bogus",
        rpc(
            "RepositoryService/UpdateRepository",
            pb.UpdateRepositoryRequest(
                repository=pb.Repository(name="repositories/existing", description="x"),
                update_mask=mask("description", "bogus"),
            ),
            "update_mask",
        ),
    )
    add("UpdateRemote.update_mask=bogus", case(update_remote(["bogus"]), "update_mask"))
    add("UpdateRemote.update_mask=remote.url", case(update_remote(["remote.url"]), "update_mask"))
    add(
        "UpdateDistribution.update_mask=bogus",
        rpc(
            "DistributionService/UpdateDistribution",
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name="distributions/existing"),
                update_mask=mask("bogus"),
            ),
            "update_mask",
        ),
    )
    add(
        "UpdateRepository.retain_versions=-1",
        rpc(
            "RepositoryService/UpdateRepository",
            pb.UpdateRepositoryRequest(
                repository=pb.Repository(name="repositories/existing", retain_versions=-1),
                update_mask=mask("retain_versions"),
            ),
            "repository.retain_versions",
        ),
    )

    # distributions
    add(
        "distribution.repository_and_version",
        case(
            create_distribution(version="repositories/existing/versions/0"),
            "distribution.repository",
        ),
    )
    add(
        "distribution.neither_repository_nor_version",
        case(create_distribution(repository=None), "distribution.repository"),
    )
    for path in ("Bad/Path", "", "a//b", "/x", "x/", "a b"):
        add(
            f"distribution.base_path={path!r}",
            case(create_distribution(base_path=path or None), "distribution.base_path"),
        )
    add(
        "distribution.repository=repository/x",
        case(create_distribution(repository="repository/x"), "distribution.repository"),
    )
    for version in ("repositories/existing/versions/latest", "repositories/existing"):
        add(
            f"distribution.version={version!r}",
            case(create_distribution(repository=None, version=version), "distribution.version"),
        )
    add(
        "UpdateDistribution.base_path",
        rpc(
            "DistributionService/UpdateDistribution",
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name="distributions/existing", base_path="Bad/Path"),
                update_mask=mask("base_path"),
            ),
            "distribution.base_path",
        ),
    )
    add(
        "UpdateDistribution.repository_cleared",
        rpc(
            "DistributionService/UpdateDistribution",
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name="distributions/existing"),
                update_mask=mask("repository", "version"),
            ),
            "distribution.repository",
        ),
    )

    # paging and list filters
    lists: list[tuple[str, type[Message], dict[str, Any]]] = [
        ("RepositoryService/ListRepositories", pb.ListRepositoriesRequest, {}),
        ("RemoteService/ListRemotes", pb.ListRemotesRequest, {}),
        ("DistributionService/ListDistributions", pb.ListDistributionsRequest, {}),
        ("TaskService/ListTasks", pb.ListTasksRequest, {}),
        (
            "VersionService/ListVersions",
            pb.ListVersionsRequest,
            {"parent": "repositories/existing"},
        ),
        (
            "ContentService/ListContent",
            pb.ListContentRequest,
            {"parent": "repositories/existing/versions/0"},
        ),
        (
            "ContentService/DiffVersions",
            pb.DiffVersionsRequest,
            {
                "base_version": "repositories/existing/versions/0",
                "target_version": "repositories/existing/versions/latest",
            },
        ),
    ]
    for method, message, base in lists:
        short = method.rsplit("/", 1)[1]
        add(f"{short}.page_size=-1", rpc(method, message(**base, page_size=-1), "page_size"))
        for token in ("garbage", "!!!", "eyJ2IjogMX0"):
            add(
                f"{short}.page_token={token!r}",
                rpc(method, message(**base, page_token=token), "page_token"),
            )
    add("ListTasks.state=99", rpc("TaskService/ListTasks", pb.ListTasksRequest(state=99), "state"))

    # content
    add(
        "ListContent.parent",
        rpc(
            "ContentService/ListContent",
            pb.ListContentRequest(parent="repositories/existing"),
            "parent",
        ),
    )
    add(
        "ListContent.content_type",
        rpc(
            "ContentService/ListContent",
            pb.ListContentRequest(
                parent="repositories/existing/versions/0", content_type="container.bogus"
            ),
            "content_type",
        ),
    )
    add(
        "ListContent.membership",
        rpc(
            "ContentService/ListContent",
            pb.ListContentRequest(parent="repositories/existing/versions/0", membership=99),
            "membership",
        ),
    )
    add(
        "ListContent.manifest_digest",
        rpc(
            "ContentService/ListContent",
            pb.ListContentRequest(
                parent="repositories/existing/versions/0", manifest_digest="sha256:zz"
            ),
            "manifest_digest",
        ),
    )
    add(
        "DiffVersions.base_version",
        rpc(
            "ContentService/DiffVersions",
            pb.DiffVersionsRequest(
                base_version="repositories/existing",
                target_version="repositories/existing/versions/0",
            ),
            "base_version",
        ),
    )
    add(
        "DiffVersions.other_repository",
        rpc(
            "ContentService/DiffVersions",
            pb.DiffVersionsRequest(
                base_version="repositories/existing/versions/0",
                target_version="repositories/other/versions/0",
            ),
            "target_version",
        ),
    )
    return rows


@pytest.mark.parametrize("row", _table())
async def test_invalid_argument_names_the_field(target: Target, row: Case) -> None:
    with pytest.raises(MirrorClientError) as info:
        await invoke(target, row.rpc, row.request)
    err = info.value
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT, str(err)
    assert [field for field, _ in err.field_violations] == [row.field], str(err)
    assert all(description for _, description in err.field_violations), str(err)
    # The reason names the rule broken, the same in ErrorInfo and in the one violation.
    assert err.domain == DOMAIN, str(err)
    assert err.reason in RULES, str(err)
    assert [v.reason for v in err.violations] == [err.reason], str(err)


RULES = {
    value for name, value in vars(Rule).items() if name.isupper() and value != "MULTIPLE_RULES"
}


@pytest.mark.parametrize("bad_id", ["UPPER", "-x", ""])
async def test_bad_id_is_invalid_resource_id(target: Target, bad_id: str) -> None:
    with pytest.raises(MirrorClientError) as info:
        await invoke(
            target,
            "RepositoryService/CreateRepository",
            pb.CreateRepositoryRequest(repository_id=bad_id),
        )
    assert info.value.reason == "INVALID_RESOURCE_ID", str(info.value)


async def test_an_invalid_id_does_not_hide_other_bad_fields(target: Target) -> None:
    request = pb.CreateRemoteRequest(
        remote_id="Bad Id", remote=pb.Remote(url="ftp://x", upstream_name="library/hello")
    )
    with pytest.raises(MirrorClientError) as info:
        await invoke(target, "RemoteService/CreateRemote", request)
    err = info.value
    assert err.reason == "MULTIPLE_RULES", str(err)
    assert [(v.field, v.reason) for v in err.violations] == [
        ("remote_id", "INVALID_RESOURCE_ID"),
        ("remote.url", "INVALID_URL"),
    ]
    request = pb.CreateDistributionRequest(
        distribution_id="-x", distribution=pb.Distribution(base_path="UP", repository="r")
    )
    with pytest.raises(MirrorClientError) as info:
        await invoke(target, "DistributionService/CreateDistribution", request)
    assert [(v.field, v.reason) for v in info.value.violations] == [
        ("distribution_id", "INVALID_RESOURCE_ID"),
        ("distribution.base_path", "INVALID_REPOSITORY_PATH"),
        ("distribution.repository", "INVALID_RESOURCE_NAME"),
    ]
    request = pb.CreateRepositoryRequest(
        repository_id="A", repository=pb.Repository(retain_versions=-1)
    )
    with pytest.raises(MirrorClientError) as info:
        await invoke(target, "RepositoryService/CreateRepository", request)
    assert [(v.field, v.reason) for v in info.value.violations] == [
        ("repository_id", "INVALID_RESOURCE_ID"),
        ("repository.retain_versions", "VALUE_OUT_OF_RANGE"),
    ]


async def test_every_violation_is_reported_at_once(target: Target) -> None:
    request = pb.CreateRemoteRequest(
        remote_id="several",
        remote=pb.Remote(
            url="ftp://x",
            upstream_name="Library/Hello",
            include_tags=["ok", "[bad"],
            download_concurrency=0,
            max_retries=11,
            headers={"Authorization": "x"},
        ),
    )
    with pytest.raises(MirrorClientError) as info:
        await invoke(target, "RemoteService/CreateRemote", request)
    err = info.value
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT, str(err)
    assert sorted(field for field, _ in err.field_violations) == [
        "remote.download_concurrency",
        "remote.headers",
        "remote.include_tags[1]",
        "remote.max_retries",
        "remote.upstream_name",
        "remote.url",
    ]
    with pytest.raises(MirrorClientError) as info:
        await invoke(target, "RemoteService/GetRemote", pb.GetRemoteRequest(name="remotes/several"))
    assert info.value.code is grpc.StatusCode.NOT_FOUND


def _all_methods() -> list[str]:
    return [
        f"{service.name}/{method.name}"
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


@pytest.mark.parametrize("method", _all_methods())
async def test_empty_request_is_never_an_internal_error(target: Target, method: str) -> None:
    service, name = method.split("/")
    descriptor = pb.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    request = getattr(pb, descriptor.input_type.name)()
    try:
        await invoke(target, method, request)
    except MirrorClientError as err:
        assert err.code not in NEVER, str(err)
        assert err.code is grpc.StatusCode.INVALID_ARGUMENT, str(err)
        assert err.field_violations, str(err)
    else:
        # Garbage collection needs no argument: an empty request runs it with the defaults.
        assert name.startswith("List") or method == "HousekeepingService/CleanupOrphans", (
            f"{method} accepted an empty request"
        )


# Odd but well-formed input that reaches the database; the answer may be an error, never
# INTERNAL. Some rows break on PostgreSQL only (SQLite takes anything).
BUG_NUL = (
    "BUG: a NUL character (U+0000) in a free-text string field passes validation and "
    "PostgreSQL rejects it (asyncpg CharacterNotInRepertoireError: invalid byte sequence "
    'for encoding "UTF8": 0x00), answered INTERNAL; it should be INVALID_ARGUMENT'
)
BUG_INT32 = (
    "BUG: version numbers of up to 18 digits pass VersionName.parse but versions.number "
    "is an INTEGER column; on PostgreSQL asyncpg raises DataError 'value out of int32 "
    "range' for numbers >= 2**31, answered INTERNAL instead of NOT_FOUND/INVALID_ARGUMENT"
)
HUGE = "repositories/existing/versions/99999999999"


def _odd_rows() -> list[Any]:
    rows: list[Any] = []

    def add(label: str, method: str, request: Message, postgres_bug: str = "") -> None:
        rows.append(pytest.param(method, request, postgres_bug, id=label))

    add(
        "GetVersion huge number",
        "VersionService/GetVersion",
        pb.GetVersionRequest(name=HUGE),
        BUG_INT32,
    )
    add(
        "DeleteVersion huge number",
        "VersionService/DeleteVersion",
        pb.DeleteVersionRequest(name=HUGE),
        BUG_INT32,
    )
    add(
        "CreateDistribution pinned to a huge number",
        "DistributionService/CreateDistribution",
        pb.CreateDistributionRequest(
            distribution_id=new_id(), distribution=pb.Distribution(base_path=new_id(), version=HUGE)
        ),
        BUG_INT32,
    )
    add(
        "ListContent huge number",
        "ContentService/ListContent",
        pb.ListContentRequest(parent=HUGE),
        BUG_INT32,
    )
    add(
        "DiffVersions huge number",
        "ContentService/DiffVersions",
        pb.DiffVersionsRequest(
            base_version="repositories/existing/versions/0", target_version=HUGE
        ),
        BUG_INT32,
    )
    add(
        "CreateRepository description with NUL",
        "RepositoryService/CreateRepository",
        pb.CreateRepositoryRequest(
            repository_id=new_id(), repository=pb.Repository(description="a\x00b")
        ),
        BUG_NUL,
    )
    add(
        "UpdateRepository description with NUL",
        "RepositoryService/UpdateRepository",
        pb.UpdateRepositoryRequest(
            repository=pb.Repository(name="repositories/existing", description="\x00"),
            update_mask=mask("description"),
        ),
        BUG_NUL,
    )
    add(
        "CreateRemote username with NUL",
        "RemoteService/CreateRemote",
        pb.CreateRemoteRequest(remote_id=new_id(), remote=remote(username="bob\x00")),
        BUG_NUL,
    )
    add(
        "CreateDistribution description with NUL",
        "DistributionService/CreateDistribution",
        pb.CreateDistributionRequest(
            distribution_id=new_id(),
            distribution=pb.Distribution(
                base_path=new_id(), repository="repositories/existing", description="\x00"
            ),
        ),
        BUG_NUL,
    )
    add(
        "ListTasks reserved_resource with NUL",
        "TaskService/ListTasks",
        pb.ListTasksRequest(reserved_resource="repositories/\x00"),
        BUG_NUL,
    )
    add(
        "CreateRepository huge retain_versions",
        "RepositoryService/CreateRepository",
        pb.CreateRepositoryRequest(
            repository_id=new_id(), repository=pb.Repository(retain_versions=2**31 - 1)
        ),
    )
    add(
        "ListRepositories huge page_size",
        "RepositoryService/ListRepositories",
        pb.ListRepositoriesRequest(page_size=2**31 - 1),
    )
    add(
        "CreateRemote huge timeouts",
        "RemoteService/CreateRemote",
        pb.CreateRemoteRequest(
            remote_id=new_id(), remote=remote(connect_timeout=1e308, rate_limit=1e308)
        ),
    )
    return rows


@pytest.mark.parametrize(("method", "request_message", "postgres_bug"), _odd_rows())
async def test_odd_input_is_never_an_internal_error(
    target: Target,
    request: pytest.FixtureRequest,
    method: str,
    request_message: Message,
    postgres_bug: str,
) -> None:
    del postgres_bug  # the PostgreSQL-only failures are fixed; kept as row labels
    try:
        await invoke(target, method, request_message)
    except MirrorClientError as err:
        assert err.code not in NEVER, str(err)
        assert err.domain == DOMAIN, str(err)
