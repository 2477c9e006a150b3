"""Medians, ratios, the issue's targets, the text table and the JSON result file."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import MIB, REQUEST_KINDS

PHASES = ("first", "noop", "moved")
PHASE_TITLES = {"first": "first sync", "noop": "no-op re-sync", "moved": "5% moved"}
TOOL_ORDER = ("service", "floor", "skopeo")
DB_ORDER = ("sqlite", "postgres", "-")


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """One measured row: a tool (on a database, for the service) in one phase of a workload."""

    workload: str
    tool: str
    db: str
    phase: str

    def sort_key(self, workloads: Sequence[str]) -> tuple[int, int, int, int]:
        return (
            workloads.index(self.workload) if self.workload in workloads else 99,
            PHASES.index(self.phase),
            TOOL_ORDER.index(self.tool),
            DB_ORDER.index(self.db),
        )


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_sample(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number of the samples (requests per kind too)."""
    requests = {
        kind: _median([s["requests"].get(kind, 0) for s in samples]) for kind in REQUEST_KINDS
    }
    return {
        "wall": _median([s["wall"] for s in samples]),
        "wall_min": min(s["wall"] for s in samples),
        "wall_max": max(s["wall"] for s in samples),
        "cpu": _median([s.get("cpu") for s in samples]),
        "peak_rss_mib": _median([s.get("peak_rss_mib") for s in samples]),
        "idle_pct": _median([s.get("idle_pct") for s in samples]),
        "registry_cpu": _median([s.get("registry_cpu") for s in samples]),
        "other_cpu": _median([s.get("other_cpu") for s in samples]),
        "requests": requests,
        "bytes": _median([s["bytes"] for s in samples]),
        "runs": len(samples),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def build_rows(
    samples: dict[Key, list[dict[str, Any]]], workloads: Sequence[str]
) -> list[dict[str, Any]]:
    medians = {key: median_sample(runs) for key, runs in samples.items()}
    rows = []
    for key in sorted(medians, key=lambda k: k.sort_key(workloads)):
        med = medians[key]
        floor = medians.get(Key(key.workload, "floor", "-", key.phase))
        skopeo = medians.get(Key(key.workload, "skopeo", "-", key.phase))
        row: dict[str, Any] = {
            "workload": key.workload,
            "tool": key.tool,
            "db": key.db,
            "phase": key.phase,
            **med,
            "samples": samples[key],
        }
        if key.tool == "service":
            row["ratio_floor"] = _ratio(med["wall"], floor["wall"] if floor else None)
            row["ratio_skopeo"] = _ratio(med["wall"], skopeo["wall"] if skopeo else None)
        rows.append(row)
    return rows


def _row(rows: list[dict[str, Any]], workload: str, tool: str, db: str, phase: str) -> Any:
    for row in rows:
        if (row["workload"], row["tool"], row["db"], row["phase"]) == (workload, tool, db, phase):
            return row
    return None


def paired_ratios(rows: list[dict[str, Any]], row: dict[str, Any], tool: str) -> list[float]:
    """Service wall / ``tool`` wall run by run (the runs interleave the tools, so a pair shares
    the machine's conditions better than two medians do)."""
    other = _row(rows, row["workload"], tool, "-", row["phase"])
    if other is None:
        return []
    return [
        a["wall"] / b["wall"]
        for a, b in zip(row["samples"], other["samples"], strict=False)
        if b["wall"] > 0
    ]


def evaluate_targets(rows: list[dict[str, Any]], workloads: Sequence[str]) -> list[dict[str, Any]]:
    """The issue's targets, one line per workload and database, with figures."""
    out: list[dict[str, Any]] = []
    dbs = [db for db in ("sqlite", "postgres") if any(r["db"] == db for r in rows)]

    def add(target: str, workload: str, db: str, ok: bool | None, figure: str) -> None:
        status = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        out.append(
            {"target": target, "workload": workload, "db": db, "status": status, "figure": figure}
        )

    def fmt(x: float | None, digits: int = 2) -> str:
        return "?" if x is None else f"{x:.{digits}f}"

    def vs_floor(row: dict[str, Any]) -> str:
        text = f"{fmt(row['wall'])} s = {fmt(row.get('ratio_floor'))}x floor"
        pairs = paired_ratios(rows, row, "floor")
        if len(pairs) > 1:
            text += " (per run " + "/".join(fmt(p) for p in pairs) + ")"
        return text

    for workload in workloads:
        for db in dbs:
            first = _row(rows, workload, "service", db, "first")
            noop = _row(rows, workload, "service", db, "noop")
            if first is None:
                continue
            r = first.get("ratio_floor")
            add(
                f"first sync <= {FIRST_TARGET}x floor",
                workload,
                db,
                None if r is None else r <= FIRST_TARGET,
                vs_floor(first),
            )
            if noop is not None:
                r = noop.get("ratio_floor")
                add(
                    f"no-op re-sync <= {NOOP_TARGET}x floor no-op",
                    workload,
                    db,
                    None if r is None else r <= NOOP_TARGET,
                    vs_floor(noop),
                )
                gets = noop["requests"]["manifest_get"], noop["requests"]["blob_get"]
                add(
                    "no manifest GET / blob GET in a no-op re-sync",
                    workload,
                    db,
                    gets == (0, 0),
                    f"{gets[0]:.0f} manifest GET, {gets[1]:.0f} blob GET",
                )
            if workload in RSS_TARGETS:
                peak = max(
                    (
                        p["peak_rss_mib"]
                        for ph in PHASES
                        if (p := _row(rows, workload, "service", db, ph)) is not None
                        and p["peak_rss_mib"] is not None
                    ),
                    default=None,
                )
                bound = RSS_TARGETS[workload]
                add(
                    f"server peak RSS <= {bound} MiB",
                    workload,
                    db,
                    None if peak is None else peak <= bound,
                    f"{fmt(peak, 0)} MiB",
                )
            small, large = _per_tag(rows, "many-tags", db), _per_tag(rows, workload, db)
            if workload == "many-tags-10k" and small and large:
                add(
                    f"per-tag first-sync cost at 10k tags <= {PER_TAG_TARGET}x that at 1k",
                    workload,
                    db,
                    large / small <= PER_TAG_TARGET,
                    f"{large * 1000:.2f} ms vs {small * 1000:.2f} ms per tag = "
                    f"{large / small:.2f}x",
                )
    return out


FIRST_TARGET = 1.25
NOOP_TARGET = 1.15
PER_TAG_TARGET = 1.1
RSS_TARGETS = {"many-tags-10k": 150, "big-blobs": 150}
"""Peak server RSS bounds (MiB) of the issue: 150 at 10,000 tags; big-blobs streams."""


def _per_tag(rows: list[dict[str, Any]], workload: str, db: str) -> float | None:
    row = _row(rows, workload, "service", db, "first")
    tags = row and row["requests"].get("manifest_head")
    return row["wall"] / tags if row and tags else None


COLUMNS = (
    ("workload", "<", 10),
    ("tool", "<", 7),
    ("db", "<", 8),
    ("phase", "<", 13),
    ("wall s", ">", 8),
    ("cpu s", ">", 7),
    ("tags", ">", 5),
    ("m.HEAD", ">", 6),
    ("m.GET", ">", 6),
    ("b.HEAD", ">", 6),
    ("b.GET", ">", 6),
    ("other", ">", 5),
    ("MB", ">", 8),
    ("RSS MiB", ">", 7),
    ("/floor", ">", 6),
    ("/skopeo", ">", 7),
    ("reg cpu", ">", 7),
    ("oth cpu", ">", 7),
)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, (_, a, w) in zip(cells, COLUMNS, strict=True))

    out = [line([c[0] for c in COLUMNS]), line(["-" * c[2] for c in COLUMNS])]
    previous = None
    for row in rows:
        group = (row["workload"], row["phase"])
        if previous is not None and group != previous:
            out.append("")
        previous = group
        req = row["requests"]
        out.append(
            line(
                [
                    row["workload"],
                    row["tool"],
                    row["db"],
                    PHASE_TITLES[row["phase"]],
                    _num(row["wall"]),
                    _num(row["cpu"], 1),
                    *(f"{req[k]:.0f}" for k in REQUEST_KINDS),
                    _num(row["bytes"] / 1e6, 1),
                    _num(row["peak_rss_mib"], 0),
                    _num(row.get("ratio_floor")),
                    _num(row.get("ratio_skopeo")),
                    _num(row.get("registry_cpu"), 1),
                    _num(row.get("other_cpu"), 1),
                ]
            )
        )
    return "\n".join(out)


LEGEND = (
    "wall s: median wall time; cpu s: CPU of the tool's own process (the server for the "
    "service); tags/m.HEAD/m.GET/b.HEAD/b.GET/other: upstream requests, from the registry's "
    "access log; MB: response bytes the registry sent; RSS MiB: peak RSS of the tool's "
    "process in the phase; "
    "/floor, /skopeo: service wall / that tool's wall; skopeo re-syncs are full copies (it "
    "cannot update a dir), measured once per run unless --skopeo-all-phases; reg cpu: CPU "
    "seconds the registry spent in the phase; oth cpu: busy CPU seconds of everything but "
    "the registry and the tool (other sessions' work, the driver, PostgreSQL for "
    "service/postgres): high values mean a contended measurement. 2 cores = 2 CPU s per s."
)


def format_targets(targets: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{t['status']:<4}  {t['target']:<46} {t['workload']:<10} {t['db']:<8} {t['figure']}"
        for t in targets
    )


def rerender(path: Path) -> dict[str, Any]:
    """A results file's rows and targets recomputed from its samples by the current code."""
    data = json.loads(path.read_text())
    samples = {
        Key(r["workload"], r["tool"], r["db"], r["phase"]): r["samples"] for r in data["rows"]
    }
    workloads = list(data.get("workloads") or dict.fromkeys(r["workload"] for r in data["rows"]))
    data["rows"] = build_rows(samples, workloads)
    data["targets"] = evaluate_targets(data["rows"], workloads)
    if data.get("serving"):
        from benchmarks import serving  # the serving section's own verdicts

        data["serving_targets"] = serving.evaluate(data["serving"])
    return data


def write_results(report: dict[str, Any], results_dir: Path) -> Path:
    """``<UTC timestamp>.json`` and ``latest.json`` (each written to a temp file, renamed)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"
    path = results_dir / f"{stamp}.json"
    for target in (path, results_dir / "latest.json"):
        temp = target.with_name(target.name + ".tmp")
        temp.write_text(text)
        os.replace(temp, target)
    return path


__all__ = [
    "MIB",
    "PHASES",
    "Key",
    "build_rows",
    "evaluate_targets",
    "format_table",
    "format_targets",
    "rerender",
    "write_results",
]


def markdown_sync(rows: list[dict[str, Any]], workloads: Sequence[str]) -> str:
    """The sync table for the README: service per database against the floor and its target."""
    targets = {"first": FIRST_TARGET, "noop": NOOP_TARGET}
    out = [
        "| workload | phase | service SQLite | service PostgreSQL | floor | SQLite / floor "
        "| PostgreSQL / floor | target | peak RSS (SQLite / PG) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workload in workloads:
        for phase in PHASES:
            floor = _row(rows, workload, "floor", "-", phase)
            cells = []
            ratios = []
            rss = []
            for db in ("sqlite", "postgres"):
                row = _row(rows, workload, "service", db, phase)
                cells.append(f"{row['wall']:.2f} s" if row else "-")
                ratio = row.get("ratio_floor") if row else None
                goal = targets.get(phase)
                mark = "" if goal is None or ratio is None else (" ✓" if ratio <= goal else " ✗")
                ratios.append("-" if ratio is None else f"{ratio:.2f}x{mark}")
                rss.append(f"{row['peak_rss_mib']:.0f}" if row and row["peak_rss_mib"] else "-")
            if all(c == "-" for c in cells):
                continue
            goal = targets.get(phase)
            floor_text = f"{floor['wall']:.2f} s" if floor else "-"
            goal_text = f"<= {goal}x" if goal else "(none)"
            out.append(
                f"| {workload} | {PHASE_TITLES[phase]} | {cells[0]} | {cells[1]} | "
                f"{floor_text} | {ratios[0]} | {ratios[1]} | {goal_text} | "
                f"{' / '.join(rss)} MiB |"
            )
    return "\n".join(out)
