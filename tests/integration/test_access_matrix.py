"""The role x RPC matrix: every RPC of mirror.v1, called by every kind of caller through the
generated stubs against a real server (SQLite and PostgreSQL).

Callers: `admin`, global `editor` and `viewer`, `repo-editor` and `repo-viewer` (grants on the
repository the call is about, no global role), `nobody` (a principal with neither) and the
anonymous caller (no metadata). The table below is the specification, written out by hand:
an allowed call gets its normal result (the code an admin gets, OK for nearly all), a denied
one PERMISSION_DENIED, an anonymous one UNAUTHENTICATED, and a refused call changes nothing
(the lists of repositories, remotes, distributions and principals are compared around it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from client import AsyncMirrorClient, MirrorClientError
from client.auth import aio_interceptors, read_token_file
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.app import build_services, start_grpc
from server.config import Settings
from tests.conftest import fresh_database_url
from tests.integration.api_helpers import dead_url
from tests.support.access import principal_with_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

# What each kind of call needs, and who has it (the specification).
READ_SCOPED, WRITE_SCOPED, READ_GLOBAL, WRITE_GLOBAL, ADMIN = (
    "read-scoped",
    "write-scoped",
    "read-global",
    "write-global",
    "admin",
)
ALLOWED = {
    "admin": {READ_SCOPED, WRITE_SCOPED, READ_GLOBAL, WRITE_GLOBAL, ADMIN},
    "editor": {READ_SCOPED, WRITE_SCOPED, READ_GLOBAL, WRITE_GLOBAL},
    "viewer": {READ_SCOPED, READ_GLOBAL},
    "repo-editor": {READ_SCOPED, WRITE_SCOPED},
    "repo-viewer": {READ_SCOPED},
    "nobody": set(),
}
CALLERS = [*ALLOWED, "anonymous"]
OK = grpc.StatusCode.OK


@dataclass
class Server:
    address: str
    admin: AsyncMirrorClient
    tokens: dict[str, str]
    dead: str
    hanging: str
    counter: itertools.count[int] = field(default_factory=itertools.count)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    tmp = tmp_path_factory.mktemp(f"matrix-{request.param}")

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # never answers; ends when the client goes away
        finally:
            writer.close()

    hanging = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with fresh_database_url(request.param, tmp) as url:
        settings = Settings(
            grpc_address="127.0.0.1:0",
            registry_address="127.0.0.1:0",
            data_dir=tmp / "data",
            database_url=url,
            workers=4,
            retry_backoff=0.01,
        )
        async with build_services(settings) as services:
            grpc_server, port = await start_grpc(services, "127.0.0.1:0")
            address = f"127.0.0.1:{port}"
            token = read_token_file(settings.admin_token_file)
            try:
                # A generous deadline: the preparations are many calls on a busy machine.
                async with AsyncMirrorClient(address, timeout=60, token=token) as admin:
                    tokens = {"admin": token}
                    await admin.create_repository("shared")  # CreateGrant's target
                    for name, role in (("editor", "editor"), ("viewer", "viewer")):
                        tokens[name] = await principal_with_token(admin, name, role)
                    for name in ("repo-editor", "repo-viewer", "nobody"):
                        tokens[name] = await principal_with_token(admin, name)
                    hanging_port = hanging.sockets[0].getsockname()[1]
                    yield Server(
                        address, admin, tokens, dead_url(), f"http://127.0.0.1:{hanging_port}"
                    )
            finally:
                await grpc_server.stop(None)
                hanging.close()


# ------------------------------------------------------------------------ the cases
Prepare = Callable[[Server, str], Awaitable[Message]]


@dataclass(frozen=True)
class Case:
    rpc: str
    needs: str
    prepare: Prepare
    admin_code: grpc.StatusCode = OK

    @property
    def service(self) -> str:
        return self.rpc.split("/")[0]


async def _repository(s: Server, n: str, *, remote: bool = False, url: str = "") -> str:
    """A repository `r<n>` that the repo-* principals have their grants on."""
    await s.admin.create_repository(f"r{n}")
    await s.admin.create_grant("repo-editor", f"r{n}", "editor")
    await s.admin.create_grant("repo-viewer", f"r{n}", "viewer")
    if remote:
        await s.admin.create_remote(f"m{n}", url or s.dead, "lib/x", max_retries=0)
    return f"repositories/r{n}"


async def _finished_task(s: Server, n: str) -> str:
    repo = await _repository(s, n, remote=True)
    task = await s.admin.start_sync(repo, f"m{n}")
    async with asyncio.timeout(30):
        async for _event in s.admin.watch_task(task.name):
            pass  # the stream ends when the task does
    return task.name


async def _running_task(s: Server, n: str) -> str:
    repo = await _repository(s, n, remote=True, url=s.hanging)
    return (await s.admin.start_sync(repo, f"m{n}")).name


async def _distribution(s: Server, n: str) -> str:
    repo = await _repository(s, n)
    await s.admin.create_distribution(f"d{n}", f"path{n}", repository=repo)
    return f"distributions/d{n}"


async def _schedule(s: Server, n: str) -> str:
    """A schedule into `r<n>` that never fires during the test (once a year, on 1 January)."""
    repo = await _repository(s, n, remote=True)
    return (await s.admin.create_schedule(f"s{n}", repo, f"remotes/m{n}", cron="0 0 1 1 *")).name


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def _principal(s: Server, n: str) -> str:
    await s.admin.create_principal(f"p{n}", "viewer")
    return f"principals/p{n}"


async def _token(s: Server, n: str) -> str:
    name = await _principal(s, n)
    return (await s.admin.create_token(name)).token.name


async def _grant(s: Server, n: str) -> str:
    name = await _principal(s, n)
    await s.admin.create_repository(f"g{n}")
    await s.admin.create_grant(name, f"g{n}", "viewer")
    return f"{name}/grants/g{n}"


def _static(message: Message) -> Prepare:
    async def prepare(s: Server, n: str) -> Message:
        return message

    return prepare


CASES = [
    Case(
        "RepositoryService/CreateRepository",
        WRITE_GLOBAL,
        lambda s, n: _static(pb.CreateRepositoryRequest(repository_id=f"new{n}"))(s, n),
    ),
    Case(
        "RepositoryService/GetRepository",
        READ_SCOPED,
        lambda s, n: _then(_repository(s, n), lambda r: pb.GetRepositoryRequest(name=r)),
    ),
    Case("RepositoryService/ListRepositories", READ_GLOBAL, _static(pb.ListRepositoriesRequest())),
    Case(
        "RepositoryService/UpdateRepository",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n),
            lambda r: pb.UpdateRepositoryRequest(
                repository=pb.Repository(name=r, description="changed"),
                update_mask=_mask("description"),
            ),
        ),
    ),
    Case(
        "RepositoryService/DeleteRepository",
        WRITE_SCOPED,
        lambda s, n: _then(_repository(s, n), lambda r: pb.DeleteRepositoryRequest(name=r)),
    ),
    Case(
        "RemoteService/CreateRemote",
        WRITE_GLOBAL,
        lambda s, n: _static(
            pb.CreateRemoteRequest(
                remote_id=f"new{n}", remote=pb.Remote(url=s.dead, upstream_name="lib/x")
            )
        )(s, n),
    ),
    Case(
        "RemoteService/GetRemote",
        READ_GLOBAL,
        lambda s, n: _then(
            s.admin.create_remote(f"m{n}", s.dead, "lib/x"),
            lambda m: pb.GetRemoteRequest(name=m.name),
        ),
    ),
    Case("RemoteService/ListRemotes", READ_GLOBAL, _static(pb.ListRemotesRequest())),
    Case(
        "RemoteService/UpdateRemote",
        WRITE_GLOBAL,
        lambda s, n: _then(
            s.admin.create_remote(f"m{n}", s.dead, "lib/x"),
            lambda m: pb.UpdateRemoteRequest(
                remote=pb.Remote(name=m.name, upstream_name="lib/y"),
                update_mask=_mask("upstream_name"),
            ),
        ),
    ),
    Case(
        "RemoteService/DeleteRemote",
        WRITE_GLOBAL,
        lambda s, n: _then(
            s.admin.create_remote(f"m{n}", s.dead, "lib/x"),
            lambda m: pb.DeleteRemoteRequest(name=m.name),
        ),
    ),
    Case(
        "SyncService/StartSync",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n, remote=True),
            lambda r: pb.StartSyncRequest(repository=r, remote=f"remotes/m{n}"),
        ),
    ),
    Case(
        "SyncService/Sync",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n, remote=True),
            lambda r: pb.SyncRequest(repository=r, remote=f"remotes/m{n}"),
        ),
    ),
    Case(
        # A dry run writes no version, but it queues a task and calls the upstream as the
        # caller: the same rule as a real sync.
        "SyncService/StartSync",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n, remote=True),
            lambda r: pb.StartSyncRequest(repository=r, remote=f"remotes/m{n}", dry_run=True),
        ),
    ),
    Case(
        "ScheduleService/CreateSchedule",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n, remote=True),
            lambda r: pb.CreateScheduleRequest(
                schedule_id=f"s{n}",
                schedule=pb.Schedule(repository=r, remote=f"remotes/m{n}", cron="0 0 1 1 *"),
            ),
        ),
    ),
    Case(
        "ScheduleService/GetSchedule",
        READ_SCOPED,
        lambda s, n: _then(_schedule(s, n), lambda sc: pb.GetScheduleRequest(name=sc)),
    ),
    Case("ScheduleService/ListSchedules", READ_GLOBAL, _static(pb.ListSchedulesRequest())),
    Case(
        "ScheduleService/UpdateSchedule",
        WRITE_SCOPED,
        lambda s, n: _then(
            _schedule(s, n),
            lambda sc: pb.UpdateScheduleRequest(
                schedule=pb.Schedule(name=sc, cron="0 0 2 1 *"), update_mask=_mask("cron")
            ),
        ),
    ),
    Case(
        "ScheduleService/DeleteSchedule",
        WRITE_SCOPED,
        lambda s, n: _then(_schedule(s, n), lambda sc: pb.DeleteScheduleRequest(name=sc)),
    ),
    Case(
        "VersionService/GetVersion",
        READ_SCOPED,
        lambda s, n: _then(
            _repository(s, n), lambda r: pb.GetVersionRequest(name=f"{r}/versions/0")
        ),
    ),
    Case(
        "VersionService/ListVersions",
        READ_SCOPED,
        lambda s, n: _then(_repository(s, n), lambda r: pb.ListVersionsRequest(parent=r)),
    ),
    Case(
        "VersionService/DeleteVersion",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n), lambda r: pb.DeleteVersionRequest(name=f"{r}/versions/0")
        ),
        # Version 0 is the latest: the servicer's own answer, reached only when allowed.
        admin_code=grpc.StatusCode.FAILED_PRECONDITION,
    ),
    Case(
        "ContentService/ListContent",
        READ_SCOPED,
        lambda s, n: _then(
            _repository(s, n), lambda r: pb.ListContentRequest(parent=f"{r}/versions/0")
        ),
    ),
    Case(
        "ContentService/DiffVersions",
        READ_SCOPED,
        lambda s, n: _then(
            _repository(s, n),
            lambda r: pb.DiffVersionsRequest(
                base_version=f"{r}/versions/0", target_version=f"{r}/versions/0"
            ),
        ),
    ),
    Case(
        "ContentOperationService/ModifyContent",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n),
            lambda r: pb.ModifyContentRequest(
                repository=r, base_version=f"{r}/versions/0", remove=[f"sha256:{'0' * 64}"]
            ),
        ),
        admin_code=grpc.StatusCode.NOT_FOUND,  # the servicer's answer: no such content
    ),
    Case(
        "ContentOperationService/TagManifest",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n),
            lambda r: pb.TagManifestRequest(repository=r, tag="t", digest=f"sha256:{'0' * 64}"),
        ),
        admin_code=grpc.StatusCode.NOT_FOUND,
    ),
    Case(
        "ContentOperationService/UntagManifest",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n), lambda r: pb.UntagManifestRequest(repository=r, tag="t")
        ),
        admin_code=grpc.StatusCode.NOT_FOUND,
    ),
    Case(
        "ContentOperationService/CopyTags",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n),
            lambda r: pb.CopyTagsRequest(
                source_version=f"{r}/versions/0", destination=r, tags=["t"]
            ),
        ),
        admin_code=grpc.StatusCode.NOT_FOUND,
    ),
    Case(
        "ContentOperationService/RollbackRepository",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n), lambda r: pb.RollbackRepositoryRequest(version=f"{r}/versions/0")
        ),
    ),
    Case(
        "HousekeepingService/CleanupOrphans",
        ADMIN,
        _static(pb.CleanupOrphansRequest()),
    ),
    Case(
        "HousekeepingService/RepairVersion",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n), lambda r: pb.RepairVersionRequest(version=f"{r}/versions/0")
        ),
    ),
    Case(
        "DistributionService/CreateDistribution",
        WRITE_SCOPED,
        lambda s, n: _then(
            _repository(s, n),
            lambda r: pb.CreateDistributionRequest(
                distribution_id=f"d{n}",
                distribution=pb.Distribution(base_path=f"path{n}", repository=r),
            ),
        ),
    ),
    Case(
        "DistributionService/GetDistribution",
        READ_SCOPED,
        lambda s, n: _then(_distribution(s, n), lambda d: pb.GetDistributionRequest(name=d)),
    ),
    Case(
        "DistributionService/ListDistributions",
        READ_GLOBAL,
        _static(pb.ListDistributionsRequest()),
    ),
    Case(
        "DistributionService/UpdateDistribution",
        WRITE_SCOPED,
        lambda s, n: _then(
            _distribution(s, n),
            lambda d: pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name=d, description="changed"),
                update_mask=_mask("description"),
            ),
        ),
    ),
    Case(
        "DistributionService/DeleteDistribution",
        WRITE_SCOPED,
        lambda s, n: _then(_distribution(s, n), lambda d: pb.DeleteDistributionRequest(name=d)),
    ),
    Case(
        "TaskService/GetTask",
        READ_SCOPED,
        lambda s, n: _then(_finished_task(s, n), lambda t: pb.GetTaskRequest(name=t)),
    ),
    Case("TaskService/ListTasks", READ_GLOBAL, _static(pb.ListTasksRequest())),
    Case(
        "TaskService/CancelTask",
        WRITE_SCOPED,
        lambda s, n: _then(_running_task(s, n), lambda t: pb.CancelTaskRequest(name=t)),
    ),
    Case(
        "TaskService/WatchTask",
        READ_SCOPED,
        lambda s, n: _then(_finished_task(s, n), lambda t: pb.WatchTaskRequest(name=t)),
    ),
    Case(
        "AccessService/CreatePrincipal",
        ADMIN,
        lambda s, n: _static(
            pb.CreatePrincipalRequest(
                principal_id=f"new{n}", principal=pb.Principal(role=pb.ROLE_VIEWER)
            )
        )(s, n),
    ),
    Case(
        "AccessService/GetPrincipal",
        ADMIN,
        lambda s, n: _then(_principal(s, n), lambda p: pb.GetPrincipalRequest(name=p)),
    ),
    Case("AccessService/ListPrincipals", ADMIN, _static(pb.ListPrincipalsRequest())),
    Case(
        "AccessService/UpdatePrincipal",
        ADMIN,
        lambda s, n: _then(
            _principal(s, n),
            lambda p: pb.UpdatePrincipalRequest(
                principal=pb.Principal(name=p, role=pb.ROLE_EDITOR), update_mask=_mask("role")
            ),
        ),
    ),
    Case(
        "AccessService/DeletePrincipal",
        ADMIN,
        lambda s, n: _then(_principal(s, n), lambda p: pb.DeletePrincipalRequest(name=p)),
    ),
    Case(
        "AccessService/CreateToken",
        ADMIN,
        lambda s, n: _then(_principal(s, n), lambda p: pb.CreateTokenRequest(parent=p)),
    ),
    Case(
        "AccessService/ListTokens",
        ADMIN,
        lambda s, n: _then(_principal(s, n), lambda p: pb.ListTokensRequest(parent=p)),
    ),
    Case(
        "AccessService/DeleteToken",
        ADMIN,
        lambda s, n: _then(_token(s, n), lambda t: pb.DeleteTokenRequest(name=t)),
    ),
    Case(
        "AccessService/CreateGrant",
        ADMIN,
        lambda s, n: _then(
            _principal(s, n),
            lambda p: pb.CreateGrantRequest(
                parent=p,
                grant=pb.Grant(repository="repositories/shared", role=pb.ROLE_EDITOR),
            ),
        ),
    ),
    Case(
        "AccessService/ListGrants",
        ADMIN,
        lambda s, n: _then(_principal(s, n), lambda p: pb.ListGrantsRequest(parent=p)),
    ),
    Case(
        "AccessService/DeleteGrant",
        ADMIN,
        lambda s, n: _then(_grant(s, n), lambda g: pb.DeleteGrantRequest(name=g)),
    ),
]


async def _then(first: Awaitable[Any], make: Callable[[Any], Message]) -> Message:
    return make(await first)


async def test_the_table_covers_every_rpc() -> None:
    every = {
        f"{service.name}/{method.name}"
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert {case.rpc for case in CASES} == every


# ------------------------------------------------------------------------ calling
async def call(s: Server, caller: str, case: Case, request: Message) -> grpc.StatusCode:
    """The status of `request` sent as `caller` through the generated stub."""
    token = s.tokens.get(caller)
    async with grpc.aio.insecure_channel(
        s.address, interceptors=aio_interceptors(token)
    ) as channel:
        stub = getattr(pb_grpc, f"{case.service}Stub")(channel)
        method = getattr(stub, case.rpc.split("/")[1])
        try:
            if (
                pb.DESCRIPTOR.services_by_name[case.service]
                .methods_by_name[case.rpc.split("/")[1]]
                .server_streaming
            ):
                async with asyncio.timeout(30):
                    events = [e async for e in method(request)]
                assert events, f"{case.rpc} streamed nothing"
            else:
                await method(request, timeout=60)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return OK


async def snapshot(s: Server) -> tuple[list[str], ...]:
    """What a refused call must not change."""
    # Big pages: the collections grow with every case, and small pages made each snapshot
    # dozens of calls by the end of the module.
    page = 1000
    repos = [(r.name, r.description) async for r in s.admin.iter_repositories(page_size=page)]
    remotes = [(r.name, r.upstream_name) async for r in s.admin.iter_remotes(page_size=page)]
    dists = [(d.name, d.description) async for d in s.admin.iter_distributions(page_size=page)]
    principals = (await s.admin.list_principals(page_size=page)).principals
    schedules = [
        (sc.name, sc.repository, sc.cron) async for sc in s.admin.iter_schedules(page_size=page)
    ]
    return (
        [str(r) for r in repos],
        [str(r) for r in remotes],
        [str(d) for d in dists],
        [f"{p.name}:{p.role}" for p in principals],
        [str(sc) for sc in schedules],
    )


@pytest.mark.parametrize("case", CASES, ids=[c.rpc for c in CASES])
async def test_role_matrix(server: Server, case: Case) -> None:
    outcomes: dict[str, grpc.StatusCode] = {}
    expected: dict[str, grpc.StatusCode] = {}
    for caller in CALLERS:
        n = str(next(server.counter))
        request = await case.prepare(server, n)
        if caller == "anonymous":
            want = grpc.StatusCode.UNAUTHENTICATED
        elif case.needs in ALLOWED[caller]:
            want = case.admin_code
        else:
            want = grpc.StatusCode.PERMISSION_DENIED
        # A refused call that would have changed something must change nothing.
        mutating = case.needs in (WRITE_SCOPED, WRITE_GLOBAL, ADMIN)
        before = await snapshot(server) if mutating and want != case.admin_code else None
        outcomes[caller] = await call(server, caller, case, request)
        expected[caller] = want
        if before is not None:
            assert await snapshot(server) == before, f"{caller} changed state with {case.rpc}"
        await cancel_active(server)
    assert outcomes == expected


async def cancel_active(s: Server) -> None:
    """Cancel syncs a refused CancelTask left hanging, so they hold no worker."""
    for state in ("running", "queued"):
        async for task in s.admin.iter_tasks(state=state):
            with contextlib.suppress(MirrorClientError):  # it may have ended meanwhile
                await s.admin.cancel_task(task.name)
