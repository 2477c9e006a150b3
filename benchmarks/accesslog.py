"""Upstream request counts from the registry's own access log, outside every timed path.

The benchmark used to count requests with a reverse proxy in front of the registry, which put
a Python hop inside every tool's timed path (the floor took 4.27 s for 1,000 tags through it
against 1.75 s without) and pulled every ratio toward 1. ``docker-registry`` writes a combined
log line per request (``accesslog`` on in its config); :class:`AccessLogCounter` remembers where
the log ended when a phase starts and classifies the lines written since when it ends.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import REQUEST_KINDS, classify

REGISTRY_CONFIG = {
    "log": {"accesslog": {"disabled": False}},
    "storage": {"cache": {"blobdescriptor": "inmemory"}},
}
"""``extra_config`` for :class:`tests.support.registry.RegistryProcess`: access log on, and
the in-memory blob descriptor cache of the configuration Debian ships (a production setup, so
the serving section compares against the registry at its best)."""

# 127.0.0.1 - - [01/Dec/2026:22:55:40 +0000] "GET /v2/x/tags/list HTTP/1.1" 404 109 "" "ua"
_LINE = re.compile(rb'^\S+ \S+ \S+ \[[^]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-)')


class AccessLogCounter:
    """Counts of the requests the registry logged since the last :meth:`reset`."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._offset = 0

    def reset(self) -> None:
        self._offset = self._size()

    def _size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def stats(self) -> dict[str, Any]:
        """``requests``/``bytes`` by kind, ``statuses`` by method and code, odd requests."""
        counts: dict[str, int] = defaultdict(int)
        sizes: dict[str, int] = defaultdict(int)
        statuses: dict[str, int] = defaultdict(int)
        others: list[str] = []
        with open(self.log_path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        for line in data.splitlines():
            match = _LINE.match(line)
            if match is None:
                continue  # the registry's own (non-access) log lines
            method, path, status, size = (g.decode(errors="replace") for g in match.groups())
            kind = classify(method, path)
            counts[kind] += 1
            if method != "HEAD" and size != "-":
                sizes[kind] += int(size)
            statuses[f"{method} {status}"] += 1
            if kind == "other" and len(others) < 10:
                others.append(f"{method} {path} {status}")
        return {
            "requests": {k: counts.get(k, 0) for k in REQUEST_KINDS},
            "bytes": {k: sizes.get(k, 0) for k in REQUEST_KINDS},
            "statuses": dict(statuses),
            "other_samples": others,
        }
