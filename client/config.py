"""``mirrorctl``'s configuration file: named profiles of where and how to connect.

The file is TOML (read with the standard ``tomllib``), by default
``$XDG_CONFIG_HOME/mirror/config.toml`` (``~/.config/mirror/config.toml``), or the path in
``MIRROR_CONFIG``::

    default_profile = "local"

    [profiles.local]
    server = "127.0.0.1:50051"

    [profiles.prod]
    server = "mirror.example.com:50051"
    token_file = "~/.config/mirror/prod.token"   # or: token = "..."
    ca_file = "/etc/ssl/certs/mirror-ca.pem"     # TLS, verified against this CA

A profile is chosen by ``--profile`` or ``MIRROR_PROFILE``, else ``default_profile``; with
none, no profile applies. Flags and their variables (``--server``/``MIRROR_SERVER``, ...)
win over the profile's keys, which win over the built-in defaults. Unknown keys are errors
(a typo must not silently connect elsewhere); a missing file is no error unless a profile
was asked for.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConfigError", "Profile", "config_path", "load_profile"]

_KEYS = ("server", "token", "token_file", "ca_file")


class ConfigError(Exception):
    """The configuration file, or the profile asked for, cannot be used."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What one profile says; ``None`` where it says nothing."""

    name: str = ""
    """The profile's name; empty when no profile applies."""
    server: str | None = None
    """``host:port`` of the server."""
    token: str | None = None
    """A bearer token for the server (``token``, or read from ``token_file``)."""
    ca_file: Path | None = None
    """PEM CA bundle: connect with TLS and verify the server against it."""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the configuration file is: ``MIRROR_CONFIG``, else the XDG location."""
    env = os.environ if env is None else env
    if explicit := env.get("MIRROR_CONFIG"):
        return Path(explicit).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "mirror" / "config.toml"


def _path(value: object, key: str, where: str, relative_to: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else relative_to / path


def load_profile(name: str | None, env: Mapping[str, str] | None = None) -> Profile:
    """The profile `name` (or ``MIRROR_PROFILE``, or the file's ``default_profile``).

    Raises:
        ConfigError: unreadable or malformed file, unknown profile or key, bad value.
    """
    env = os.environ if env is None else env
    name = name or env.get("MIRROR_PROFILE") or None
    path = config_path(env)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if name:
            raise ConfigError(f"profile {name!r} asked for, but {path} does not exist") from None
        return Profile()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: [profiles] must be a table of tables")
    unknown_top = sorted(set(data) - {"default_profile", "profiles"})
    if unknown_top:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown_top)}")
    name = name or data.get("default_profile") or None
    if not name:
        return Profile()
    table = profiles.get(name)
    if not isinstance(table, dict):
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})")
    where = f"{path} [profiles.{name}]"
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {_KEYS}")
    if "token" in table and "token_file" in table:
        raise ConfigError(f"{where}: set token or token_file, not both")
    server = table.get("server")
    if server is not None and (not isinstance(server, str) or not server):
        raise ConfigError(f"{where}: server must be a non-empty host:port string")
    token = table.get("token")
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError(f"{where}: token must be a non-empty string")
    if "token_file" in table:
        token_path = _path(table["token_file"], "token_file", where, path.parent)
        try:
            token = token_path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read token_file: {exc}") from None
    ca_file = None
    if "ca_file" in table:
        ca_file = _path(table["ca_file"], "ca_file", where, path.parent)
    return Profile(name=name, server=server, token=token, ca_file=ca_file)
