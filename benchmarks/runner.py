"""One benchmark invocation: registry, workloads, every tool x phase x run, then serving."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import report, serving, storage
from benchmarks.accesslog import REGISTRY_CONFIG, AccessLogCounter
from benchmarks.common import (
    PYTHON,
    REPO_ROOT,
    busy_seconds,
    command_output,
    cpu_times,
    flush_disks,
    idle_percent,
    proc_cpu_seconds,
    run_measured,
    tail,
)
from benchmarks.profiling import summarize
from benchmarks.push import run_push
from benchmarks.report import PHASES, Key
from benchmarks.service import (
    BenchmarkError,
    PostgresDatabase,
    find_py_spy,
    postgres_version,
    running_server,
)
from benchmarks.workloads import FULL, QUICK, WORKLOAD_NAMES, Workload, build
from tests.support.images import RegistryClient
from tests.support.registry import REGISTRY_BINARY, RegistryProcess

REPOSITORY_ID = "bench"
REMOTE_ID = "upstream"
SKOPEO = "skopeo"


@dataclass
class Options:
    quick: bool = False
    runs: int = 3
    workloads: list[str] = field(default_factory=lambda: list(WORKLOAD_NAMES))
    databases: list[str] = field(default_factory=lambda: ["sqlite", "postgres"])
    tools: list[str] = field(default_factory=lambda: ["service", "floor", "skopeo"])
    sections: list[str] = field(default_factory=lambda: ["sync", "serving", "storage", "push"])
    serving_seconds: float = 8.0
    serving_cases: list[str] = field(default_factory=list)
    concurrency: int = 10
    profile: bool = False
    skopeo_all_phases: bool = False
    keep: bool = False
    results_dir: Path = REPO_ROOT / "benchmarks" / "results"


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _requests_brief(requests: dict[str, int]) -> str:
    short = {
        "tag_list": "tags",
        "manifest_head": "mHEAD",
        "manifest_get": "mGET",
        "blob_head": "bHEAD",
        "blob_get": "bGET",
        "other": "other",
    }
    return " ".join(f"{short[k]} {v}" for k, v in requests.items() if v)


class Bench:
    """Measures one tool on one workload through its three phases."""

    def __init__(
        self,
        options: Options,
        registry: RegistryProcess,
        counter: AccessLogCounter,
        root: Path,
        postgres_url: str | None,
        py_spy: str | None,
    ) -> None:
        self.options = options
        self.registry = registry
        self.counter = counter
        self.root = root
        self.postgres_url = postgres_url
        self.py_spy = py_spy
        self.profile_dir = options.results_dir / "profiles"
        self.notes: list[str] = []
        self.profiles: dict[str, str] = {}

    async def measure(
        self, tool: str, db: str, workload: Workload, run: int
    ) -> dict[str, dict[str, Any]]:
        workdir = self.root / f"run{run + 1}-{workload.name}-{tool}-{db}"
        workdir.mkdir(parents=True)
        label = f"run {run + 1} {workload.name} {tool}" + (f"/{db}" if tool == "service" else "")
        try:
            async with RegistryClient(self.registry.url) as client:
                await workload.restore(client)
                if tool == "service":
                    return await self._service(db, workload, workdir, client, run, label)
                if tool == "floor":
                    return await self._phases(
                        workload, client, self._floor(workload, workdir), label
                    )
                if tool == "skopeo":
                    return await self._skopeo_phases(workload, workdir, client, label)
                raise ValueError(f"unknown tool {tool!r}")
        finally:
            if not self.options.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    async def _phases(
        self,
        workload: Workload,
        client: RegistryClient,
        do_phase: Callable[[str], Awaitable[dict[str, Any]]],
        label: str,
        phases: tuple[str, ...] = PHASES,
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        try:
            for phase in phases:
                if phase == "moved":
                    await workload.move(client)
                await flush_disks()
                self.counter.reset()
                load = os.getloadavg()[0]
                registry_cpu = self._registry_cpu()
                before = cpu_times()
                sample = await do_phase(phase)
                after = cpu_times()
                registry_after = self._registry_cpu()
                await asyncio.sleep(0.1)  # the registry logs a request after answering it
                stats = self.counter.stats()
                sample["idle_pct"] = idle_percent(before, after)
                sample["loadavg_1m"] = load
                sample["registry_cpu"] = registry_after - registry_cpu
                tool_cpu = sample.get("detail", {}).get("process_cpu", sample.get("cpu") or 0.0)
                # Busy CPU of everything else: other sessions' work, the driver, and for the
                # service on PostgreSQL the database server too.
                sample["other_cpu"] = max(
                    0.0, busy_seconds(before, after) - sample["registry_cpu"] - tool_cpu
                )
                sample["requests"] = stats["requests"]
                sample["bytes"] = sum(stats["bytes"].values())
                detail = sample.setdefault("detail", {})
                detail["statuses"] = stats["statuses"]
                detail["other_requests"] = stats["other_samples"]
                out[phase] = sample
                rss = sample.get("peak_rss_mib")
                log(
                    f"{label} {phase}: {sample['wall']:.2f} s, "
                    f"{_requests_brief(sample['requests'])}, {sample['bytes'] / 1e6:.1f} MB"
                    + (f", peak RSS {rss:.0f} MiB" if rss is not None else "")
                )
        finally:
            await workload.restore(client)
        return out

    def _registry_cpu(self) -> float:
        """CPU seconds so far of the registry."""
        registry = proc_cpu_seconds(self.registry.pid) if self.registry.pid else None
        return registry or 0.0

    async def _service(
        self,
        db: str,
        workload: Workload,
        workdir: Path,
        client: RegistryClient,
        run: int,
        label: str,
    ) -> dict[str, dict[str, Any]]:
        database: PostgresDatabase | None = None
        url = None
        if db == "postgres":
            assert self.postgres_url is not None
            database = PostgresDatabase(self.postgres_url)
            url = await database.create()
        try:
            async with running_server(workdir, url) as server:
                await server.setup(REPOSITORY_ID, REMOTE_ID, self.registry.url, workload.repo)

                async def phase(name: str) -> dict[str, Any]:
                    profile = None
                    if self.py_spy:
                        self.profile_dir.mkdir(parents=True, exist_ok=True)
                        profile = self.profile_dir / f"{workload.name}-{db}-{name}-run{run + 1}.txt"
                    sample = await server.sync(REPOSITORY_ID, REMOTE_ID, profile, self.py_spy)
                    self._check(workload, db, name, sample, label)
                    if sample["detail"].get("profile"):
                        self.profiles[f"{workload.name}/{db}/{name}/run{run + 1}"] = sample[
                            "detail"
                        ]["profile"]
                    return sample

                return await self._phases(workload, client, phase, label)
        finally:
            if database is not None:
                await database.drop()

    def _check(
        self, workload: Workload, db: str, phase: str, sample: dict[str, Any], label: str
    ) -> None:
        """Note (not abort on) results a correct mirror would not give."""
        detail = sample["detail"]
        tags = detail["present"].get("container.tag", 0)
        problems = []
        if tags != len(workload.tags):
            problems.append(f"{tags} tags present, expected {len(workload.tags)}")
        if phase == "noop" and detail["created"]:
            problems.append(f"a no-op re-sync created {detail['created']}")
        if phase != "noop" and not detail["created"]:
            problems.append("no version created")
        if phase == "first":
            manifests = detail["present"].get("container.manifest", 0)
            if manifests != workload.manifests:
                problems.append(f"{manifests} manifests present, expected {workload.manifests}")
        if problems:
            note = f"{label} {phase}: " + "; ".join(problems)
            detail["problems"] = problems
            self.notes.append(note)
            log("WARNING " + note)

    def _floor(
        self, workload: Workload, workdir: Path
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        dest = workdir / "floor"

        async def phase(name: str) -> dict[str, Any]:
            stdout, stderr = workdir / f"floor-{name}.out", workdir / f"floor-{name}.err"
            argv = [PYTHON, "-m", "benchmarks.floor", "--url", self.registry.url]
            argv += ["--repo", workload.repo, "--dest", str(dest)]
            argv += ["--concurrency", str(self.options.concurrency)]
            result = await run_measured(argv, cwd=REPO_ROOT, stdout=stdout, stderr=stderr)
            if result.returncode != 0:
                raise BenchmarkError(f"floor failed ({result.returncode}):\n{tail(stderr)}")
            data = json.loads(stdout.read_text().strip().splitlines()[-1])
            own = data.get("peak_rss_kib")
            return {
                "wall": data["wall"],
                "cpu": data["cpu"],
                "peak_rss_mib": own / 1024 if own else result.peak_rss_mib,
                "detail": {
                    "process_wall": result.wall,
                    "process_cpu": result.cpu,
                    "tags": data["tags"],
                    "new_manifests": data["new_manifests"],
                    "new_blobs": data["new_blobs"],
                },
            }

        return phase

    async def _skopeo_phases(
        self, workload: Workload, workdir: Path, client: RegistryClient, label: str
    ) -> dict[str, dict[str, Any]]:
        """skopeo has no incremental mode for ``--dest dir``: each of its re-syncs is a full
        copy into an empty directory, the same work as its first sync. Unless
        ``--skopeo-all-phases``, that one copy is measured and stands for every phase."""
        do_phase = self._skopeo(workload, workdir)
        if self.options.skopeo_all_phases:
            return await self._phases(workload, client, do_phase, label)
        out = await self._phases(workload, client, do_phase, label, phases=("first",))
        for phase in PHASES[1:]:
            copy = json.loads(json.dumps(out["first"]))
            copy["detail"]["same_as"] = "first"
            out[phase] = copy
        return out

    def _skopeo(
        self, workload: Workload, workdir: Path
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        # `skopeo sync --dest dir` refuses to overwrite an image directory, so it cannot update
        # a previous copy: each phase is a full copy into a fresh directory (the previous
        # phase's copy is deleted first, outside the measurement).
        previous: list[Path] = []

        async def phase(name: str) -> dict[str, Any]:
            for old in previous:
                shutil.rmtree(old, ignore_errors=True)
            await flush_disks()
            dest = workdir / f"skopeo-{name}"
            previous.append(dest)
            stdout, stderr = workdir / f"skopeo-{name}.out", workdir / f"skopeo-{name}.err"
            argv = [SKOPEO, "--insecure-policy", "sync", "--src", "docker", "--dest", "dir"]
            argv += ["--src-tls-verify=false", "--all", "--scoped"]
            argv += [f"{self.registry.host}/{workload.repo}", str(dest)]
            result = await run_measured(argv, cwd=workdir, stdout=stdout, stderr=stderr)
            if result.returncode != 0:
                raise BenchmarkError(f"skopeo failed ({result.returncode}):\n{tail(stderr)}")
            return {
                "wall": result.wall,
                "cpu": result.cpu,
                "peak_rss_mib": result.peak_rss_mib,
                "detail": {"argv": argv},
            }

        return phase


def _package_versions() -> dict[str, str]:
    out = {}
    for name in ("grpcio", "protobuf", "aiohttp", "SQLAlchemy", "asyncpg", "aiosqlite", "alembic"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def _first_line_with(path: str, prefix: str) -> str:
    with contextlib.suppress(OSError):
        with open(path) as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    return ""


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
            )
        except OSError:
            return ""
        return out.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


async def machine_info(postgres_url: str | None) -> dict[str, Any]:
    pg = ""
    if postgres_url:
        with contextlib.suppress(Exception):
            pg = await postgres_version(postgres_url)
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name"),
        "mem_total": _first_line_with("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "skopeo": command_output([SKOPEO, "--version"]),
        "registry": command_output([REGISTRY_BINARY, "--version"]),
        "postgres": pg,
        "packages": _package_versions(),
        "git": _git(),
    }


async def run(options: Options) -> dict[str, Any]:
    """Run the whole benchmark; return the report (rows, targets, machine info, notes)."""
    started = time.perf_counter()
    notes: list[str] = []
    postgres_url = os.environ.get("MIRROR_TEST_POSTGRES_URL") or None
    databases = list(options.databases)
    if "postgres" in databases and postgres_url is None:
        databases.remove("postgres")
        notes.append("postgres skipped: MIRROR_TEST_POSTGRES_URL is not set")
    tools = list(options.tools)
    if "skopeo" in tools and shutil.which(SKOPEO) is None:
        tools.remove("skopeo")
        notes.append("skopeo skipped: not installed")
    py_spy = find_py_spy() if options.profile else None
    if options.profile and py_spy is None:
        notes.append("--profile ignored: py-spy not found (pip install py-spy into the venv)")
    for note in notes:
        log(note)
    plan = [("service", db) for db in databases if "service" in tools]
    plan += [(tool, "-") for tool in ("floor", "skopeo") if tool in tools]
    sizes = QUICK if options.quick else FULL
    machine = await machine_info(postgres_url if "postgres" in databases else None)

    root = Path(tempfile.mkdtemp(prefix="mirror-bench-"))
    registry = RegistryProcess(startup_timeout=30, extra_config=REGISTRY_CONFIG)
    counter = AccessLogCounter(registry.log_path)
    samples: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    workloads: list[Workload] = []
    bench: Bench | None = None
    push: dict[str, Any] | None = None
    failures = 0
    serving_rows: list[dict[str, Any]] = []
    storage_result: dict[str, Any] = {}
    try:
        await registry.astart()
        log(f"registry {registry.url} (requests counted from its access log), work dir {root}")
        wanted = list(options.workloads) if "sync" in options.sections else []
        if "serving" in options.sections:
            wanted += [w for w in SERVING_WORKLOADS if w not in wanted]
        if {"push", "storage"} & set(options.sections) and "big-blobs" not in wanted:
            wanted.append("big-blobs")
        for name in wanted:
            log(f"pushing workload {name} ...")
            workload = await build(name, registry.url, sizes)
            workloads.append(workload)
            log(f"  {name}: {json.dumps(workload.describe())}")
        bench = Bench(options, registry, counter, root, postgres_url, py_spy)
        for run_index in range(options.runs if "sync" in options.sections else 0):
            for workload in workloads:
                if workload.name not in options.workloads:
                    continue
                for tool, db in plan:
                    if tool == "skopeo" and workload.name in SKOPEO_SKIPPED:
                        continue  # ten full copies of many-tags: minutes that tell nothing new
                    try:
                        phases = await bench.measure(tool, db, workload, run_index)
                    except Exception as exc:  # record it, measure the rest
                        what = f"run {run_index + 1} {workload.name} {tool}/{db}"
                        first = (str(exc).splitlines() or [type(exc).__name__])[0]
                        notes.append(f"{what} FAILED: {type(exc).__name__}: {first}")
                        log(f"ERROR {what}: {exc!r}\n{traceback.format_exc()}")
                        failures += 1
                        continue
                    for phase, sample in phases.items():
                        samples[Key(workload.name, tool, db, phase)].append(sample)
        if "serving" in options.sections:
            try:
                serving_rows = await _serving(
                    options, registry, workloads, root, databases, postgres_url
                )
            except Exception as exc:
                notes.append(f"serving FAILED: {type(exc).__name__}: {exc}")
                log(f"ERROR serving: {exc!r}\n{traceback.format_exc()}")
                failures += 1
        big = next((w for w in workloads if w.name == "big-blobs"), None)
        if "push" in options.sections and big is not None and shutil.which(SKOPEO):
            try:
                push = await run_push(
                    registry.url.removeprefix("http://"), big.repo, root, options.runs, log
                )
            except Exception as exc:  # record it; the other figures stand
                notes.append(f"push benchmark FAILED: {type(exc).__name__}: {exc}")
                log(f"ERROR push benchmark: {exc!r}\n{traceback.format_exc()}")
                failures += 1
        if "storage" in options.sections and big is not None:
            try:
                storage_result = await storage.measure(
                    registry.url, big, root / "storage", options.runs, log
                )
            except Exception as exc:
                notes.append(f"storage FAILED: {type(exc).__name__}: {exc}")
                log(f"ERROR storage: {exc!r}\n{traceback.format_exc()}")
                failures += 1
    finally:
        await registry.aclose()
        if options.keep:
            log(f"kept work dir {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    names = [w.name for w in workloads if w.name in options.workloads]
    rows = report.build_rows(samples, names)
    targets = report.evaluate_targets(rows, names)
    if push is not None:
        targets.append(push["target"])
    profiles = {}
    if bench is not None:
        notes.extend(bench.notes)
        for key, path in bench.profiles.items():
            with contextlib.suppress(OSError):
                profiles[key] = {"file": path, **summarize(Path(path))}
    return {
        "schema": 1,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": sys.argv,
        "options": {
            "quick": options.quick,
            "runs": options.runs,
            "workloads": options.workloads,
            "databases": databases,
            "tools": tools,
            "sections": options.sections,
            "serving_seconds": options.serving_seconds,
            "concurrency": options.concurrency,
            "profile": bool(py_spy),
            "skopeo_all_phases": options.skopeo_all_phases,
        },
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "failed_measurements": failures,
        "machine": machine,
        "method": {
            "counts": "every tool reaches the registry directly; upstream requests are counted "
            "from the registry's access log after each phase (no proxy in any timed path)",
            "serving": f"wrk -t{serving.THREADS} -c{serving.CONNECTIONS} "
            f"-d{options.serving_seconds}s per request kind against the service's registry "
            "endpoint (one server process per database) and against the docker-registry "
            "serving the same repositories, one after the other, after a 1 s warm-up of each; "
            f"HEAD requests with ab -k -c{serving.CONNECTIONS} (wrk cannot parse HEAD answers)",
            "service": "python -m server process, fresh data dir and database per run; wall = "
            "SyncService/Sync RPC until FINISHED; mirror=True; peak RSS = VmHWM reset per phase",
            "floor": "python -m benchmarks.floor (pipelined aiohttp, same concurrency); wall "
            "and CPU measured inside the process (interpreter start-up excluded)",
            "skopeo": "skopeo sync --src docker --dest dir --all --scoped; wall = process; it "
            "refuses to overwrite an image directory, so every re-sync is a full copy into a "
            "fresh directory: "
            + (
                "each phase measured separately"
                if options.skopeo_all_phases
                else "measured once per run (first sync), that copy stands for every phase"
            ),
            "phases": "first sync; no-op re-sync; re-sync after 5% of tags moved (even moves "
            "to never-seen manifests, odd ones to other existing manifests)",
            "median_of_runs": options.runs,
            "storage": "big-blobs first sync, one server (SQLite) per sample on the data dir "
            "vs on S3 (moto's server, own process, fresh bucket); same Sync RPC wall and "
            "VmHWM as the service rows; backends alternate within each run",
        },
        "workloads": {w.name: w.describe() for w in workloads},
        "notes": notes,
        "rows": rows,
        "push": push,
        "targets": targets,
        "serving": serving_rows,
        "serving_targets": serving.evaluate(serving_rows),
        "storage": storage_result,
        "profiles": profiles,
    }


SERVING_WORKLOADS = ("many-tags", "big-blobs")
SKOPEO_SKIPPED = ("many-tags-10k",)


async def _serving(
    options: Options,
    registry: RegistryProcess,
    workloads: list[Workload],
    root: Path,
    databases: list[str],
    postgres_url: str | None,
) -> list[dict[str, Any]]:
    """The serving section: one server per database publishing many-tags and big-blobs at the
    registry's own paths, then wrk/ab against each and the registry (benchmarks/serving.py)."""
    missing = serving.tools_missing()
    if missing:
        raise BenchmarkError(f"{', '.join(missing)} not installed (scripts/bench-deps.sh)")
    by_name = {w.name: w for w in workloads}
    many, big = by_name["many-tags"], by_name["big-blobs"]
    async with contextlib.AsyncExitStack() as stack:
        targets: dict[str, serving.Target] = {}
        for db in databases:
            url = None
            if db == "postgres":
                assert postgres_url is not None
                database = PostgresDatabase(postgres_url)
                url = await database.create()
                stack.push_async_callback(database.drop)
            server = await stack.enter_async_context(running_server(root / f"serving-{db}", url))
            log(f"serving: syncing many-tags and big-blobs into the service on {db} ...")
            await serving.publish(server, registry.url, [many, big])
            # Access control as shipped, both ways a distribution is pulled: public
            # (anonymous) and private (a viewer's bearer token on every request).
            public, private = await serving.access_modes(server, [many, big])
            targets[f"{serving.OURS}/{db}"] = serving.Target(
                server.registry_url, [server.pid], prepare=public
            )
            targets[f"{serving.OURS}/{db}+token"] = serving.Target(
                server.registry_url, [server.pid], prepare=private
            )
        targets[serving.PEER] = serving.Target(registry.url, [registry.pid] if registry.pid else [])
        warmup = 1.0
        cases = [
            case
            for case in serving.cases(many, big)
            if not options.serving_cases or any(part in case.name for part in options.serving_cases)
        ]
        return await serving.measure(targets, cases, options.serving_seconds, warmup, log)
