"""Property-based test (Hypothesis) of the registry's path router and handlers over a real
endpoint with published content: whatever the path, query, method and Range header, the
answer is never a 5xx, and no file outside the storage root is opened.

Requests go from Hypothesis (in a worker thread) to the server on the test's event loop;
opens are watched with an audit hook (`sys.addaudithook`) while the examples run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from protos import mirror_pb2 as pb
from tests.e2e.conftest import E2E
from tests.support import images as img
from tests.support.hostile import HostileUpstream

EXAMPLES = 300
_watching: dict[str, object] = {"on": False, "opened": []}


def _audit(event: str, args: tuple[object, ...]) -> None:
    if (
        event == "open"
        and _watching["on"]
        and threading.get_ident() != _watching.get("client")  # not Hypothesis' own files
        and isinstance(args[0], str | bytes | os.PathLike)
    ):
        _watching["opened"].append(os.fsdecode(args[0]))  # type: ignore[attr-defined]


sys.addaudithook(_audit)  # process-wide and permanent: it only records while "on"

segment = st.sampled_from(
    [
        "app",
        "r",
        "..",
        ".",
        "%2e%2e",
        "%2F",
        "%00",
        "_catalog",
        "v2",
        "blobs",
        "manifests",
        "tags",
        "list",
        "referrers",
        "sha256:" + "0" * 64,
        "",
        "~",
        "%ff",
        "a" * 300,
    ]
) | st.text(alphabet="abc./-_:%0123456789", max_size=12)
tails = st.sampled_from(
    ["tags/list", "manifests/v1", "manifests/", "blobs/", "referrers/", "manifests/sha256:x"]
)


def _paths(digests: list[str]) -> st.SearchStrategy[str]:
    names = st.lists(segment, min_size=0, max_size=5).map("/".join)
    refs = st.sampled_from(digests) | segment
    structured = st.builds(
        lambda prefix, name, tail, ref: f"/{prefix}/{name}/{tail}{ref}",
        st.sampled_from(["v2", "v2/", "extensions/v2", "v1", ""]),
        st.sampled_from(["fuzz/app", "fuzz", "fuzz/app/x"]) | names,
        tails | st.sampled_from(["signatures/"]),
        refs,
    )
    # A third of the examples aim at the published repository, so blobs are really served.
    aimed = st.builds(
        lambda tail, ref: f"/v2/fuzz/app/{tail}{ref}",
        st.sampled_from(["blobs/", "manifests/", "referrers/"]),
        st.sampled_from(digests) | segment,
    )
    return aimed | structured | names.map(lambda n: "/" + n)


def _in_client_thread(run: Callable[[], None]) -> None:
    """Run the Hypothesis loop, marking its thread: its own files are not the server's."""
    _watching["client"] = threading.get_ident()
    run()


def _classify_opens(opened: list[str], data_dir: str) -> tuple[list[str], list[str]]:
    """(files opened under the data dir, files opened anywhere else but the interpreter's
    own libraries, Python modules (imports) and pseudo-filesystems)."""
    benign = (sys.prefix, sys.base_prefix, sys.exec_prefix, "/proc/", "/dev/", "/sys/")
    inside, outside = [], []
    for path in opened:
        real = os.path.realpath(path)
        if real.startswith(data_dir + os.sep):
            inside.append(real)
        elif not real.startswith(benign) and not real.endswith((".py", ".pyc")):
            outside.append(real)
    return inside, outside


async def test_router_never_answers_5xx_nor_opens_outside_the_data_dir(
    e2e: E2E, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = img.make_image("router-fuzz", layers=1, layer_size=1024)
    async with HostileUpstream() as up:
        up.image("app", "v1", image.manifest, media_type=image.media_type, blobs=image.blobs)
        # Public: the fuzzing client is anonymous, and its reads reach the handlers.
        await e2e.publish("fuzz", up.url, "app", "fuzz/app", pb.POLICY_IMMEDIATE, public=True)
    digests = [image.digest, *image.blobs]
    loop = asyncio.get_running_loop()
    statuses: Counter[int] = Counter()
    http = aiohttp.ClientSession(auto_decompress=False)

    async def send(method: str, path: str, query: str, headers: dict[str, str]) -> int:
        target = URL(e2e.url(path + (("?" + query) if query else "")), encoded=True)
        async with http.request(method, target, headers=headers) as resp:
            await resp.read()
            return resp.status

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @example("GET", f"/v2/fuzz/app/blobs/{digests[1]}", "", None, "")
    @example("GET", f"/v2/fuzz/app/blobs/{digests[2]}", "", "bytes=1-5", "")
    @example("GET", f"/v2/fuzz/app/blobs/{digests[2]}", "", "bytes=0-1,4-5", "")
    @example("GET", f"/v2/fuzz/app/blobs/{digests[1]}", "", "bytes=-0", "")
    @example("GET", f"/v2/fuzz/app/blobs/{digests[1]}/../../../../etc/passwd", "", None, "")
    @example("GET", "/v2/fuzz/app/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd", "", None, "")
    @example("GET", "/v2/../../etc/passwd", "", None, "")
    @given(
        method=st.sampled_from(["GET", "HEAD", "GET", "PUT", "DELETE", "OPTIONS"]),
        path=_paths(digests),
        query=st.sampled_from(["", "n=0", "n=1", "n=-1", "n=99999999", "last=%ff", "n=a&n=2"])
        | st.text(alphabet="n=&last%0123456789abc", max_size=20),
        range_header=st.none() | st.text(alphabet="bytes=-0123456789, ", max_size=20),
        accept=st.sampled_from(["", img.OCI_INDEX, "*/*"]),
    )
    def never_fails(
        method: str, path: str, query: str, range_header: str | None, accept: str
    ) -> None:
        headers = {"Accept": accept} if accept else {}
        if range_header is not None:
            headers["Range"] = range_header
        future = asyncio.run_coroutine_threadsafe(send(method, path, query, headers), loop)
        status = future.result(timeout=10)
        statuses[status] += 1
        assert status < 500, (method, path, query, range_header, status)

    data_dir = str(e2e.data_dir.resolve())
    _watching["opened"], _watching["on"] = [], True
    try:
        await asyncio.to_thread(_in_client_thread, never_fails)
    finally:
        _watching["on"] = False
        await http.close()
    opened = [p for p in _watching["opened"] if isinstance(p, str)]  # type: ignore[attr-defined]
    served, outside = _classify_opens(opened, data_dir)
    assert served, "no blob was ever served: the test would prove nothing"
    assert outside == []
    assert sum(statuses.values()) >= EXAMPLES
    assert not any(s >= 500 for s in statuses)
    # Nor a handler error logged after the status went out (aiohttp logs those).
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    print("router examples:", sum(statuses.values()), "statuses:", dict(sorted(statuses.items())))
