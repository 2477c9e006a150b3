"""PostgreSQL stopped and restarted under a running sync (a throwaway cluster this module owns).

What an operator sees: every call answers UNAVAILABLE naming the database, the health check
says NOT_SERVING until it is back, the running sync ends FAILED with DATABASE_UNAVAILABLE as
soon as its row can be written (not SERVER_RESTARTED a minute later), the log stays short,
and the next sync completes without restarting the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    error_info,
    eventually,
    small_image,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import proxy_fixture as proxy_fixture
from tests.integration.sync_helpers import registry_fixture as registry_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support.faultproxy import FaultProxy
from tests.support.postgres import ThrowawayPostgres, unavailable_reason
from tests.support.registry import RegistryProcess

pytestmark = [
    *REGISTRY_MARKS,
    pytest.mark.postgres,
    pytest.mark.skipif(bool(unavailable_reason()), reason=unavailable_reason() or "ok"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
async def database_url(cluster: ThrowawayPostgres) -> AsyncIterator[str]:
    """Overrides the shared fixture: this module's cluster, never the shared server."""
    if not cluster.running:
        cluster.start()
    yield cluster.url


async def health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=""))).status


async def test_postgres_stopped_mid_sync(
    mirror: Mirror,
    proxy: FaultProxy,
    registry: RegistryProcess,
    upstream_name: str,
    cluster: ThrowawayPostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream = Upstream(registry.url, upstream_name)
    await upstream.push("v1", small_image("dbfault", layers=3))
    await mirror.setup("dbfault", proxy.url, upstream_name)
    proxy.block("/blobs/", method="GET")
    task = await mirror.start_sync("dbfault")
    await proxy.wait_blocked()

    caplog.set_level(logging.INFO)
    caplog.clear()
    await asyncio.to_thread(cluster.stop)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await mirror.repository("dbfault")
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "PostgreSQL database" in (raised.value.details() or "")
    assert f"127.0.0.1:{cluster.port}" in (raised.value.details() or "")
    info = error_info(raised.value)
    assert info is not None and info.reason == "DATABASE_UNAVAILABLE"
    assert await health(mirror.channel) == health_pb2.HealthCheckResponse.NOT_SERVING

    # The sync resumes downloading, needs the database, and fails; a few more calls and a
    # few seconds of outage must not flood the log.
    proxy.release()
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await mirror.get_task(task.name)
        assert again.value.code() == grpc.StatusCode.UNAVAILABLE
    await asyncio.sleep(4)
    outage_lines = len(caplog.records)

    await asyncio.to_thread(cluster.start)
    await eventually(
        lambda: _is(health(mirror.channel), health_pb2.HealthCheckResponse.SERVING), 10
    )
    # Recorded as soon as the row can be written: within a few probe intervals, not 47 s.
    ended = await mirror.wait_for_state(task.name, {pb.TASK_STATE_FAILED}, max_wait=10)
    assert ended.error.reason == "DATABASE_UNAVAILABLE", ended.error
    assert ended.error.code == "UNAVAILABLE"
    assert (await mirror.repository("dbfault")).latest_version_number == 0
    assert outage_lines < 40, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info], "tracebacks logged for an outage"

    run = await mirror.sync("dbfault")
    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert list(run.task.created_resources) == ["repositories/dbfault/versions/1"]


async def _is(value: object, wanted: int) -> bool:
    try:
        return await value == wanted  # type: ignore[misc]
    except grpc.aio.AioRpcError:
        return False
