"""ScheduleService through the asyncio client against the real server (SQLite and PostgreSQL):
validation, CRUD, and the firing rules (missed runs once, at most one queued run).

Runs are made due by moving `next_run_time` into the past in the database, as hours of
downtime would, rather than by waiting: the scheduler of the server under test then fires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import update

from client import AsyncMirrorClient
from protos import mirror_pb2 as pb
from server.app import Services
from server.store.schema import ScheduleRow
from tests.integration.api_helpers import fails, when
from tests.integration.sync_helpers import Mirror, Upstream, small_image
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import proxy_fixture as proxy_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support.access import principal_with_token
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess, registry_available

URL = "https://registry.example.com"
T = TypeVar("T")


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """Fetch until `done` holds (TimeoutError after 20 s)."""
    async with asyncio.timeout(20):
        while True:
            value = await fetch()
            if done(value):
                return value
            await asyncio.sleep(0.1)


async def prepare(client: AsyncMirrorClient, url: str = URL, upstream: str = "lib/app") -> None:
    await client.create_repository("app")
    await client.create_remote("app", url, upstream)


async def test_create_show_update_delete(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await prepare(client)
        before = datetime.now(UTC)
        nightly = await client.create_schedule(
            "nightly", "app", "app", cron="30 2 * * *", time_zone="Europe/Paris", mirror=True
        )
        assert nightly.name == "schedules/nightly"
        assert (nightly.repository, nightly.remote) == ("repositories/app", "remotes/app")
        assert nightly.enabled and nightly.mirror and not nightly.HasField("interval")
        following = when(nightly.next_run_time)
        assert before < following <= before + timedelta(days=1)
        local = following.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (2, 30)
        assert nightly.last_task == "" and nightly.last_result == pb.TASK_STATE_UNSPECIFIED
        assert await client.get_schedule("nightly") == nightly

        # A new timing recomputes the next run; the cron expression goes with it.
        hourly = await client.update_schedule("nightly", interval=3600)
        assert hourly.cron == "" and hourly.interval.seconds == 3600
        assert when(hourly.next_run_time) > datetime.now(UTC) + timedelta(minutes=59)
        # Disabled: no next run. Enabled again: a fresh one.
        off = await client.update_schedule("nightly", enabled=False)
        assert not off.enabled and not off.HasField("next_run_time")
        on = await client.update_schedule("nightly", enabled=True)
        assert on.enabled and on.HasField("next_run_time")
        # Another field keeps the next run as it was.
        mirror_off = await client.update_schedule("nightly", mirror=False)
        assert mirror_off.next_run_time == on.next_run_time and not mirror_off.mirror

        await client.create_schedule("weekly", "app", "app", cron="0 4 * * 0")
        assert [s.name async for s in client.iter_schedules(page_size=1)] == [
            "schedules/nightly",
            "schedules/weekly",
        ]
        await fails(
            client.create_schedule("weekly", "app", "app", interval=60),
            grpc.StatusCode.ALREADY_EXISTS,
            "SCHEDULE_EXISTS",
        )
        await client.delete_schedule("nightly")
        await fails(client.get_schedule("nightly"), grpc.StatusCode.NOT_FOUND, "SCHEDULE_NOT_FOUND")
        # Deleting the repository deletes its schedules.
        await client.delete_repository("app")
        assert [s async for s in client.iter_schedules()] == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron": "61 * * * *"}, "schedule.cron"),
        ({"cron": "* * * * * *"}, "schedule.cron"),
        ({"cron": "0 0 30 2 *"}, "schedule.cron"),
        ({"cron": "* * * * *", "interval": 60}, "schedule.cron"),
        ({}, "schedule.cron"),
        ({"interval": 1}, "schedule.interval"),
        ({"interval": 400 * 86400}, "schedule.interval"),
        ({"cron": "* * * * *", "time_zone": "Mars/Olympus"}, "schedule.time_zone"),
        ({"cron": "* * * * *", "time_zone": "../../etc/passwd"}, "schedule.time_zone"),
    ],
)
async def test_bad_timings_are_invalid_argument(
    grpc_target: str, admin_token: str, fields: dict[str, object], field: str
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await prepare(client)
        err = await fails(
            client.create_schedule("bad", "app", "app", **fields),  # type: ignore[arg-type]
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert [f for f, _ in err.field_violations] == [field]
        assert [s async for s in client.iter_schedules()] == []


async def test_unknown_names_and_ids(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await prepare(client)
        await fails(
            client.create_schedule("s", "nope", "app", interval=60),
            grpc.StatusCode.NOT_FOUND,
            "REPOSITORY_NOT_FOUND",
        )
        await fails(
            client.create_schedule("s", "app", "nope", interval=60),
            grpc.StatusCode.NOT_FOUND,
            "REMOTE_NOT_FOUND",
        )
        await fails(
            client.create_schedule("Bad Id", "app", "app", interval=60),
            grpc.StatusCode.INVALID_ARGUMENT,
        )


async def make_due(services: Services, schedule_id: str, ago: timedelta) -> None:
    """Move a schedule's next run into the past, as downtime would."""
    async with services.db.session() as session, session.begin():
        await session.execute(
            update(ScheduleRow)
            .where(ScheduleRow.name == schedule_id)
            .values(next_run_time=datetime.now(UTC) - ago)
        )


async def schedule_tasks(mirror: Mirror) -> list[pb.Task]:
    listed = await mirror.tasks.ListTasks(pb.ListTasksRequest(reserved_resource="repositories/app"))
    return [t for t in listed.tasks if t.parameters.get("schedule") == "schedules/s"]


@pytest.mark.registry
@pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed")
async def test_missed_runs_run_once_and_overlaps_queue_once(
    grpc_target: str,
    admin_token: str,
    services: Services,
    mirror: Mirror,
    registry: RegistryProcess,
    proxy: FaultProxy,
    upstream_name: str,
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    await upstream.push("1", small_image("sched-a"))
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await prepare(client, proxy.url, upstream_name)
        await client.create_schedule("s", "app", "app", interval=3600)

        # Ten hours of downtime: ten missed runs, one sync.
        await make_due(services, "s", timedelta(hours=10))
        first = await poll(lambda: schedule_tasks(mirror), lambda ts: len(ts) == 1)
        done = await mirror.wait(first[0].name)
        assert done.state == pb.TASK_STATE_COMPLETED
        assert list(done.created_resources) == ["repositories/app/versions/1"]
        shown = await client.get_schedule("s")
        assert shown.last_task == done.name and shown.last_result == pb.TASK_STATE_COMPLETED
        assert when(shown.next_run_time) > datetime.now(UTC) + timedelta(minutes=59)
        assert len(await schedule_tasks(mirror)) == 1

        # A sync that holds the repository: the next run queues behind it, the one after
        # that is skipped rather than queued a second time.
        await upstream.push("2", small_image("sched-b", layers=1))
        proxy.block("/blobs/")
        manual = await mirror.start_sync("app", "app")
        await proxy.wait_blocked()
        await make_due(services, "s", timedelta(seconds=1))
        queued = await poll(lambda: schedule_tasks(mirror), lambda ts: len(ts) == 2)
        assert queued[0].state == pb.TASK_STATE_QUEUED
        await make_due(services, "s", timedelta(seconds=1))
        skipped = await poll(lambda: client.get_schedule("s"), lambda s: s.skipped_runs == 1)
        assert skipped.last_task == queued[0].name
        assert len(await schedule_tasks(mirror)) == 2
        proxy.release()
        assert (await mirror.wait(manual.name)).state == pb.TASK_STATE_COMPLETED
        assert (await mirror.wait(queued[0].name)).state == pb.TASK_STATE_COMPLETED


async def test_a_repository_editor_manages_its_schedules_but_cannot_move_them(
    grpc_target: str, admin_token: str
) -> None:
    """Issue 9's rule on schedules: a grant on `app` manages `app`'s schedules; moving one
    into `other` would let it write a repository the grant does not cover."""
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as admin:
        await prepare(admin)
        await admin.create_repository("other")
        await admin.create_schedule("mine", "app", "app", cron="0 0 1 1 *")
        await admin.create_schedule("theirs", "other", "app", cron="0 0 1 1 *")
        secret = await principal_with_token(admin, "ci", grants={"app": "editor"})
        async with AsyncMirrorClient(grpc_target, timeout=10, token=secret) as ci:
            changed = await ci.update_schedule("mine", cron="0 0 2 1 *")
            assert changed.cron == "0 0 2 1 *"
            await fails(
                ci.update_schedule("mine", repository="other"),
                grpc.StatusCode.PERMISSION_DENIED,
            )
            await fails(ci.get_schedule("theirs"), grpc.StatusCode.PERMISSION_DENIED)
            await fails(ci.delete_schedule("theirs"), grpc.StatusCode.PERMISSION_DENIED)
            await fails(ci.list_schedules(), grpc.StatusCode.PERMISSION_DENIED)
            await ci.delete_schedule("mine")
        assert [s.name async for s in admin.iter_schedules()] == ["schedules/theirs"]
        assert (await admin.get_schedule("theirs")).repository == "repositories/other"
