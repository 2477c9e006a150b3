"""Summaries of ``py-spy record --format raw`` output (collapsed stacks).

Each line is ``frame;frame;...;leaf COUNT`` with frames like ``function (path/file.py:LINE)``.
:func:`summarize` turns one file into the hottest leaf frames ("self" samples: where the CPU
was) and the hottest project frames by inclusive samples (which of our lines the time went
under), with paths shortened to the repository or to site-packages.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")
PROJECT_DIRS = ("server/", "client/", "protos/")


def _short(path: str) -> str:
    root = str(REPO_ROOT) + "/"
    if path.startswith(root):
        path = path[len(root) :]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return path


def _frame(raw: str) -> tuple[str, str]:
    """``(short "file:line", function)`` of one collapsed-stack frame."""
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip(), ""
    return f"{_short(match['file'])}:{match['line']}", match["func"]


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """Top self and inclusive (project code only) frames of a collapsed-stack profile."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        location, func = frames[-1]
        self_samples[f"{location} {func}"] += count
        seen: set[str] = set()
        for location, func in frames:
            if location.startswith(PROJECT_DIRS):
                key = f"{location} {func}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count

    def share(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [
            {"frame": k, "samples": v, "percent": round(100 * v / total, 1) if total else 0.0}
            for k, v in items
        ]

    return {
        "samples": total,
        "top_self": share(self_samples.most_common(top)),
        "top_project_inclusive": share(inclusive.most_common(top)),
    }
