"""Server settings (server/config.py parse_settings): flags > MIRROR_* env vars > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings, parse_settings

# (flag, README environment variable, Settings attribute, a value to set, its parsed form)
OPTIONS = [
    ("--grpc-address", "MIRROR_GRPC_ADDRESS", "grpc_address", "0.0.0.0:6000", "0.0.0.0:6000"),
    (
        "--registry-address",
        "MIRROR_REGISTRY_ADDRESS",
        "registry_address",
        "0.0.0.0:6001",
        "0.0.0.0:6001",
    ),
    ("--data-dir", "MIRROR_DATA_DIR", "data_dir", "/srv/mirror", Path("/srv/mirror")),
    (
        "--database-url",
        "MIRROR_DATABASE_URL",
        "database_url",
        "postgresql+asyncpg://u@db/mirror",
        "postgresql+asyncpg://u@db/mirror",
    ),
    ("--workers", "MIRROR_WORKERS", "workers", "8", 8),
    ("--log-level", "MIRROR_LOG_LEVEL", "log_level", "DEBUG", "DEBUG"),
]
IDS = [option[2] for option in OPTIONS]


def test_defaults_match_readme() -> None:
    settings = parse_settings([], env={})
    assert settings.grpc_address == "127.0.0.1:50051"
    assert settings.registry_address == "127.0.0.1:5050"
    assert settings.data_dir == Path("./.mirror-data")
    assert settings.database_url == ""
    assert settings.workers == 4
    assert settings.log_level == "INFO"
    assert settings == Settings()


@pytest.mark.parametrize(("flag", "env", "attr", "value", "parsed"), OPTIONS, ids=IDS)
def test_env_overrides_default(flag: str, env: str, attr: str, value: str, parsed: object) -> None:
    assert getattr(parse_settings([], env={env: value}), attr) == parsed


@pytest.mark.parametrize(("flag", "env", "attr", "value", "parsed"), OPTIONS, ids=IDS)
def test_flag_overrides_default(flag: str, env: str, attr: str, value: str, parsed: object) -> None:
    assert getattr(parse_settings([flag, value], env={}), attr) == parsed


@pytest.mark.parametrize(("flag", "env", "attr", "value", "parsed"), OPTIONS, ids=IDS)
def test_flag_overrides_env(flag: str, env: str, attr: str, value: str, parsed: object) -> None:
    other = "9" if attr == "workers" else "from-env"
    settings = parse_settings([f"{flag}={value}"], env={env: other})
    assert getattr(settings, attr) == parsed


def test_everything_at_once() -> None:
    env = {option[1]: option[3] for option in OPTIONS}
    settings = parse_settings(["--workers", "2", "--grpc-address", "[::]:1"], env=env)
    assert settings.workers == 2
    assert settings.grpc_address == "[::]:1"
    assert settings.registry_address == "0.0.0.0:6001"
    assert settings.data_dir == Path("/srv/mirror")


def test_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_GRPC_ADDRESS", "127.0.0.1:7777")
    monkeypatch.setenv("MIRROR_WORKERS", "3")
    settings = parse_settings([])
    assert settings.grpc_address == "127.0.0.1:7777"
    assert settings.workers == 3


def test_unrelated_env_is_ignored() -> None:
    assert parse_settings([], env={"GRPC_ADDRESS": "x", "MIRROR_OTHER": "y"}) == Settings()


def test_log_level_is_upper_cased() -> None:
    assert parse_settings(["--log-level", "debug"], env={}).log_level == "DEBUG"
    assert parse_settings([], env={"MIRROR_LOG_LEVEL": "warning"}).log_level == "WARNING"


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--workers", "-1"], ["--workers", "x"]])
def test_bad_workers_flag_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_settings(argv, env={})
    assert info.value.code == 2


def test_zero_workers_from_env_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse_settings([], env={"MIRROR_WORKERS": "0"})


@pytest.mark.parametrize("argv", [[], ["--workers", "2"]])
def test_bad_workers_env_is_a_usage_error_or_overridden(argv: list[str]) -> None:
    try:
        settings = parse_settings(argv, env={"MIRROR_WORKERS": "four"})
    except SystemExit:
        assert not argv  # a usage error is fine when no flag overrides the env var
    else:
        assert argv and settings.workers == 2


def test_unknown_flag_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--nope"], env={})


def test_effective_database_url_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = parse_settings(["--data-dir", str(tmp_path)], env={})
    expected = f"sqlite+aiosqlite:///{(tmp_path / 'mirror.db').resolve()}"
    assert settings.effective_database_url == expected
    assert expected.startswith("sqlite+aiosqlite:////")  # absolute path


def test_effective_database_url_relative_data_dir_is_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = parse_settings([], env={"MIRROR_DATA_DIR": "rel"})
    assert settings.effective_database_url == (
        f"sqlite+aiosqlite:///{(tmp_path / 'rel' / 'mirror.db').resolve()}"
    )


def test_effective_database_url_prefers_explicit_url() -> None:
    url = "postgresql+asyncpg://u@db/mirror"
    settings = parse_settings([], env={"MIRROR_DATABASE_URL": url, "MIRROR_DATA_DIR": "/x"})
    assert settings.effective_database_url == url
