"""``python -m benchmarks``: see the package docstring (and ``--help``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from pathlib import Path
from typing import Any

from benchmarks import report, serving, storage
from benchmarks.runner import Options, log, run
from benchmarks.workloads import WORKLOAD_NAMES

DATABASES = ("sqlite", "postgres")
TOOLS = ("service", "floor", "skopeo")
SECTIONS = ("sync", "serving", "storage", "push")


def _choices(allowed: tuple[str, ...]) -> argparse.Action | type:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(allowed)}, got {text!r}"
            )
        return list(dict.fromkeys(items))

    return parse  # type: ignore[return-value]


def parse_args(argv: list[str] | None = None) -> tuple[Options, bool, Path | None, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Sync benchmarks of the mirror service against a raw floor and skopeo.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small workloads, 1 run (well under 2 minutes)"
    )
    parser.add_argument("--runs", type=int, help="runs per measurement (median); 3, quick: 1")
    parser.add_argument(
        "--workloads",
        type=_choices(WORKLOAD_NAMES),
        help="default: all; quick: all but many-tags-10k",
    )
    parser.add_argument("--databases", type=_choices(DATABASES), default=list(DATABASES))
    parser.add_argument("--tools", type=_choices(TOOLS), default=list(TOOLS))
    parser.add_argument(
        "--sections",
        type=_choices(SECTIONS),
        default=list(SECTIONS),
        help="sync (tools x workloads x phases), serving (wrk vs docker-registry), storage "
        "(big-blobs first sync on the filesystem vs S3 on moto) and/or push (skopeo copy of "
        "big-blobs into the service vs docker-registry)",
    )
    parser.add_argument(
        "--serving-seconds", type=float, help="wrk duration per request kind; 8, quick: 2"
    )
    parser.add_argument(
        "--serving-cases",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=[],
        help="only the serving request kinds whose name contains one of these (comma-separated, "
        "e.g. 'large blob,tags/list'); default: all",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record the server in every phase (timings are then perturbed)",
    )
    parser.add_argument(
        "--skopeo-all-phases",
        action="store_true",
        help="run skopeo in every phase (default: once per run; its re-syncs are full copies)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp work dir")
    parser.add_argument(
        "--results-dir", type=Path, default=Options().results_dir, help="where JSON goes"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target fails (default: report only)"
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="measure nothing: print the table and targets of a results JSON file",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="with --report: print the README's two tables (markdown) instead",
    )
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    options = Options(
        quick=args.quick,
        runs=runs,
        workloads=args.workloads
        or [w for w in WORKLOAD_NAMES if not (args.quick and w == "many-tags-10k")],
        databases=args.databases,
        tools=args.tools,
        sections=args.sections,
        serving_seconds=args.serving_seconds or (2.0 if args.quick else 8.0),
        serving_cases=args.serving_cases,
        profile=args.profile,
        skopeo_all_phases=args.skopeo_all_phases,
        keep=args.keep,
        results_dir=args.results_dir,
    )
    return options, args.strict, args.report, args.markdown


def print_report(result: dict[str, Any]) -> None:
    opts = result["options"]
    print()
    print(
        f"mirror sync benchmark ({'quick' if opts['quick'] else 'full'}, "
        f"median of {opts['runs']} run(s), {result['elapsed_seconds']} s in all, "
        f"generated {result['generated']})"
    )
    if result["rows"]:
        print(report.format_table(result["rows"]))
        print(textwrap.fill(report.LEGEND, width=110))
        print()
        print("Targets:")
        print(report.format_targets(result["targets"]))
    push = result.get("push")
    if push:
        print(
            f"push (skopeo copy of {push['tags']} tags, {push['bytes'] / 1e9:.2f} GB, median of "
            f"{push['runs']}): service {push['median_service']:.2f} s, docker-registry "
            f"{push['median_registry']:.2f} s = {push['ratio']:.2f}x"
        )
    if result.get("serving"):
        print()
        print(f"Serving ({result['method']['serving']}):")
        print(serving.format_table(result["serving"]))
    if result.get("storage"):
        print()
        print(f"Storage ({result['method']['storage']}):")
        print(storage.format_table(result["storage"]))
    for note in result["notes"]:
        print(f"note: {note}")
    for key, profile in result["profiles"].items():
        print(f"profile {key}: {profile['file']}")


def main(argv: list[str] | None = None) -> int:
    options, strict, rerender, markdown = parse_args(argv)
    if rerender is not None:
        result = report.rerender(rerender)
        if markdown:
            print(report.markdown_sync(result["rows"], list(result["workloads"])))
            print()
            print(serving.markdown(result.get("serving") or []))
        else:
            print_report(result)
        return 0
    result = asyncio.run(run(options))
    path = report.write_results(result, options.results_dir)
    print_report(result)
    log(f"results written to {path} and {path.parent / 'latest.json'}")
    if result["failed_measurements"]:
        log(f"{result['failed_measurements']} measurement(s) failed; see the notes")
        return 2
    failed = [t for t in result["targets"] if t["status"] == "FAIL"]
    return 1 if strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
