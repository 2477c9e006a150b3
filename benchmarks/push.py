"""Push benchmark: `skopeo copy` of the big-blobs workload into the service vs into
docker-registry, in the same run (issue 13: the service within 1.25x).

The workload's images are first copied out of the bench registry into `dir:` layouts (not
measured). Each run then pushes every tag, one `skopeo copy dir:... docker://...` after the
other, into a fresh docker-registry and into a fresh service process (SQLite, a repository
with a distribution), alternating which goes first. Wall time is the whole push; medians.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import flush_disks
from benchmarks.service import BenchmarkError, running_server
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.support.registry import RegistryProcess

SKOPEO = "skopeo"
TARGET_RATIO = 1.25
DEST_REPO = "bench/pushed"


async def _skopeo(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        SKOPEO,
        "--insecure-policy",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise BenchmarkError(f"skopeo {args[0]} failed: {stderr.decode()[-2000:]}")


async def export(source_host: str, repo: str, dest: Path) -> list[tuple[str, Path]]:
    """Copy every tag of `repo` into `dir:` layouts -> (tag, layout) pairs."""
    await _skopeo(
        "sync", "--src", "docker", "--dest", "dir", "--src-tls-verify=false", "--scoped",
        f"{source_host}/{repo}", str(dest),
    )  # fmt: skip
    found = await asyncio.to_thread(lambda: sorted(p.parent for p in dest.rglob("manifest.json")))
    return [(p.name.rsplit(":", 1)[1], p) for p in found]


async def push_all(host: str, layouts: list[tuple[str, Path]], *creds: str) -> float:
    """Wall seconds to push every layout to `host`, one skopeo copy after the other."""
    await flush_disks()
    started = time.perf_counter()
    for tag, layout in layouts:
        await _skopeo(
            "copy",
            "--dest-tls-verify=false",
            *creds,
            f"dir:{layout}",
            f"docker://{host}/{DEST_REPO}:{tag}",
        )
    return time.perf_counter() - started


async def _into_registry(layouts: list[tuple[str, Path]]) -> float:
    registry = RegistryProcess(startup_timeout=30)
    await registry.astart()
    try:
        return await push_all(registry.url.removeprefix("http://"), layouts)
    finally:
        await registry.aclose()


async def _into_service(workdir: Path, layouts: list[tuple[str, Path]]) -> tuple[float, int]:
    async with running_server(workdir, None) as server:
        assert server._channel is not None
        await pb_grpc.RepositoryServiceStub(server._channel).CreateRepository(
            pb.CreateRepositoryRequest(repository_id="pushed")
        )
        await pb_grpc.DistributionServiceStub(server._channel).CreateDistribution(
            pb.CreateDistributionRequest(
                distribution_id="pushed",
                distribution=pb.Distribution(base_path=DEST_REPO, repository="repositories/pushed"),
            )
        )
        # Access control is on, as shipped: push as admin (an editor would do as well).
        token = (server.data_dir / "admin-token").read_text().strip()
        wall = await push_all(
            f"127.0.0.1:{server.registry_port}", layouts, f"--dest-creds=admin:{token}"
        )
        latest = await pb_grpc.VersionServiceStub(server._channel).GetVersion(
            pb.GetVersionRequest(name="repositories/pushed/versions/latest")
        )
        return wall, latest.version.number


async def run_push(source_host: str, repo: str, root: Path, runs: int, log: Any) -> dict[str, Any]:
    """Measure; the result block of the report (figures, versions seen, target)."""
    source = root / "push-source"
    layouts = await export(source_host, repo, source)
    size = await asyncio.to_thread(
        lambda: sum(f.stat().st_size for _, p in layouts for f in p.iterdir())
    )
    walls: dict[str, list[float]] = {"service": [], "docker-registry": []}
    versions: list[int] = []
    try:
        for run in range(runs):
            order = (
                ["service", "docker-registry"] if run % 2 == 0 else ["docker-registry", "service"]
            )
            for target in order:
                if target == "service":
                    workdir = root / f"push-service-{run}"
                    wall, number = await _into_service(workdir, layouts)
                    versions.append(number)
                    shutil.rmtree(workdir, ignore_errors=True)
                else:
                    wall = await _into_registry(layouts)
                walls[target].append(wall)
                log(f"push run {run + 1} into {target}: {wall:.2f} s")
    finally:
        shutil.rmtree(source, ignore_errors=True)
    service = statistics.median(walls["service"])
    registry = statistics.median(walls["docker-registry"])
    ratio = service / registry
    return {
        "tags": len(layouts),
        "bytes": size,
        "runs": runs,
        "service_seconds": walls["service"],
        "registry_seconds": walls["docker-registry"],
        "median_service": round(service, 3),
        "median_registry": round(registry, 3),
        "ratio": round(ratio, 3),
        "versions": versions,
        "target": {
            "target": f"skopeo push of big-blobs <= {TARGET_RATIO}x docker-registry",
            "workload": "big-blobs",
            "db": "sqlite",
            "status": "PASS" if ratio <= TARGET_RATIO else "FAIL",
            "figure": f"{service:.2f} s vs {registry:.2f} s = {ratio:.2f}x",
        },
    }
