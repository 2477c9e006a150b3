"""The storage section: the big-blobs first sync on the filesystem vs S3 (moto's server).

One server process per sample (SQLite, fresh data dir), the same workload and registry, the
same Sync RPC measurement as the sync section (`ServerProcess.sync`: wall = RPC until
FINISHED, peak RSS = VmHWM of the server in the phase). For S3 the server gets
`--storage-url s3://<fresh bucket>/bench --s3-endpoint-url <moto>` and the test credentials in
its environment; moto runs as its own process, started before the timed phase. moto is a
Python S3 server (it parses every request and keeps objects in memory/temp files), so its CPU
time per phase is reported beside the wall: on a real S3-compatible server that share goes
elsewhere. Samples alternate backends within a run so drift hits both alike.

`moto floor`: the same number of bytes in the same number of objects uploaded straight to
moto (multipart, 8 MiB parts, 10 at a time, no download, no hashing): what moto alone allows
on this machine, the S3 counterpart of the sync section's raw floor.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import proc_cpu_seconds
from benchmarks.service import BenchmarkError, running_server
from benchmarks.workloads import Workload
from tests.support.images import RegistryClient
from tests.support.s3 import MotoServer, credentials_env

BACKENDS = ("filesystem", "s3")
RATIO_TARGET = 1.5
RSS_TARGET_MIB = 150.0
REPOSITORY_ID = "bench"
REMOTE_ID = "upstream"


async def measure(
    registry_url: str, workload: Workload, root: Path, runs: int, log: Any
) -> dict[str, Any]:
    """Samples per backend, medians and the issue's targets."""
    samples: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    with MotoServer(root) as moto, credentials_env():
        moto_pid = moto.pid
        for run in range(runs):
            for backend in BACKENDS:
                async with RegistryClient(registry_url) as client:
                    await workload.restore(client)
                extra: list[str] = []
                if backend == "s3":
                    bucket = moto.new_bucket()
                    extra = [
                        "--storage-url",
                        f"s3://{bucket}/bench",
                        "--s3-endpoint-url",
                        moto.url,
                        "--s3-addressing",
                        "path",
                    ]
                workdir = root / f"run{run + 1}-{backend}"
                async with running_server(workdir, None, extra) as server:
                    await server.setup(REPOSITORY_ID, REMOTE_ID, registry_url, workload.repo)
                    moto_before = proc_cpu_seconds(moto_pid)
                    sample = await server.sync(REPOSITORY_ID, REMOTE_ID)
                    moto_after = proc_cpu_seconds(moto_pid)
                if not sample["detail"]["created"]:
                    raise BenchmarkError(f"{backend} first sync created no version")
                row = {
                    "wall": round(sample["wall"], 2),
                    "cpu": round(sample["cpu"], 2) if sample["cpu"] is not None else None,
                    "peak_rss_mib": round(sample["peak_rss_mib"], 1)
                    if sample["peak_rss_mib"] is not None
                    else None,
                    "moto_cpu": round(moto_after - moto_before, 2)
                    if backend == "s3" and moto_before is not None and moto_after is not None
                    else None,
                }
                samples[backend].append(row)
                log(f"storage run {run + 1} {backend}: {row}")
            floor = await _moto_floor(moto, workload.describe())
            samples.setdefault("moto floor", []).append(floor)
            log(f"storage run {run + 1} moto floor: {floor}")
    medians = {
        backend: {
            key: statistics.median(v for r in rows if (v := r[key]) is not None)
            if any(r[key] is not None for r in rows)
            else None
            for key in ("wall", "cpu", "peak_rss_mib", "moto_cpu")
        }
        for backend, rows in samples.items()
    }
    ratio = medians["s3"]["wall"] / medians["filesystem"]["wall"]
    over_floor = medians["s3"]["wall"] / medians["moto floor"]["wall"]
    rss = max(medians[b]["peak_rss_mib"] or 0.0 for b in BACKENDS)
    return {
        "workload": workload.describe(),
        "samples": samples,
        "medians": medians,
        "targets": [
            {
                "target": f"S3 first sync <= {RATIO_TARGET}x filesystem",
                "value": round(ratio, 2),
                "status": "PASS" if ratio <= RATIO_TARGET else "FAIL",
            },
            {
                "target": "S3 first sync / moto floor (information)",
                "value": round(over_floor, 2),
                "status": "INFO",
            },
            {
                "target": f"peak RSS <= {RSS_TARGET_MIB:.0f} MiB on both",
                "value": round(rss, 1),
                "status": "PASS" if rss <= RSS_TARGET_MIB else "FAIL",
            },
        ],
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{'backend':<12}{'wall s':>9}{'cpu s':>9}{'peak RSS MiB':>14}{'moto cpu s':>12}",
    ]
    for backend, m in result["medians"].items():
        moto = "-" if m["moto_cpu"] is None else f"{m['moto_cpu']:.1f}"
        rss = "-" if m["peak_rss_mib"] is None else f"{m['peak_rss_mib']:.0f}"
        cpu = "-" if m["cpu"] is None else f"{m['cpu']:.1f}"
        lines.append(f"{backend:<12}{m['wall']:>9.1f}{cpu:>9}{rss:>14}{moto:>12}")
    for target in result["targets"]:
        lines.append(f"  {target['status']}: {target['target']} (measured {target['value']})")
    return "\n".join(lines)


async def _moto_floor(moto: MotoServer, described: dict[str, Any]) -> dict[str, Any]:
    """Upload the workload's byte count as its number of objects straight to moto."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    count = int(described["distinct_blobs"])
    size = int(described["blob_bytes"]) // count
    part = os.urandom(8 << 20)
    bucket = moto.new_bucket()
    config = AioConfig(
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        max_pool_connections=64,
    )
    session = get_session()
    async with session.create_client(
        "s3", endpoint_url=moto.url, region_name="us-east-1", config=config
    ) as client:
        slots = asyncio.Semaphore(10)

        async def one(index: int) -> None:
            async with slots:
                key = f"floor/{index}"
                upload = await client.create_multipart_upload(Bucket=bucket, Key=key)
                parts = []
                for number, start in enumerate(range(0, size, len(part)), 1):
                    body = part[: min(len(part), size - start)]
                    done = await client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload["UploadId"],
                        PartNumber=number,
                        Body=io.BytesIO(body),
                        ContentLength=len(body),
                    )
                    parts.append({"PartNumber": number, "ETag": done["ETag"]})
                await client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                    MultipartUpload={"Parts": parts},
                )

        moto_before = proc_cpu_seconds(moto.pid)
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - started
        moto_after = proc_cpu_seconds(moto.pid)
    return {
        "wall": round(wall, 2),
        "cpu": None,
        "peak_rss_mib": None,
        "moto_cpu": round(moto_after - moto_before, 2)
        if moto_before is not None and moto_after is not None
        else None,
    }
