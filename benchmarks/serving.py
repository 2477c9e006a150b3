"""Serving benchmark: the registry endpoint against ``docker-registry`` on the same content.

The upstream ``docker-registry`` of the benchmark already holds the workloads. The service
syncs two of them (many-tags: 1,000 tags for ``tags/list`` and small manifests and blobs;
big-blobs: the large blobs), publishes each through a distribution at the *same* path, so one
URL path names the same bytes on both servers (one service process per database). Then, per
request kind, ``wrk`` (Debian's package) runs against each server in turn with the same
threads, connections and duration:

    manifest GET/HEAD by tag and by digest, tags/list (all tags), small blob GET, large blob GET

Before the load, one request of each kind goes to both servers and bodies and the headers a
client relies on must be identical (``correct`` in the results). Reported per row: requests/s,
throughput, p99 latency (wrk's own histogram, printed by ``done()`` in the Lua script), errors
(non-2xx, socket errors) and the server's peak RSS under that load (VmHWM reset per row).
HEAD requests go through ApacheBench (``ab -k``) instead: wrk 4.1 waits for the body a HEAD
answer's Content-Length announces, so it cannot measure them; both servers get the same tool.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import MANIFEST_ACCEPT, proc_status_kib, reset_peak_rss
from benchmarks.service import BenchmarkError, ServerProcess
from benchmarks.workloads import Workload

WRK = "wrk"
AB = "ab"
THREADS = 2
CONNECTIONS = 64
COMPARED_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest")

# wrk's Lua hooks: the method and headers of every request, and one JSON line at the end with
# the figures this report needs (wrk's text summary rounds p99 and has no byte count).
_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Accept"] = "{accept}"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class Case:
    """One request kind: a method and a path, the same on both servers."""

    name: str
    method: str
    path: str
    kind: str  # "requests" (target on req/s) or "throughput" (target on bytes/s)


@dataclass(slots=True)
class Target:
    """A server under load. `prepare` runs before each case (and its warm-up) and answers the
    headers every request of that case carries: the private service target flips its
    distributions to private and logs in for a fresh bearer token there."""

    url: str
    pids: list[int]
    prepare: Callable[[], Awaitable[dict[str, str]]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def ready(self) -> None:
        if self.prepare is not None:
            self.headers = await self.prepare()


def cases(many: Workload, big: Workload) -> list[Case]:
    """The request kinds of the issue, on concrete tags and digests of the workloads."""
    tag = sorted(many.tags)[0]
    ref = many.tags[tag]
    small = min(_layers(ref.manifest), key=lambda layer: layer["size"])["digest"]
    big_layers = [layer for r in big.tags.values() for layer in _layers(r.manifest)]
    large = max(big_layers, key=lambda layer: layer["size"])
    m = f"/v2/{many.repo}/manifests"
    return [
        Case("manifest GET by tag", "GET", f"{m}/{tag}", "requests"),
        Case("manifest HEAD by tag", "HEAD", f"{m}/{tag}", "requests"),
        Case("manifest GET by digest", "GET", f"{m}/{ref.digest}", "requests"),
        Case("manifest HEAD by digest", "HEAD", f"{m}/{ref.digest}", "requests"),
        Case(f"tags/list ({len(many.tags)} tags)", "GET", f"/v2/{many.repo}/tags/list", "requests"),
        Case("small blob GET", "GET", f"/v2/{many.repo}/blobs/{small}", "requests"),
        Case(
            f"large blob GET ({large['size'] / 2**20:.0f} MiB)",
            "GET",
            f"/v2/{big.repo}/blobs/{large['digest']}",
            "throughput",
        ),
    ]


def _layers(manifest: bytes) -> list[dict[str, Any]]:
    return list(json.loads(manifest)["layers"])


async def publish(server: ServerProcess, upstream_url: str, workloads: list[Workload]) -> None:
    """Sync each workload into its own repository and publish it at the upstream's path."""
    for i, workload in enumerate(workloads):
        repo_id, remote_id = f"serve{i}", f"serve{i}"
        await server.setup(repo_id, remote_id, upstream_url, workload.repo)
        await server.sync(repo_id, remote_id)
        await server.publish(f"serve{i}", repo_id, workload.repo)


async def access_modes(
    server: ServerProcess, workloads: list[Workload]
) -> tuple[Callable[[], Awaitable[dict[str, str]]], Callable[[], Awaitable[dict[str, str]]]]:
    """The `prepare` hooks of the public and the private target of one server (see
    :func:`publish` for the distribution ids). The private one checks that an anonymous
    request is really refused before it hands out the token's header."""
    ids = [f"serve{i}" for i in range(len(workloads))]
    names = [w.repo for w in workloads]
    principal, secret = await server.create_puller(ids)

    async def public() -> dict[str, str]:
        for distribution_id in ids:
            await server.set_public(distribution_id, True)
        return {}

    async def private() -> dict[str, str]:
        for distribution_id in ids:
            await server.set_public(distribution_id, False)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.registry_url}/v2/{names[0]}/tags/list") as resp,
        ):
            if resp.status != 401:
                raise BenchmarkError(f"private distribution answered {resp.status} anonymously")
        token = await server.login(principal, secret, names)
        return {"Authorization": f"Bearer {token}"}

    return public, private


async def compare(case: Case, ours: Target, theirs: Target) -> list[str]:
    """Differences a client could see between the two servers' answers to ``case``."""
    problems = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        answers = []
        for target in (ours, theirs):
            async with session.request(
                case.method,
                target.url + case.path,
                headers={"Accept": MANIFEST_ACCEPT, **target.headers},
            ) as resp:
                answers.append((resp.status, resp.headers, await resp.read()))
    (status, headers, body), (peer_status, peer_headers, peer_body) = answers
    if status != peer_status:
        problems.append(f"status {status} vs {peer_status}")
    if case.path.endswith("/tags/list"):
        # docker-registry 2.8 lists tags in storage-walk order, the mirror in lexical order
        # (what the spec's n/last paging needs): the same tags, not the same bytes.
        body, peer_body = _sorted_tags(body), _sorted_tags(peer_body)
    if body != peer_body:
        at = next((i for i, (a, b) in enumerate(zip(body, peer_body, strict=False)) if a != b), 0)
        problems.append(
            f"body differs ({len(body)} vs {len(peer_body)} bytes; at {at}: "
            f"{body[at : at + 40]!r} vs {peer_body[at : at + 40]!r})"
        )
    for name in COMPARED_HEADERS:
        if name == "Content-Length" and None in (headers.get(name), peer_headers.get(name)):
            continue  # chunked framing on one side: the body check covers the content
        if headers.get(name) != peer_headers.get(name):
            problems.append(f"{name}: {headers.get(name)!r} vs {peer_headers.get(name)!r}")
    return problems


def _sorted_tags(body: bytes) -> bytes:
    doc = json.loads(body)
    doc["tags"] = sorted(doc.get("tags") or [])
    return json.dumps(doc).encode()


async def run_load(target: Target, case: Case, seconds: float, workdir: Path) -> dict[str, Any]:
    """wrk for GET; ApacheBench for HEAD, which wrk 4.1 cannot measure: its parser waits for
    the body a HEAD answer's Content-Length announces, so every connection stalls."""
    if case.method == "HEAD":
        return await run_ab(target, case, seconds)
    return await run_wrk(target, case, seconds, workdir)


async def run_ab(target: Target, case: Case, seconds: float) -> dict[str, Any]:
    """``ab -k -i -c CONNECTIONS -t seconds`` -> the figures of :func:`run_wrk`."""
    argv = [AB, "-k", "-i", "-q", "-c", str(CONNECTIONS), "-t", str(max(1, round(seconds)))]
    argv += ["-n", "100000000", "-s", "10", "-H", f"Accept: {MANIFEST_ACCEPT}"]
    for name, value in target.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(target.url + case.path)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    text = out.decode(errors="replace")

    def number(pattern: str, default: float | None = None) -> float:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            if default is not None:
                return default
            raise BenchmarkError(f"ab gave no {pattern!r} ({proc.returncode}): {err.decode()}")
        return float(match.group(1))

    duration = number(r"^Time taken for tests:\s+([0-9.]+)")
    requests = number(r"^Complete requests:\s+([0-9]+)")
    return {
        "requests": int(requests),
        "duration_us": int(duration * 1e6),
        "bytes": 0,
        "status_errors": int(number(r"^Non-2xx responses:\s+([0-9]+)", 0)),
        "socket_errors": int(number(r"^Failed requests:\s+([0-9]+)")),
        "p50_us": int(number(r"^\s+50%\s+([0-9]+)") * 1000),
        "p99_us": int(number(r"^\s+99%\s+([0-9]+)") * 1000),
        "max_us": int(number(r"^\s+100%\s+([0-9]+)") * 1000),
        "rps": requests / duration,
        "bytes_per_s": 0.0,
        "tool": "ab",
    }


async def run_wrk(target: Target, case: Case, seconds: float, workdir: Path) -> dict[str, Any]:
    """wrk -t THREADS -c CONNECTIONS for ``seconds`` -> the figures of its done() line."""
    script = workdir / f"{case.method.lower()}.lua"
    headers = "\n".join(
        f'wrk.headers["{name}"] = "{value}"' for name, value in target.headers.items()
    )
    script.write_text(_SCRIPT.format(method=case.method, accept=MANIFEST_ACCEPT, headers=headers))
    argv = [WRK, "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{max(1, round(seconds))}s"]
    argv += ["--timeout", "10s", "-s", str(script), target.url + case.path]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("WRKJSON "):
            data: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
            seconds_run = data["duration_us"] / 1e6
            data["rps"] = data["requests"] / seconds_run
            data["bytes_per_s"] = data["bytes"] / seconds_run
            data["tool"] = "wrk"
            return data
    raise BenchmarkError(f"wrk gave no result ({proc.returncode}): {err.decode()[-500:]}")


def _rss_reset(pids: list[int]) -> None:
    for pid in pids:
        reset_peak_rss(pid)


def _rss_peak_mib(pids: list[int]) -> float | None:
    values = [proc_status_kib(pid, "VmHWM") for pid in pids]
    known = [v for v in values if v is not None]
    return sum(known) / 1024 if known else None


async def measure(
    targets: dict[str, Target],
    all_cases: list[Case],
    seconds: float,
    warmup: float,
    log: Any,
) -> list[dict[str, Any]]:
    """Every case against every target, one after the other."""
    workdir = Path(tempfile.mkdtemp(prefix="mirror-bench-wrk-"))
    rows = []
    try:
        for case in all_cases:
            row: dict[str, Any] = {"case": case.name, "kind": case.kind, "problems": {}}
            for name, target in targets.items():
                await target.ready()
                if name != PEER:
                    row["problems"][name] = await compare(case, target, targets[PEER])
                if warmup:
                    await run_load(target, case, warmup, workdir)
                _rss_reset(target.pids)
                load = os.getloadavg()[0]
                figures = await run_load(target, case, seconds, workdir)
                figures["loadavg_1m"] = load
                figures["peak_rss_mib"] = _rss_peak_mib(target.pids)
                row[name] = figures
                log(
                    f"serving {case.name} {name}: {figures['rps']:.0f} req/s, "
                    f"{figures['bytes_per_s'] / 1e6:.0f} MB/s, p99 {figures['p99_us'] / 1000:.1f} "
                    f"ms, errors {figures['status_errors'] + figures['socket_errors']}"
                )
            for name, found in row["problems"].items():
                if found:
                    log(f"WARNING serving {case.name} {name}: answers differ: {'; '.join(found)}")
            rows.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def tools_missing() -> list[str]:
    """Load generators not installed (scripts/bench-deps.sh installs both)."""
    return [tool for tool in (WRK, AB) if shutil.which(tool) is None]


# ---------------------------------------------------------------- targets and table

RPS_TARGET = 1.0
THROUGHPUT_TARGET = 0.95
P99_TARGET = 1.5
RSS_TARGET_MIB = 200.0
OURS, PEER = "service", "docker-registry"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def services(row: dict[str, Any]) -> list[str]:
    """The service targets measured in a row ("service/sqlite", "service/postgres")."""
    return [key for key in row if key.startswith(OURS)]


def evaluate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per case and database: rate ratio, p99 ratio, RSS and correctness against the targets."""
    out = []
    for row in rows:
        peer = row.get(PEER)
        if peer is None:
            continue
        key = "rps" if row["kind"] == "requests" else "bytes_per_s"
        goal = RPS_TARGET if row["kind"] == "requests" else THROUGHPUT_TARGET
        row.setdefault("verdicts", {})
        for name in services(row):
            ours = row[name]
            rate = _ratio(ours[key], peer[key])
            p99 = _ratio(ours["p99_us"], peer["p99_us"])
            rss = ours["peak_rss_mib"]
            errors = ours["status_errors"] + ours["socket_errors"]
            problems = row["problems"].get(name, []) if isinstance(row["problems"], dict) else []
            checks = {
                f"{'req/s' if key == 'rps' else 'throughput'} >= {goal}x": rate is not None
                and rate >= goal,
                f"p99 <= {P99_TARGET}x": p99 is not None and p99 <= P99_TARGET,
                f"RSS <= {RSS_TARGET_MIB:.0f} MiB": rss is not None and rss <= RSS_TARGET_MIB,
                "same answers, no errors": not problems and errors == 0,
            }
            ours["ratio"], ours["p99_ratio"], ours["checks"] = rate, p99, checks
            failed = [check for check, ok in checks.items() if not ok]
            out.append(
                {
                    "case": row["case"],
                    "server": name,
                    "status": "PASS" if not failed else "FAIL",
                    "failed": failed,
                }
            )
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """The serving table: each service's figures beside the peer's, ratios and verdicts."""

    def rate(figures: dict[str, Any], kind: str) -> str:
        if kind == "requests":
            return f"{figures['rps']:,.0f} req/s"
        return f"{figures['bytes_per_s'] / 1e9:.2f} GB/s"

    head = (
        f"{'request':<28} {'server':<16} {'service':>12} {'docker-registry':>15} {'ratio':>6} "
        f"{'p99 ours/peer ms':>17} {'p99 x':>6} {'RSS MiB':>7}  verdict"
    )
    out = [head, "-" * len(head)]
    for row in rows:
        peer = row.get(PEER)
        if peer is None:
            continue
        for name in services(row):
            ours = row[name]
            failed = [check for check, ok in ours.get("checks", {}).items() if not ok]
            out.append(
                f"{row['case']:<28} {name:<16} {rate(ours, row['kind']):>12} "
                f"{rate(peer, row['kind']):>15} {_num(ours.get('ratio'))}x "
                f"{ours['p99_us'] / 1000:>8.1f}/{peer['p99_us'] / 1000:<8.1f} "
                f"{_num(ours.get('p99_ratio'))}x {_num(ours['peak_rss_mib'], 0, 7)}  "
                + ("PASS" if not failed else "FAIL: " + ", ".join(failed))
            )
    return "\n".join(out)


def _num(value: float | None, digits: int = 2, width: int = 5) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _label(target: str) -> str:
    """The README label of a service target: its database and how it was pulled."""
    database, _, token = target.split("/")[-1].partition("+")
    return f"{database}, {'private (token)' if token else 'public'}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The serving table for the README: each service against docker-registry, with targets."""
    out = [
        "| request | server | service | docker-registry | ratio (target) | p99 service / "
        "registry (target <= 1.5x) | peak RSS (target <= 200 MiB) | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        peer = row.get(PEER)
        if peer is None:
            continue
        goal = RPS_TARGET if row["kind"] == "requests" else THROUGHPUT_TARGET

        def rate(figures: dict[str, Any], kind: str = row["kind"]) -> str:
            if kind == "requests":
                return f"{figures['rps']:,.0f} req/s"
            return f"{figures['bytes_per_s'] / 1e9:.2f} GB/s"

        for name in services(row):
            ours = row[name]
            failed = [check for check, ok in ours.get("checks", {}).items() if not ok]
            out.append(
                f"| {row['case']} | {_label(name)} | {rate(ours)} | {rate(peer)} | "
                f"{_num(ours.get('ratio')).strip()}x (>= {goal}x) | "
                f"{ours['p99_us'] / 1000:.0f} / {peer['p99_us'] / 1000:.0f} ms = "
                f"{_num(ours.get('p99_ratio')).strip()}x | "
                f"{_num(ours['peak_rss_mib'], 0).strip()} MiB | "
                + ("met" if not failed else "missed: " + ", ".join(failed))
                + " |"
            )
    return "\n".join(out)
