"""End to end: a real ``python -m server`` process driven by the ``mirrorctl`` program.

The server runs with its default embedded settings (SQLite in its data directory) on free
loopback ports; every ``mirrorctl`` call is a separate process, as a user would run it.
SQLite only: this is about the processes, not the databases.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PYTHON = sys.executable
MIRRORCTL = Path(PYTHON).parent / "mirrorctl"
SECRET = "pw-E2E-S3CRET"
RPC_LINE = re.compile(r" rpc (/mirror\.v1\.\w+/\w+) \S+ ([A-Z_]+) [0-9.]+ms$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any MIRROR_* variable (so defaults apply), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")}
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    address: str
    log_path: Path
    proc: subprocess.Popen[bytes]
    workdir: Path
    """The server's working directory: its data dir is `./.mirror-data` there, and mirrorctl
    runs there too, so it finds the admin token as in the README."""
    registry_address: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin_token(self) -> str:
        """The token the server wrote on first start."""
        return (self.workdir / ".mirror-data" / "admin-token").read_text().strip()

    def stop(self) -> int:
        """SIGTERM, then the exit status (which must come within 10 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"no exit within 10 s of SIGTERM; log:\n{self.log()}") from None


def start_server(workdir: Path, *extra: str, env: Mapping[str, str] | None = None) -> ServerProcess:
    """`python -m server` on free loopback ports, data in `workdir/.mirror-data`, plus `extra`."""
    workdir.mkdir(parents=True, exist_ok=True)
    grpc_port, registry_port = free_port(), free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "server",
                "--grpc-address",
                f"127.0.0.1:{grpc_port}",
                "--registry-address",
                f"127.0.0.1:{registry_port}",
                "--data-dir",
                ".mirror-data",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=dict(env) if env is not None else clean_env(),
        )
    server = ServerProcess(
        f"127.0.0.1:{grpc_port}", log_path, proc, workdir, f"127.0.0.1:{registry_port}"
    )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", grpc_port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"the server never listened:\n{server.log()}") from None
            time.sleep(0.05)
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("e2e-server"))
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            assert running.stop() == 0, running.log()


def ctl(
    server: ServerProcess | None,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run mirrorctl (with --server unless `server` is None) and return what it did."""
    program = [str(MIRRORCTL)] if MIRRORCTL.exists() else [PYTHON, "-m", "client"]
    options = ["--server", server.address] if server is not None else []
    return subprocess.run(
        [*program, *options, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(env) if env is not None else clean_env(),
        cwd=server.workdir if server is not None else None,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert result.stderr == "", result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def failed(result: subprocess.CompletedProcess[str], code: str) -> str:
    """The one error line of a failed command, which must name `code`."""
    assert result.returncode == 1, (result.args, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    assert code in lines[0], lines[0]
    return lines[0]


def test_repository_commands(server: ServerProcess) -> None:
    text = ok(ctl(server, "repository", "create", "codzo", "--description", "hello mirror"))
    assert "name: repositories/codzo" in text.splitlines()
    assert "latest_version: repositories/codzo/versions/0" in text.splitlines()

    # -o json: the response message in canonical proto3 JSON, as grpcurl prints it.
    created = as_json(
        ctl(server, "--output", "json", "repository", "create", "e2e-two", "--retain-versions", "2")
    )["repository"]
    assert created["name"] == "repositories/e2e-two"
    assert created["retainVersions"] == 2
    assert created["latestVersion"] == "repositories/e2e-two/versions/0"
    assert "description" not in created  # default values are left out, as grpcurl does
    assert created["uid"] and created["createTime"]

    shown = as_json(ctl(server, "repository", "show", "codzo", "-o", "json"))["repository"]
    assert (shown["name"], shown["description"]) == ("repositories/codzo", "hello mirror")
    assert shown["versions"] == "repositories/codzo"

    listed = as_json(ctl(server, "-o", "json", "repository", "list"))["repositories"]
    names = [r["name"] for r in listed]
    assert "repositories/codzo" in names and "repositories/e2e-two" in names
    assert names == sorted(names)
    table = ok(ctl(server, "repository", "list")).splitlines()
    assert table[0].split() == ["NAME", "LATEST", "RETAIN", "MIRROR", "DESCRIPTION"]
    assert any(line.split()[:4] == ["repositories/e2e-two", "0", "2", "no"] for line in table)

    updated = as_json(
        ctl(server, "-o", "json", "repository", "update", "e2e-two", "--description", "changed")
    )["repository"]
    assert (updated["description"], updated["retainVersions"]) == ("changed", 2)
    assert updated["uid"] == created["uid"]
    assert updated["updateTime"] >= created["updateTime"]

    assert ok(ctl(server, "repository", "delete", "e2e-two")).strip() == (
        "deleted repositories/e2e-two"
    )
    failed(ctl(server, "repo", "show", "e2e-two"), "NOT_FOUND")


def test_remote_commands(server: ServerProcess) -> None:
    created_text = ok(
        ctl(
            server,
            "-o",
            "json",
            "remote",
            "create",
            "e2e-hub",
            "--url",
            "https://registry.example.com",
            "--upstream-name",
            "library/hello-world",
            "--include-tags",
            "1.*,2.*",
            "--policy",
            "on_demand",
            "--username",
            "bob",
            "--password-stdin",
            stdin=SECRET + "\n",
        )
    )
    assert SECRET not in created_text
    created = json.loads(created_text)["remote"]
    assert created["name"] == "remotes/e2e-hub"
    assert created["url"] == "https://registry.example.com"
    assert created["upstreamName"] == "library/hello-world"
    assert created["includeTags"] == ["1.*", "2.*"]
    assert created["policy"] == "POLICY_ON_DEMAND"
    assert (created["username"], created["passwordSet"]) == ("bob", True)
    assert "password" not in created

    shown_text = ok(ctl(server, "remote", "show", "e2e-hub"))
    assert "password: (set)" in shown_text.splitlines()
    assert SECRET not in shown_text
    shown = as_json(ctl(server, "-o", "json", "remote", "show", "remotes/e2e-hub"))
    assert shown == {"remote": created}

    listed = as_json(ctl(server, "-o", "json", "remote", "list"))["remotes"]
    assert [r["name"] for r in listed if r["name"] == "remotes/e2e-hub"] == ["remotes/e2e-hub"]

    updated = as_json(
        ctl(server, "-o", "json", "remote", "update", "e2e-hub", "--exclude-tags", "*-rc*")
    )["remote"]
    assert updated["excludeTags"] == ["*-rc*"]
    assert updated["includeTags"] == ["1.*", "2.*"]
    assert updated["passwordSet"] is True
    assert updated["uid"] == created["uid"]

    assert ok(ctl(server, "remote", "delete", "e2e-hub")).strip() == "deleted remotes/e2e-hub"
    failed(ctl(server, "remote", "show", "e2e-hub"), "NOT_FOUND")


def test_version_and_task_commands(server: ServerProcess) -> None:
    ok(ctl(server, "repository", "create", "e2e-versions"))
    versions = as_json(ctl(server, "-o", "json", "version", "list", "e2e-versions"))["versions"]
    assert [v["name"] for v in versions] == ["repositories/e2e-versions/versions/0"]
    table = ok(ctl(server, "version", "list", "e2e-versions")).splitlines()
    assert table[0].split() == ["NUMBER", "CREATED", "BASE", "ADDED", "REMOVED", "PRESENT"]
    assert table[1].split()[0] == "0"

    latest = as_json(ctl(server, "-o", "json", "version", "show", "e2e-versions", "latest"))
    latest = latest["version"]
    assert latest["name"] == "repositories/e2e-versions/versions/0"
    assert "baseVersion" not in latest
    text = ok(ctl(server, "version", "show", "e2e-versions", "0")).splitlines()
    assert "name: repositories/e2e-versions/versions/0" in text
    assert "content: (none)" in text
    failed(ctl(server, "version", "delete", "e2e-versions", "0"), "FAILED_PRECONDITION")

    # A sync that must fail: an upstream on a port nobody listens on, no retries.
    ok(
        ctl(
            server,
            "remote",
            "create",
            "e2e-dead",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--upstream-name",
            "library/hello-world",
            "--max-retries",
            "0",
        )
    )
    task = as_json(
        ctl(server, "-o", "json", "sync", "e2e-versions", "--remote", "e2e-dead", "--detach")
    )["task"]
    assert task["name"].startswith("tasks/")
    assert task["state"] == "TASK_STATE_QUEUED"
    assert task["parameters"]["repository"] == "repositories/e2e-versions"

    watched = ctl(server, "task", "watch", task["name"].removeprefix("tasks/"))
    assert watched.returncode == 1
    assert watched.stderr.splitlines()[-1].startswith(f"error: {task['name']} failed:")

    mine = as_json(
        ctl(
            server,
            "-o",
            "json",
            "task",
            "list",
            "--state",
            "failed",
            "--repository",
            "e2e-versions",
        )
    )["tasks"]
    assert [t["name"] for t in mine] == [task["name"]]
    assert mine[0]["state"] == "TASK_STATE_FAILED"
    assert mine[0]["error"]["code"] and mine[0]["error"]["reason"]
    table = ok(ctl(server, "task", "list")).splitlines()
    assert table[0].split() == ["NAME", "KIND", "STATE", "CREATED", "PARAMETERS"]
    assert any(line.split()[:3] == [task["name"], "sync", "failed"] for line in table[1:])


def test_errors_are_one_line_on_stderr(server: ServerProcess) -> None:
    line = failed(ctl(server, "repository", "show", "e2e-missing"), "NOT_FOUND")
    assert "REPOSITORY_NOT_FOUND" in line
    line = failed(ctl(server, "repository", "create", "Not_Valid"), "INVALID_ARGUMENT")
    assert "repository_id" in line

    unreachable = ctl(None, "--server", f"127.0.0.1:{free_port()}", "repository", "list")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: cannot reach the mirror server at ")
    assert len(unreachable.stderr.splitlines()) == 1


def test_mirror_server_environment_variable(server: ServerProcess) -> None:
    ok(ctl(server, "repository", "create", "e2e-env"))
    listed = as_json(
        ctl(
            None,
            "-o",
            "json",
            "repository",
            "list",
            env=clean_env(
                MIRROR_SERVER=server.address,
                MIRROR_TOKEN_FILE=str(server.workdir / ".mirror-data" / "admin-token"),
            ),
        )
    )["repositories"]
    assert "repositories/e2e-env" in [r["name"] for r in listed]
    # The variable is really used: pointing it at nothing fails.
    dead = f"127.0.0.1:{free_port()}"
    result = ctl(None, "repository", "list", env=clean_env(MIRROR_SERVER=dead))
    assert result.returncode == 1
    assert dead in result.stderr


def test_sigterm_stops_cleanly_and_every_rpc_is_logged(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    own = start_server(tmp_path_factory.mktemp("e2e-sigterm"))
    try:
        ok(ctl(own, "repository", "create", "logged"))
        ok(ctl(own, "repository", "show", "logged"))
        ctl(own, "repository", "show", "absent")
        ok(
            ctl(
                own,
                "remote",
                "create",
                "logged",
                "--url",
                "https://registry.example.com",
                "--upstream-name",
                "library/hello",
                "--password-stdin",
                stdin=SECRET + "\n",
            )
        )
    finally:
        status = own.stop()
    log = own.log()
    assert status == 0, log
    rpcs = [match.groups() for line in log.splitlines() if (match := RPC_LINE.search(line))]
    assert rpcs == [
        ("/mirror.v1.RepositoryService/CreateRepository", "OK"),
        ("/mirror.v1.RepositoryService/GetRepository", "OK"),
        ("/mirror.v1.RepositoryService/GetRepository", "NOT_FOUND"),
        ("/mirror.v1.RemoteService/CreateRemote", "OK"),
    ], log
    assert SECRET not in log
    assert "Traceback" not in log, log


def run_server(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS` to its end (for start-up failures and --help)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [PYTHON, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
        env=clean_env(),
        check=False,
    )


def test_a_taken_port_is_a_one_line_error(server: ServerProcess, tmp_path: Path) -> None:
    """A second server on a taken port (either one) says so in one line and exits 3; it
    never shares the port (grpc's SO_REUSEPORT is off) nor touches its data directory."""
    ok(ctl(server, "repository", "create", "e2e-first-server"))
    cases = [
        (server.address, f"127.0.0.1:{free_port()}", f"{server.address} for gRPC"),
        (
            f"127.0.0.1:{free_port()}",
            server.registry_address,
            f"{server.registry_address} for the registry",
        ),
    ]
    for grpc_address, registry_address, where in cases:
        data = tmp_path / "second-data"
        result = run_server(
            tmp_path,
            "--grpc-address",
            grpc_address,
            "--registry-address",
            registry_address,
            "--data-dir",
            str(data),
        )
        assert result.returncode == 3, result
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"mirror-server: error: cannot listen on {where}: Address already in use"
        ], result.stderr
        assert not data.exists()
    # Every call still reaches the first server's database.
    for _ in range(5):
        listed = as_json(ctl(server, "-o", "json", "repository", "list"))["repositories"]
        assert "repositories/e2e-first-server" in [r["name"] for r in listed]


def test_server_help_names_every_variable_of_the_readme(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    variables = re.findall(r"^\| `--[a-z-]+` \| `(MIRROR_[A-Z_]+)` \|", section, re.MULTILINE)
    assert len(variables) >= 6, section
    result = run_server(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: mirror-server" in result.stdout
    for variable in variables:
        assert variable in result.stdout, variable


BUF = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "buf"


@pytest.mark.skipif(not BUF.exists(), reason="buf is not installed (npm ci installs it)")
def test_json_output_is_what_buf_curl_prints(server: ServerProcess) -> None:
    """`-o json` is the canonical proto3 JSON: a script can switch to buf curl / grpcurl."""
    ok(ctl(server, "repository", "create", "e2e-json", "--retain-versions", "3"))
    for command, method, body in [
        (
            ["repository", "show", "e2e-json"],
            "RepositoryService/GetRepository",
            {"name": "repositories/e2e-json"},
        ),
        (
            ["version", "show", "e2e-json", "0"],
            "VersionService/GetVersion",
            {"name": "repositories/e2e-json/versions/0"},
        ),
    ]:
        ours = as_json(ctl(server, "-o", "json", *command))
        theirs = subprocess.run(
            [
                str(BUF),
                "curl",
                "--protocol",
                "grpc",
                "--http2-prior-knowledge",
                "--header",
                f"authorization: Bearer {server.admin_token()}",
                "--data",
                json.dumps(body),
                f"http://{server.address}/mirror.v1.{method}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert ours == json.loads(theirs.stdout), method


def test_push_then_content_commands_as_in_the_readme(server: ServerProcess, tmp_path: Path) -> None:
    """Build a repository by pushing with skopeo, copy a tag into another repository, tag,
    untag and roll back with mirrorctl, and pull the result back byte for byte."""
    import shutil

    from tests.e2e.test_push import write_oci_layout
    from tests.support import images as img

    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed")
    image = img.make_image("cli-push", layers=1, media="oci")
    layout = write_oci_layout(tmp_path / "layout", image, "1.0")
    for repo in ("cli-team", "cli-curated"):
        ok(ctl(server, "repository", "create", repo))
    ok(ctl(server, "distribution", "create", "cli-team", "--base-path", "cli/team",
           "--repository", "cli-team"))  # fmt: skip
    ok(ctl(server, "distribution", "create", "cli-curated", "--base-path", "cli/curated",
           "--repository", "cli-curated"))  # fmt: skip
    pushed = subprocess.run(
        [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
         f"--dest-creds=admin:{server.admin_token()}", f"oci:{layout}:1.0",
         f"docker://{server.registry_address}/cli/team:1.0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    shown = as_json(ctl(server, "-o", "json", "version", "show", "cli-team", "latest"))
    assert shown["version"]["source"] == "VERSION_SOURCE_PUSH"

    copied = as_json(
        ctl(server, "-o", "json", "content", "copy", "cli-team", "cli-curated", "--tag", "1.*")
    )
    assert copied["changed"] is True
    assert copied["version"]["name"] == "repositories/cli-curated/versions/1"
    assert copied["version"]["sourceDetail"].startswith(
        "copy tags ['1.*'] from repositories/cli-team"
    )
    ok(ctl(server, "content", "tag", "cli-curated", "stable", image.digest))
    ok(ctl(server, "content", "untag", "cli-curated", "1.0"))
    rolled = as_json(ctl(server, "-o", "json", "version", "rollback", "cli-curated", "1"))
    assert rolled["version"]["name"] == "repositories/cli-curated/versions/4"
    unchanged = ctl(server, "version", "rollback", "cli-curated", "1")
    assert unchanged.returncode == 0 and "nothing changed" in unchanged.stderr
    ok(ctl(server, "repository", "update", "cli-curated", "--mirror", "true"))
    failed(ctl(server, "content", "untag", "cli-curated", "1.0"), "REPOSITORY_IS_MIRROR")

    out = tmp_path / "pulled"
    pulled = subprocess.run(
        [skopeo, "--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false",
         f"--src-creds=admin:{server.admin_token()}",
         f"docker://{server.registry_address}/cli/curated:1.0", f"oci:{out}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    for digest, data in image.blobs.items():
        assert (out / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == data
    assert (out / "blobs" / "sha256" / image.digest.split(":")[1]).read_bytes() == image.manifest


def test_housekeeping_commands(server: ServerProcess) -> None:
    """`mirrorctl gc` and `mirrorctl repair` as the README's Housekeeping section runs them."""
    ok(ctl(server, "repository", "create", "e2e-housekeeping"))
    collected = ok(ctl(server, "gc", "--protection-time", "0", "--task-retention", "7d"))
    lines = collected.splitlines()
    assert lines[-5].startswith("tasks/") and lines[-5].endswith(" completed"), collected
    assert [line.split(":")[0].strip() for line in lines[-4:]] == [
        "gc.content",
        "gc.blobs",
        "gc.temporaries",
        "gc.tasks",
    ]
    task = as_json(ctl(server, "-o", "json", "gc", "--detach"))
    assert task["kind"] == "gc" and task["state"] == "TASK_STATE_QUEUED"
    assert task["parameters"]["orphanProtectionSeconds"] == "3600"
    # An empty version 0 has nothing to re-hash: repair completes with zero counts.
    repaired = ok(ctl(server, "repair", "e2e-housekeeping"))
    assert "repair.verifying: 0 intact, 0 missing or corrupt" in repaired, repaired
    failed(ctl(server, "repair", "e2e-nowhere", "1"), "NOT_FOUND")
    bad = ctl(server, "gc", "--protection-time", "soon")
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
