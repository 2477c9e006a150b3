"""Day-to-day operation through real `python -m server` processes and `mirrorctl`: dry runs,
platform-filtered mirrors, Prometheus metrics, JSON logs and schedules.

The upstream is the real docker-registry behind the fault proxy, which counts every request
the server sends (the proxy runs in the test's event loop, so `mirrorctl` calls go through a
thread). Pulls use the real skopeo against the server's registry endpoint.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import fresh_database_url
from tests.e2e.conftest import SKOPEO, needs_registry, needs_skopeo
from tests.e2e.test_cli import ServerProcess, as_json, ctl, free_port, ok, start_server
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess

pytestmark = [pytest.mark.registry, needs_registry]

KIND_REQUESTS = {  # plan kind -> (method, path substring) at the upstream
    "tag_list": ("GET", "/tags/list"),
    "manifest_head": ("HEAD", "/manifests/"),
    "manifest_get": ("GET", "/manifests/"),
    "blob_get": ("GET", "/blobs/"),
    "referrers": ("GET", "/referrers/"),
    "signatures": ("GET", "/extensions/"),
}


@pytest.fixture
async def proxy(upstream_registry: RegistryProcess) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream_registry.url) as running:
        yield running


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def server(tmp_path: Path, metrics_port: int) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path / "server",
        "--metrics-address",
        f"127.0.0.1:{metrics_port}",
        "--log-format",
        "json",
    )
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            assert running.stop() == 0, running.log()


async def actl(server: ServerProcess | None, *args: str) -> subprocess.CompletedProcess[str]:
    """mirrorctl in a thread: the fault proxy must keep serving meanwhile."""
    return await asyncio.to_thread(ctl, server, *args)


async def ajson(server: ServerProcess, *args: str) -> Any:
    return as_json(await actl(server, "-o", "json", *args))


async def sync_task(server: ServerProcess, *args: str) -> Any:
    """`mirrorctl -o json sync ...`: one JSON event per line; the last one's task."""
    lines = ok(await actl(server, "-o", "json", "sync", *args)).splitlines()
    last = json.loads(lines[-1])
    assert last["kind"] == "TASK_EVENT_KIND_FINISHED", last
    return last["task"]


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def stored_files(data_dir: Path) -> dict[str, int]:
    """Blob and temp files with their sizes (the SQLite files themselves are not blobs)."""
    return {
        str(p.relative_to(data_dir)): p.stat().st_size
        for sub in ("blobs", "tmp")
        for p in (data_dir / sub).rglob("*")
        if p.is_file()
    }


def upstream_counts(proxy: FaultProxy) -> dict[str, int]:
    counts = {kind: proxy.hits(method, sub) for kind, (method, sub) in KIND_REQUESTS.items()}
    return {k: v for k, v in counts.items() if v}


async def setup_mirror(
    server: ServerProcess, proxy: FaultProxy, name: str, upstream: str, *remote_args: str
) -> None:
    ok(await actl(server, "repository", "create", name))
    ok(
        await actl(
            server,
            "remote",
            "create",
            name,
            "--url",
            proxy.url,
            "--upstream-name",
            upstream,
            *remote_args,
        )
    )


# ---------------------------------------------------------------------------- dry run
async def test_dry_run_writes_nothing_and_its_plan_matches_the_sync(
    server: ServerProcess, proxy: FaultProxy, upstream_registry: RegistryProcess, tmp_path: Path
) -> None:
    upstream = f"ops{uuid.uuid4().hex[:8]}/app"
    index = img.make_index("dry-index", platforms=img.PLATFORMS[:2])
    image = img.make_image("dry-image", layers=2)
    await img.push_index(upstream_registry.url, upstream, "v1", index)
    await img.push_image(upstream_registry.url, upstream, "v2", image)
    await setup_mirror(server, proxy, "dry", upstream)

    data = tmp_path / "server" / ".mirror-data"
    before_rows, before_files = table_counts(data / "mirror.db"), stored_files(data)
    task = await sync_task(server, "dry", "--remote", "dry", "--dry-run")
    plan = task["syncPlan"]
    dry_requests = upstream_counts(proxy)

    # Nothing written but the dry run's own task row.
    after_rows = table_counts(data / "mirror.db")
    assert after_rows.pop("tasks") == before_rows.pop("tasks") + 1
    assert after_rows == before_rows
    assert stored_files(data) == before_files == {}
    assert "createdResources" not in task

    assert [(t["name"], t["toDigest"]) for t in plan["tagsAdded"]] == [
        ("v1", index.digest),
        ("v2", image.digest),
    ]
    assert "tagsMoved" not in plan and "tagsRemoved" not in plan
    assert plan["createsVersion"] is True
    all_blobs = {**index.blobs, **image.blobs}
    assert int(plan["blobsToFetch"]) == len(all_blobs)
    assert int(plan["bytesToFetch"]) == sum(len(b) for b in all_blobs.values())
    assert int(plan["manifestsTotal"]) == int(plan["manifestsToFetch"]) == 4
    # The dry run sent every request of the plan except the blob downloads.
    planned = {k: int(v) for k, v in plan["upstreamRequests"].items()}
    assert dry_requests == {k: v for k, v in planned.items() if k != "blob_get"}

    # The table form, for people.
    table = ok(await actl(server, "sync", "dry", "--remote", "dry", "--dry-run"))
    assert "nothing was written" in table
    assert re.search(rf"^\+\s+v1\s+-\s+{index.digest[:19]}$", table, re.M), table
    assert "a sync would create a new version:" in table

    # The real sync that follows does what the plan said, request for request.
    proxy.clear_log()
    synced = await sync_task(server, "dry", "--remote", "dry")
    assert synced["createdResources"] == ["repositories/dry/versions/1"]
    assert upstream_counts(proxy) == planned
    version = (await ajson(server, "version", "show", "dry", "1"))["version"]
    assert version["contentSummary"] == plan["contentSummary"]
    assert sum(stored_files(data).values()) == int(plan["bytesToFetch"])

    # Mirror mode announces what would disappear; additive mode keeps it.
    await img.delete_manifest(upstream_registry.url, upstream, image.digest)
    mirror = (await sync_task(server, "dry", "--remote", "dry", "--mirror", "--dry-run"))[
        "syncPlan"
    ]
    assert mirror["tagsRemoved"] == [{"name": "v2", "fromDigest": image.digest}]
    assert mirror["contentSummary"]["removed"]["container.tag"] == "1"
    assert "blobsToFetch" not in mirror  # zero: nothing to download
    additive = (await sync_task(server, "dry", "--remote", "dry", "--dry-run"))["syncPlan"]
    assert "tagsRemoved" not in additive and "createsVersion" not in additive
    warned = ok(await actl(server, "sync", "dry", "--remote", "dry", "--mirror", "--dry-run"))
    assert "warning: 1 tag(s) would be removed (mirror mode)" in warned
    versions = (await ajson(server, "version", "list", "dry"))["versions"]
    assert [v.get("number", "0") for v in versions] == ["1", "0"]


# ---------------------------------------------------------------------------- platforms
@needs_skopeo
async def test_platform_filter_fetches_only_the_selected_platforms(
    server: ServerProcess,
    proxy: FaultProxy,
    upstream_registry: RegistryProcess,
    tmp_path: Path,
    metrics_port: int,
) -> None:
    upstream = f"ops{uuid.uuid4().hex[:8]}/multi"
    index = img.make_index("platform-index", layers=2)  # amd64, arm64/v8, arm/v7
    await img.push_index(upstream_registry.url, upstream, "1.0", index)
    await setup_mirror(
        server, proxy, "multi", upstream, "--platforms", "linux/arm64/v8,linux/arm/v7"
    )
    remote = (await ajson(server, "remote", "show", "multi"))["remote"]
    assert remote["platforms"] == ["linux/arm64/v8", "linux/arm/v7"]

    synced = await sync_task(server, "multi", "--remote", "multi")
    kept = [index.child("linux/arm64/v8"), index.child("linux/arm/v7")]
    dropped = index.child("linux/amd64")
    # At the upstream: the index and the kept children, and only their blobs.
    fetched = {p.rsplit("/", 1)[1] for m, p in proxy.requests if m == "GET" and "/blobs/" in p}
    assert fetched == {d for child in kept for d in child.blobs}
    got = {p.rsplit("/", 1)[1] for m, p in proxy.requests if m == "GET" and "/manifests/" in p}
    assert got == {index.digest, *(c.digest for c in kept)}
    assert not any(dropped.digest in p for _, p in proxy.requests)
    assert synced["createdResources"] == ["repositories/multi/versions/1"]
    version = (await ajson(server, "version", "show", "multi", "1"))["version"]
    present = version["contentSummary"]["present"]
    assert present == {
        "container.blob": str(sum(len(c.blobs) for c in kept)),
        "container.manifest": "3",
        "container.tag": "1",
    }

    # Public: skopeo and the plain GET below pull without credentials (issue 9).
    ok(await actl(server, "distribution", "create", "multi", "--base-path", "ops/multi",
                  "--repository", "multi", "--public"))  # fmt: skip
    ref = f"docker://{server.registry_address}/ops/multi:1.0"

    async def skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
        return await asyncio.to_thread(
            subprocess.run,
            [SKOPEO, "--insecure-policy", *args],
            capture_output=True,
            timeout=60,
            check=False,
        )

    raw = await skopeo("inspect", "--raw", "--tls-verify=false", ref)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == index.manifest  # the index is byte-identical: same digest
    out = tmp_path / "arm64"
    pulled = await skopeo(
        "--override-arch", "arm64", "--override-variant", "v8",
        "copy", "--preserve-digests", "--src-tls-verify=false", ref, f"oci:{out}",
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    layout = json.loads((out / "index.json").read_text())
    assert layout["manifests"][0]["digest"] == kept[0].digest
    refused = await skopeo(
        "--override-arch", "amd64", "copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'x'}"
    )
    assert refused.returncode != 0
    async with aiohttp.ClientSession() as http:
        url = f"http://{server.registry_address}/v2/ops/multi/manifests/{dropped.digest}"
        async with http.get(url) as resp:
            assert resp.status == 404
            body = await resp.json(content_type=None)
        assert body["errors"][0]["code"] == "MANIFEST_UNKNOWN"

        # Metrics after that sync and those pulls, parsed as Prometheus would.
        async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    sync_rpc = "/mirror.v1.SyncService/Sync"
    assert value("mirror_rpc_requests_total", method=sync_rpc, code="OK") == 1
    assert value("mirror_rpc_duration_seconds_count", method=sync_rpc) == 1
    blob_bytes = sum(len(b) for c in kept for b in c.blobs.values())
    assert value("mirror_sync_downloaded_bytes_total", repository="multi") == blob_bytes
    assert value("mirror_sync_downloaded_objects_total", repository="multi", type="blob") == len(
        fetched
    )
    assert value("mirror_sync_downloaded_objects_total", repository="multi", type="manifest") == 3
    assert value("mirror_upstream_requests_total", host=proxy.host, kind="blob_get") == len(fetched)
    manifests_route = "/v2/{name}/manifests/{reference}"
    assert value("mirror_registry_requests_total", route=manifests_route, method="GET",
                 status="404") >= 1  # fmt: skip
    assert value("mirror_registry_requests_total", route=manifests_route, method="GET",
                 status="200") >= 2  # fmt: skip
    assert value("mirror_registry_response_bytes_total", route="/v2/{name}/blobs/{digest}") >= (
        sum(len(b) for b in kept[0].blobs.values())
    )
    assert value("mirror_registry_request_duration_seconds_count", route=manifests_route) >= 3
    assert value("mirror_tasks", state="completed") == 1
    assert value("mirror_tasks_finished_total", kind="sync", state="completed") == 1
    assert value("mirror_storage_used_bytes") == blob_bytes
    assert value("mirror_storage_blobs") == len(fetched)

    # JSON logs: every line parses, and every line of the sync names its task.
    task = synced["name"]
    records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    of_task = [r for r in records if r.get("task") == task]
    assert any("started" in r["message"] for r in of_task)
    assert any("upstream requests" in r["message"] for r in of_task)
    mentions = [r for r in records if task in r["message"]]
    assert mentions and all(r.get("task") == task for r in mentions), mentions


# ---------------------------------------------------------------------------- schedules
async def schedule_tasks(server: ServerProcess) -> list[Any]:
    listed = (await ajson(server, "task", "list", "--repository", "sched")).get("tasks", [])
    return [t for t in listed if t["parameters"].get("schedule") == "schedules/every2s"]


@pytest.mark.postgres
async def test_schedule_fires_exactly_once_across_two_servers(
    proxy: FaultProxy, upstream_registry: RegistryProcess, tmp_path: Path
) -> None:
    async with fresh_database_url("postgres", tmp_path) as url:
        # One data dir (blobs and the admin token the first start writes), seen by both as
        # `./.mirror-data`, where mirrorctl finds the token as in the README.
        (tmp_path / "shared").mkdir()
        for workdir in ("one", "two"):
            (tmp_path / workdir).mkdir()
            (tmp_path / workdir / ".mirror-data").symlink_to(tmp_path / "shared")
        shared = ("--database-url", url)
        one = start_server(tmp_path / "one", *shared)
        two = start_server(tmp_path / "two", *shared)
        try:
            upstream = f"ops{uuid.uuid4().hex[:8]}/sched"
            await img.push_image(upstream_registry.url, upstream, "1", img.make_image("sched"))
            await setup_mirror(one, proxy, "sched", upstream)
            created = (await ajson(
                two, "schedule", "create", "every2s", "--repository", "sched",
                "--remote", "sched", "--interval", "2s", "--mirror",
            ))["schedule"]  # fmt: skip
            assert created["enabled"] is True and created["nextRunTime"]

            deadline = time.monotonic() + 60
            while True:
                tasks = await schedule_tasks(one)
                if len(tasks) >= 3 and all(t["state"] != "TASK_STATE_QUEUED" for t in tasks):
                    break
                assert time.monotonic() < deadline, tasks
                await asyncio.sleep(0.5)
            disabled = (await ajson(one, "schedule", "update", "every2s", "--no-enabled"))[
                "schedule"
            ]
            assert disabled["enabled"] is False and "nextRunTime" not in disabled
            while True:  # the runs queued before it was disabled end
                tasks = await schedule_tasks(one)
                if all(t["state"] in ("TASK_STATE_COMPLETED", "TASK_STATE_FAILED") for t in tasks):
                    break
                assert time.monotonic() < deadline, tasks
                await asyncio.sleep(0.5)
            # Each run time was queued once, by one of the two processes.
            run_times = [t["parameters"]["scheduled_time"] for t in tasks]
            assert len(run_times) == len(set(run_times)) >= 3
            assert {t["parameters"]["mirror"] for t in tasks} == {"true"}
            done = [t for t in tasks if t["state"] == "TASK_STATE_COMPLETED"]
            assert len(done) >= 3
            assert sum(1 for t in done if t.get("createdResources")) == 1  # one new version
            shown = (await ajson(two, "schedule", "show", "every2s"))["schedule"]
            assert shown["lastTask"] == tasks[0]["name"]
            assert shown["lastResult"] == tasks[0]["state"]
            listed = ok(await actl(one, "schedule", "list"))
            assert "every2s" in listed and "every 0:00:02" in listed
        finally:
            for running in (one, two):
                if running.proc.poll() is None:
                    assert running.stop() == 0, running.log()
