"""``mirrorctl sync`` as a person sees it: a progress bar on a terminal (a real pseudo-terminal),
one plain line per event in a pipe, and Ctrl-C said once. A real server process syncs from
the real registry."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import (
    MIRRORCTL,
    PYTHON,
    ServerProcess,
    clean_env,
    ctl,
    ok,
    start_server,
)
from tests.support import images as img
from tests.support.registry import RegistryProcess

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
LINE = re.compile(
    r"^(warning: .+|tasks/[0-9a-f-]+ (queued|running|completed|failed|canceled)(: .+)?)$"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("progress-server"))
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            assert running.stop() == 0, running.log()


def _program() -> list[str]:
    return [str(MIRRORCTL)] if MIRRORCTL.exists() else [PYTHON, "-m", "client"]


def _publish(server: ServerProcess, registry: RegistryProcess, name: str) -> None:
    """Two images upstream (one 900 KiB layer each), and a repository and remote called `name`."""
    upstream = f"progress/{name}"
    for tag in ("1.0", "1.1"):
        image = img.make_image(f"{name}-{tag}", layers=1, layer_size=900 * 1024)
        img.push_image_sync(registry.url, upstream, tag, image)
    ok(ctl(server, "repository", "create", name))
    ok(
        ctl(
            server,
            "remote",
            "create",
            name,
            "--url",
            registry.url,
            "--upstream-name",
            upstream,
            "--include-tags",
            "1.*",
        )
    )


def _run_in_pty(args: list[str], timeout: float = 60, cwd: Path | None = None) -> tuple[int, str]:
    """Run a command on a pseudo-terminal (160 columns) in `cwd` (the server's directory,
    where mirrorctl finds the admin token); return (status, screen text)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(
        args,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=clean_env(TERM="xterm-256color", COLUMNS="160"),
        cwd=cwd,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, b"".join(chunks).decode(errors="replace")


@pytest.mark.registry
def test_progress_bar_on_a_terminal(
    server: ServerProcess, upstream_registry: RegistryProcess
) -> None:
    name = f"tty-{uuid.uuid4().hex[:8]}"
    _publish(server, upstream_registry, name)
    status, screen = _run_in_pty(
        [*_program(), "--server", server.address, "sync", name, "--remote", name],
        cwd=server.workdir,
    )
    text = ANSI.sub("", screen)
    assert status == 0, text
    assert "━" in text, text  # rich's bar
    assert "✓" in text, text  # finished stages are marked
    # Stable totals in their unit, bytes of the downloads.
    assert "2/2 tags" in text, text
    assert re.search(r"4/4 blobs, \d\.\d MB/\d\.\d MB", text), text
    assert f"created repositories/{name}/versions/1" in text, text
    assert "?" not in text.replace("0/?", ""), text


@pytest.mark.registry
def test_one_plain_line_per_event_without_a_terminal(
    server: ServerProcess, upstream_registry: RegistryProcess
) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    _publish(server, upstream_registry, name)
    out = ok(ctl(server, "sync", name, "--remote", name))
    lines = out.splitlines()
    created = lines.index(f"created repositories/{name}/versions/1")
    events = lines[:created]
    assert events and all(LINE.match(line) for line in events), events
    assert events[-1].split(":")[0].endswith(" completed"), events
    text = "\n".join(events)
    assert "sync.resolving_tags 2/2 tags (completed)" in text
    assert re.search(r"sync\.downloading_blobs 4/4 blobs, \d\.\d MB/\d\.\d MB \(completed\)", text)
    assert "sync.fetching_manifests 2/2 manifests (completed)" in text
    assert "?" not in text and "\x1b" not in out
    # Each stage's totals never change once stated.
    totals: dict[str, str] = {}
    for stage, total in re.findall(r"(sync\.\w+) \d+/(\d+) ", text):
        assert totals.setdefault(stage, total) == total, (stage, text)


def test_ctrl_c_says_interrupted_once_and_the_task_goes_on(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A sync stuck on a silent upstream; Ctrl-C stops following it, with one message."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        name = f"int-{uuid.uuid4().hex[:8]}"
        ok(ctl(server, "repository", "create", name))
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        ok(ctl(server, "remote", "create", name, "--url", url, "--upstream-name", "a/b"))
        proc = subprocess.Popen(
            [*_program(), "--server", server.address, "sync", name, "--remote", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=server.workdir,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the task exists and is being followed
        assert re.match(r"tasks/\S+ (queued|running)", first), first
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (first, rest, err)
        task = first.split()[0]
        assert err.splitlines() == [
            f"interrupted: {task} goes on on the server (mirrorctl task watch "
            f"{task.removeprefix('tasks/')} / task cancel {task.removeprefix('tasks/')})"
        ], err
        shown = ok(ctl(server, "task", "show", task))
        assert "state: running" in shown or "state: queued" in shown, shown
        ok(ctl(server, "task", "cancel", task))
    finally:
        silent.close()
