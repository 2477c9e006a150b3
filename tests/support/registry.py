"""Launch a real CNCF distribution registry (Debian's ``docker-registry``) for tests.

:class:`RegistryProcess` writes a ``config.yml`` into a private temp dir, starts
``/usr/bin/docker-registry serve config.yml`` on a free loopback port and waits until
``GET /v2/`` answers. It can be stopped and started again on the same port with the
same data (to prove a mirror serves content without its upstream), and it supports
three auth modes:

* ``"none"``: anonymous read/write.
* ``"htpasswd"``: Basic auth against a bcrypt htpasswd file generated from ``users``
  (needs the ``bcrypt`` package, a test-only dependency).
* ``"token"``: Docker token auth; the realm is a :class:`~tests.support.tokens.TokenIssuer`
  (started and owned by the registry unless one is passed in) whose self-signed
  certificate is the registry's ``rootcertbundle``.

Usable both as ``async with RegistryProcess() as reg:`` and synchronously via
``start()`` / ``stop()`` / ``close()`` (or ``with RegistryProcess() as reg:``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from tests.support.tokens import TokenIssuer

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "REGISTRY_BINARY",
    "AuthMode",
    "RegistryError",
    "RegistryProcess",
    "free_port",
    "registry_available",
    "write_htpasswd",
]

REGISTRY_BINARY = "/usr/bin/docker-registry"
"""Where Debian's ``docker-registry`` package installs the distribution v2 binary."""

DEFAULT_USER = "mirror"
"""User name configured when ``users`` is not given for an auth-enabled registry."""

DEFAULT_PASSWORD = "mirror-secret"
"""Password of :data:`DEFAULT_USER`."""

AuthMode = Literal["none", "htpasswd", "token"]


class RegistryError(RuntimeError):
    """The registry process could not be started (the message includes its log tail)."""


def registry_available(binary: str = REGISTRY_BINARY) -> bool:
    """Return True when the distribution registry binary exists and is executable."""
    return os.access(binary, os.X_OK)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (bind to port 0, then close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_htpasswd(path: Path, users: Mapping[str, str], rounds: int = 5) -> None:
    """Write an Apache htpasswd file with bcrypt (``$2y$``) hashes, the only kind
    distribution accepts. ``rounds`` is kept low (bcrypt cost 5) so tests stay fast."""
    import bcrypt  # test-only dependency

    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
        lines.append(f"{user}:{hashed.replace('$2b$', '$2y$', 1)}\n")
    path.write_text("".join(lines))


def _yaml(value: Any, indent: int = 0) -> str:
    """Render nested dicts/lists of scalars as block YAML (strings JSON-quoted)."""
    pad = "  " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping | list) and item:
                out.append(f"{pad}{key}:\n{_yaml(item, indent + 1)}")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping | list) and item:
                body = _yaml(item, indent + 1).lstrip()
                out.append(f"{pad}- {body}")
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
    return "".join(out)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value))


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


class RegistryProcess:
    """A real ``docker-registry`` on ``127.0.0.1:<free port>`` with its data in a temp dir.

    Attributes after construction: ``port``, ``url`` (``http://127.0.0.1:PORT``), ``host``
    (``127.0.0.1:PORT``), ``workdir``, ``data_dir`` (the storage root), ``config_path``,
    ``users`` and ``issuer`` (token mode). ``credentials`` is the first user's
    ``(user, password)`` or None in ``auth="none"`` mode.

    ``stop()`` ends the process but keeps port and data so ``start()`` brings the same
    registry back; ``close()`` (and leaving a ``with``/``async with`` block) also deletes
    the data and stops an issuer the registry started itself.
    """

    def __init__(
        self,
        auth: AuthMode = "none",
        *,
        users: Mapping[str, str] | None = None,
        issuer: TokenIssuer | None = None,
        allow_anonymous: bool = False,
        service: str = "mirror-test-registry",
        port: int | None = None,
        binary: str = REGISTRY_BINARY,
        extra_config: Mapping[str, Any] | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        """Prepare (but do not start) a registry.

        ``users`` defaults to ``{DEFAULT_USER: DEFAULT_PASSWORD}`` for auth modes.
        In token mode ``issuer`` may be an existing :class:`TokenIssuer` (the caller starts
        and stops it); otherwise one is created with ``users``, ``service`` and
        ``allow_anonymous`` and started/stopped along with the registry.
        ``extra_config`` is deep-merged into the generated configuration.
        """
        if auth not in ("none", "htpasswd", "token"):
            raise ValueError(f"unknown auth mode {auth!r}")
        self.auth: AuthMode = auth
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.users: dict[str, str] = (
            dict(users) if users is not None else {DEFAULT_USER: DEFAULT_PASSWORD}
        )
        self._auto_port = port is None
        self._started_once = False
        self.port = port if port is not None else free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="mirror-registry-"))
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir()
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self._extra_config = dict(extra_config or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._closed = False
        self._owns_issuer = False
        self.issuer: TokenIssuer | None = None
        if auth == "token":
            if issuer is None:
                issuer = TokenIssuer(self.users, service=service, allow_anonymous=allow_anonymous)
                self._owns_issuer = True
            self.issuer = issuer
        self._write_config()
        atexit.register(self._atexit)

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry host as used in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """The first configured ``(user, password)``, or None when auth is ``"none"``."""
        if self.auth == "none" or not self.users:
            return None
        return next(iter(self.users.items()))

    @property
    def running(self) -> bool:
        """True while the registry process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the running registry process, if any."""
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ config
    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
                "maintenance": {
                    "uploadpurging": {"enabled": False},
                    "readonly": {"enabled": False},
                },
            },
            "http": {
                "addr": f"127.0.0.1:{self.port}",
                "secret": "mirror-tests-not-a-secret",
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.auth == "htpasswd":
            htpasswd = self.workdir / "htpasswd"
            write_htpasswd(htpasswd, self.users)
            config["auth"] = {"htpasswd": {"realm": "mirror-test", "path": str(htpasswd)}}
        elif self.auth == "token":
            assert self.issuer is not None
            bundle = self.workdir / "token-root.pem"
            bundle.write_bytes(self.issuer.cert_pem)
            config["auth"] = {
                "token": {
                    "realm": self.issuer.realm,
                    "service": self.issuer.service,
                    "issuer": self.issuer.issuer,
                    "rootcertbundle": str(bundle),
                }
            }
        return _deep_merge(config, self._extra_config)

    def _write_config(self) -> None:
        self.config_path.write_text(_yaml(self._config()))

    # ------------------------------------------------------------------ sync API
    def start(self) -> Self:
        """Start the registry (same port and data as before) and wait until ``/v2/`` answers.

        In token mode with an owned issuer, the issuer is started in a background thread
        (use ``async with`` / :meth:`astart` to run it on the current event loop instead).
        """
        if self._closed:
            raise RegistryError("registry was closed; create a new RegistryProcess")
        if self.running:
            return self
        if self._owns_issuer and self.issuer is not None and not self.issuer.running:
            self.issuer.start()
        for attempt in range(3):
            try:
                self._spawn_and_wait()
            except RegistryError as exc:
                # A port picked by free_port() can be taken by someone else before the
                # registry binds it: pick another one, but only before the first start.
                if (
                    self._auto_port
                    and not self._started_once
                    and attempt < 2
                    and "address already in use" in str(exc)
                ):
                    self.port = free_port()
                    self._write_config()
                    continue
                raise
            break
        self._started_once = True
        return self

    def _spawn_and_wait(self) -> None:
        self._spawn()
        deadline = time.monotonic() + self.startup_timeout
        while not self._probe():
            self._check_alive()
            if time.monotonic() > deadline:
                self._kill()
                raise RegistryError(f"registry did not answer on {self.url}/v2/\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the registry process; port, configuration and stored data are kept."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> Self:
        """``stop()`` then ``start()``."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the registry (and an owned token issuer) and delete the temp dir."""
        if self._closed:
            return
        self.stop()
        if self._owns_issuer and self.issuer is not None and self.issuer.running:
            self.issuer.stop()
        self._closed = True
        atexit.unregister(self._atexit)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ async API
    async def astart(self) -> Self:
        """Async :meth:`start`: an owned token issuer runs on the current event loop."""
        if self._owns_issuer and self.issuer is not None and not self.issuer.running:
            await self.issuer.astart()
        await asyncio.to_thread(self.start)
        return self

    async def astop(self) -> None:
        """Async :meth:`stop` (the process is stopped in a worker thread)."""
        await asyncio.to_thread(self.stop)

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.astop()
        if self._owns_issuer and self.issuer is not None and self.issuer.running:
            await self.issuer.astop()
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Self:
        try:
            return await self.astart()
        except BaseException:
            await self.aclose()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ helpers
    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the registry's stderr/stdout log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._log_file = open(self.log_path, "ab")  # closed in stop()
        self._proc = subprocess.Popen(
            [self.binary, "serve", str(self.config_path)],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            self.stop()
            raise RegistryError(f"registry exited with {code}\n{self.log_tail()}")

    def _probe(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as err:
            err.close()
            return err.code in (200, 401)
        except OSError:
            return False

    def _kill(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=2)

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=2)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RegistryProcess {self.url} auth={self.auth} {state}>"
