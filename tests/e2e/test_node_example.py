"""examples/node: the Node.js client (grpc-js + proto-loader) against the real server process
and the real registry as upstream, installed with `npm ci` from its own lockfile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import ServerProcess, as_json, clean_env, ctl, start_server
from tests.support import images as img
from tests.support.registry import RegistryProcess

ROOT = Path(__file__).resolve().parents[2]
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are not installed"),
]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/node (and the protos it loads) after `npm ci`."""
    root = tmp_path_factory.mktemp("node")
    shutil.copytree(ROOT / "protos", root / "protos", ignore=shutil.ignore_patterns("*.py*"))
    target = root / "examples" / "node"
    shutil.copytree(
        ROOT / "examples" / "node", target, ignore=shutil.ignore_patterns("node_modules")
    )
    assert NPM is not None
    subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=target,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("node-server"))
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            assert running.stop() == 0, running.log()


def node(example: Path, server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """sync.js against `server`, with the server's admin token (MIRROR_TOKEN_FILE)."""
    assert NODE is not None
    token_file = server.workdir / ".mirror-data" / "admin-token"
    return subprocess.run(
        [NODE, "sync.js", server.address, *args],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(MIRROR_TOKEN_FILE=str(token_file)),
        check=False,
    )


def test_node_client_creates_syncs_and_prints_the_summary(
    example: Path, server: ServerProcess, upstream_registry: RegistryProcess
) -> None:
    upstream = f"node{uuid.uuid4().hex[:8]}/app"
    image = img.make_image("node-example", layers=2, layer_size=4096)
    index = img.make_index("node-example-multi", img.PLATFORMS[:2], layer_size=512)
    img.push_image_sync(upstream_registry.url, upstream, "1.0", image)
    img.push_index_sync(upstream_registry.url, upstream, "1.1", index)
    args = (upstream_registry.url, upstream, "from-node", "from-node", "1.*")

    first = node(example, server, *args)

    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[:2] == ["created repositories/from-node", "created remotes/from-node"]
    events = [line for line in lines if line.startswith("event ")]
    assert events[0].startswith("event TASK_EVENT_KIND_SNAPSHOT TASK_STATE_QUEUED")
    assert events[-1].startswith("event TASK_EVENT_KIND_FINISHED TASK_STATE_COMPLETED")
    assert "sync.downloading_blobs 7/7 blobs" in events[-1]  # int64 as strings, units named
    assert "version repositories/from-node/versions/1" in lines
    # The summary the example prints is the server's, as mirrorctl reads it.
    version = as_json(ctl(server, "-o", "json", "version", "show", "from-node", "1"))["version"]
    summary = version["contentSummary"]
    printed = {
        m.group(1): (m.group(2), m.group(3), m.group(4))
        for line in lines
        if (m := re.fullmatch(r"(container\.\w+) added=(\d+) removed=(\d+) present=(\d+)", line))
    }
    assert printed == {
        t: (summary["added"].get(t, "0"), summary.get("removed", {}).get(t, "0"), n)
        for t, n in summary["present"].items()
    }
    assert printed["container.tag"] == ("2", "0", "2")
    assert printed["container.manifest"] == ("4", "0", "4")  # image + index + 2 children

    again = node(example, server, *args)  # idempotent: reuses both, no new version
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:2] == [
        "exists repositories/from-node",
        "exists remotes/from-node",
    ]
    assert "version repositories/from-node/versions/1 (unchanged: no new version)" in again.stdout


def test_node_client_decodes_the_rich_error(example: Path, server: ServerProcess) -> None:
    result = node(example, server, "ftp://nowhere", "a/b", "Bad_Id", "bad-remote")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: INVALID_ARGUMENT INVALID_RESOURCE_ID: repository_id: invalid id 'Bad_Id': "
        "must be 1-128 characters of a-z, 0-9, '.', '_', '-', starting and ending with a-z "
        "or 0-9 (INVALID_RESOURCE_ID)"
    ], result.stderr


def test_lockfile_pins_what_the_readme_names() -> None:
    lock = json.loads((ROOT / "examples" / "node" / "package-lock.json").read_text())
    packages = lock["packages"]
    for name in ("@grpc/grpc-js", "@grpc/proto-loader", "protobufjs"):
        assert f"node_modules/{name}" in packages, name
