"""The README's shell sessions, run as written and in order, against a real server process
and a local registry standing in for Docker Hub (the only substitutions: its URL, and the
server's own addresses, which the test picks free). Each command must succeed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import ServerProcess, clean_env, start_server
from tests.support import images as img
from tests.support.registry import RegistryProcess

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SESSIONS = (
    "A session with the CLI",
    "The full loop: mirror, publish, pull",
    "Clients in other languages: Node.js",
    "A session with grpcurl",
)
DOCKER_HUB = "https://registry-1.docker.io"


def sh_blocks(section: str) -> list[str]:
    """The commands of the ```sh blocks of one README section, continuations joined."""
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.DOTALL):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # a quoted argument goes on on the next line
                continue
            commands.append(pending)
            pending = ""
        assert not pending, pending
    return commands


def expand(text: str, env: dict[str, str], cwd: Path) -> str:
    """`$(cat FILE)`, then $NAME and ${NAME} from `env`, as the shell would."""
    text = re.sub(r"\$\(cat ([^)\s]+)\)", lambda m: (cwd / m.group(1)).read_text().strip(), text)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), text)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("readme-server"))
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            assert running.stop() == 0, running.log()


@pytest.mark.registry
@pytest.mark.skopeo
def test_readme_sessions_run_in_order(
    server: ServerProcess, upstream_registry: RegistryProcess, tmp_path: Path
) -> None:
    # Docker Hub's library/hello-world, in small: tags for '1.*' and for 'latest'.
    for tag in ("1.0", "1.1", "latest"):
        image = img.make_image(f"readme-{tag}", layers=1, layer_size=2048)
        img.push_image_sync(upstream_registry.url, "library/hello-world", tag, image)
    # The sessions run where the server runs (its ./.mirror-data holds the admin token the
    # README's commands use), with what the Node session loads; skopeo writes oci:hello there.
    workdir = server.workdir
    shutil.copytree(ROOT / "protos", workdir / "protos", ignore=shutil.ignore_patterns("*.py*"))
    shutil.copytree(
        ROOT / "examples", workdir / "examples", ignore=shutil.ignore_patterns("node_modules")
    )
    env = clean_env(PWD=str(ROOT))  # "from the checkout": $PWD/.venv/bin holds mirrorctl
    env["PATH"] = os.defpath if "PATH" not in env else env["PATH"]
    substitutions = {
        DOCKER_HUB: upstream_registry.url,
        "127.0.0.1:50051": server.address,
    }
    ran: list[str] = []
    skipped: list[str] = []
    for section in SESSIONS:
        for command in sh_blocks(section):
            # The registry endpoint also stands alone (`skopeo login ... 127.0.0.1:5050`).
            command = re.sub(r"127\.0\.0\.1:5050(?![0-9])", server.registry_address, command)
            for old, new in substitutions.items():
                command = command.replace(old, new)
            words = shlex.split(command, comments=True)
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                env[name] = expand(value, env, workdir)
                continue
            words = [words[0], *(expand(w, env, workdir) for w in words[1:])]
            program = shutil.which(words[0], path=env["PATH"])
            if program is None and words[0] in ("podman", "grpcurl"):
                skipped.append(command)  # optional tools the README names
                continue
            assert program is not None, f"{words[0]} is not on the README's PATH: {command}"
            if words[0] == "npm" and shutil.which("node") is None:
                skipped.append(command)
                continue
            result = subprocess.run(
                [program, *words[1:]],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            ran.append(command)
            if words[:2] == ["mirrorctl", "sync"]:
                # Each session syncs into its own repository: nothing is removed, so no note.
                assert "removed" not in result.stderr, (command, result.stderr)
                assert "created repositories/" in result.stdout, (command, result.stdout)
    # mirrorctl came from the PATH line, as the README says.
    assert Path(shutil.which("mirrorctl", path=env["PATH"]) or "").parent == ROOT / ".venv" / "bin"
    assert sum(c.startswith("mirrorctl") for c in ran) >= 12, ran
    assert any(c.startswith("skopeo copy") for c in ran), ran
    # The first session's content survived the second session's --mirror sync.
    listed = subprocess.run(
        ["mirrorctl", "-o", "json", "content", "list", "codzo", "--type", "tag"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    tags = {c["tag"]["name"] for c in __import__("json").loads(listed.stdout)["content"]}
    assert tags == {"1.0", "1.1"}, tags
    oci = workdir / "hello" / "index.json"
    assert oci.exists(), "skopeo wrote no OCI layout"
