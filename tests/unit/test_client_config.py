"""mirrorctl's configuration file: profiles, precedence, and errors that name the problem."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from client.cli import build_parser, connection, main
from client.config import ConfigError, Profile, config_path, load_profile

CONFIG = """
default_profile = "local"

[profiles.local]
server = "127.0.0.1:50051"

[profiles.prod]
server = "mirror.example.com:50051"
token_file = "prod.token"
ca_file = "ca.pem"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "config.toml").write_text(CONFIG)
    (tmp_path / "mirror" / "prod.token").write_text("s3cret\n")
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_path_follows_xdg_and_mirror_config(tmp_path: Path) -> None:
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/mirror/config.toml")
    assert config_path({}) == Path("~/.config/mirror/config.toml").expanduser()
    assert config_path({"MIRROR_CONFIG": "/etc/m.toml", "XDG_CONFIG_HOME": "/x"}) == Path(
        "/etc/m.toml"
    )


def test_default_profile_and_named_profile(env: dict[str, str], tmp_path: Path) -> None:
    assert load_profile(None, env) == Profile(name="local", server="127.0.0.1:50051")
    prod = load_profile("prod", env)
    assert (prod.server, prod.token) == ("mirror.example.com:50051", "s3cret")
    assert prod.ca_file == tmp_path / "mirror" / "ca.pem"  # relative to the file
    assert load_profile(None, {**env, "MIRROR_PROFILE": "prod"}).name == "prod"


def test_no_file_is_no_profile_unless_one_is_asked_for(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert load_profile(None, env) == Profile()
    with pytest.raises(ConfigError, match="profile 'prod' asked for"):
        load_profile("prod", env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.a]\nserver = 'x:1'\nsevrer = 'y:2'\n", "unknown key\\(s\\) sevrer"),
        ("[profiles.a\n", "not valid TOML"),
        ("[profiles.a]\ntoken = 't'\ntoken_file = 'f'\n", "not both"),
        ("[profiles.a]\nserver = 5\n", "server must be"),
        ("colour = 'blue'\n", "unknown key\\(s\\) colour"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_profile("a", {"MIRROR_CONFIG": str(tmp_path / "c.toml")})


def test_unknown_profile_lists_the_known_ones(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"no profile 'stage' .*profiles: local, prod"):
        load_profile("stage", env)


def test_flag_beats_variable_beats_profile_beats_default(env: dict[str, str]) -> None:
    def server(argv: list[str], extra: dict[str, str]) -> str:
        args: argparse.Namespace = build_parser().parse_args([*argv, "repository", "list"])
        return connection(args, {**env, **extra})[0]

    assert server([], {}) == "127.0.0.1:50051"  # default_profile
    assert server(["--profile", "prod"], {}) == "mirror.example.com:50051"
    assert server(["--profile", "prod"], {"MIRROR_SERVER": "env:1"}) == "env:1"
    assert server(["--profile", "prod", "--server", "flag:2"], {"MIRROR_SERVER": "e:1"}) == (
        "flag:2"
    )
    no_file = {"XDG_CONFIG_HOME": "/nonexistent"}
    args = build_parser().parse_args(["repository", "list"])
    assert connection(args, no_file)[0] == "127.0.0.1:50051"


def test_config_error_is_exit_2(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MIRROR_SERVER", raising=False)
    assert main(["--profile", "nope", "repository", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mirrorctl: error: no profile 'nope'") and err.count("\n") == 1


def _bash_complete(words: list[str]) -> list[str]:
    script = subprocess.run(
        [sys.executable, "-m", "client", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = " ".join(words)
    probe = (
        f"{script}\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
        f"COMP_POINT={len(line)}; _shtab_mirrorctl mirrorctl '{words[-1]}' '{words[-2]}'; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_and_options() -> None:
    assert sorted(_bash_complete(["mirrorctl", "rep"])) == ["repair", "repo", "repository"]
    assert set(_bash_complete(["mirrorctl", "repository", ""])) >= {
        "create",
        "list",
        "show",
        "update",
        "delete",
    }
    assert "--mirror" in _bash_complete(["mirrorctl", "sync", "--mi"])


def test_zsh_completion_is_a_compdef_script() -> None:
    script = subprocess.run(
        [sys.executable, "-m", "client", "completion", "zsh"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert script.startswith("#compdef mirrorctl")
    assert "repository" in script and "--mirror" in script
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", script], check=True)
