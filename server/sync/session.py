"""One aiohttp session per sync, shaped by the remote: pool size, TLS, proxy, timeouts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from server.domain.errors import InvalidArgument
from server.domain.resources import Remote
from server.sync.origins import GuardedResolver, NetworkPolicy

DEFAULT_CONNECT_TIMEOUT = 30.0
# aiohttp buffers up to twice this per response before pausing the socket: with 10 downloads in
# flight, 1 MiB held ~20 MiB of buffers at once (peak RSS 159 MiB on the 1 GB sync, target 150).
READ_BUFFER = 256 * 1024


def basic_header(username: str, password: str) -> str:
    """An `Authorization: Basic` value (aiohttp 3.14 deprecates its BasicAuth helper)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


DEFAULT_SOCK_READ_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Keyword arguments for aiohttp requests that go through the remote's proxy."""

    url: str | None
    authorization: str | None  # a Proxy-Authorization value (Basic), never logged

    def kwargs(self, target: str) -> dict[str, object]:
        """aiohttp request arguments for a request to `target` through the proxy.

        The credentials travel in the CONNECT request for https targets (`proxy_headers`), and
        in the request itself for plain http, which goes to the proxy in absolute form.
        """
        if not self.url:
            return {}
        if not self.authorization:
            return {"proxy": self.url}
        auth = {"Proxy-Authorization": self.authorization}
        if target.startswith("https:"):
            return {"proxy": self.url, "proxy_headers": auth}
        return {"proxy": self.url, "extra_headers": auth}


@functools.cache
def _default_context() -> ssl.SSLContext:
    # Loading the system CA bundle takes tens of milliseconds on the event loop: once per
    # process, not once per sync.
    return ssl.create_default_context()


def ssl_context(remote: Remote) -> ssl.SSLContext | bool:
    """TLS settings: CA bundle, client certificate, or no verification."""
    if not remote.ssl_validation and not remote.ssl_client_certificate:
        return False
    if (
        remote.ssl_validation
        and not remote.ssl_ca_certificate
        and not remote.ssl_client_certificate
    ):
        return _default_context()
    context = ssl.create_default_context()
    if not remote.ssl_validation:
        # No server verification, but the client certificate still goes out (mTLS to a
        # self-signed upstream).
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if remote.ssl_ca_certificate:
            context.load_verify_locations(cadata=remote.ssl_ca_certificate)
        if remote.ssl_client_certificate:
            # load_cert_chain only reads files: write the PEMs to private temp files briefly.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
                for path, pem in (
                    (cert, remote.ssl_client_certificate),
                    (key, remote.ssl_client_key),
                ):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "w") as handle:
                        handle.write(pem)
                context.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise InvalidArgument(
            f"the TLS material of {remote.name} cannot be loaded: {exc.__class__.__name__}",
            field="remote.ssl_ca_certificate",
            reason="REMOTE_TLS_INVALID",
            remote=remote.name,
        ) from exc
    return context


@contextlib.asynccontextmanager
async def open_session(
    remote: Remote, policy: NetworkPolicy | None = None
) -> AsyncIterator[tuple[aiohttp.ClientSession, ProxySettings]]:
    """The session of one sync; closed (and its connections with it) when the sync ends.

    With a `policy`, host names resolve only to addresses it allows (see `origins`)."""
    connector = aiohttp.TCPConnector(
        limit=remote.download_concurrency + 2,  # + token and redirect requests
        limit_per_host=remote.download_concurrency + 2,
        # Loading CA bundles reads and parses files: hundreds of milliseconds on a busy
        # machine, off the event loop that serves health checks and pulls.
        ssl=await asyncio.to_thread(ssl_context, remote),
        resolver=None if policy is None else GuardedResolver(policy),
    )
    timeout = aiohttp.ClientTimeout(
        total=remote.total_timeout or None,
        sock_connect=remote.connect_timeout or DEFAULT_CONNECT_TIMEOUT,
        sock_read=remote.sock_read_timeout or DEFAULT_SOCK_READ_TIMEOUT,
    )
    headers: dict[str, str] = {}
    # Hash the raw bytes: transparent decompression changes digests and invites bombs.
    headers["Accept-Encoding"] = "identity"
    headers.setdefault("User-Agent", "mirror/0.1")
    proxy = ProxySettings(
        url=remote.proxy_url or None,
        authorization=basic_header(remote.proxy_username, remote.proxy_password)
        if remote.proxy_username
        else None,
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers=headers,
        auto_decompress=False,
        trust_env=False,
        # Larger reads mean fewer Python-level chunk iterations per gigabyte of layers.
        read_bufsize=READ_BUFFER,
    ) as session:
        yield session, proxy
