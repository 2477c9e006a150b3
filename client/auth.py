"""Credentials of the clients: the API token (sent as ``authorization: Bearer`` metadata on
every call) and TLS channel credentials (a CA file, optionally a client certificate).

``mirrorctl`` finds its token in this order: ``--token``, ``MIRROR_TOKEN``,
``MIRROR_TOKEN_FILE``, the profile's ``token``/``token_file``, then
``./.mirror-data/admin-token`` (the file the server writes on first start), so the README's
sessions run unchanged from the project directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import grpc.aio

__all__ = [
    "DEFAULT_TOKEN_FILE",
    "aio_interceptors",
    "channel_credentials",
    "read_token_file",
    "resolve_token",
    "sync_interceptor",
]

#: Where the server writes the admin token on first start (relative to its working dir).
DEFAULT_TOKEN_FILE = Path(".mirror-data") / "admin-token"


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace stripped)."""
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


def resolve_token(
    flag: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    profile_token: str | None = None,
) -> str | None:
    """The token to use: ``flag``, ``MIRROR_TOKEN``, ``MIRROR_TOKEN_FILE``, the profile's
    (mirrorctl's configuration file), then ``./.mirror-data/admin-token`` if it exists; None
    when there is none."""
    env = os.environ if env is None else env
    if flag:
        return flag.strip()
    if env.get("MIRROR_TOKEN"):
        return env["MIRROR_TOKEN"].strip()
    if env.get("MIRROR_TOKEN_FILE"):
        return read_token_file(Path(env["MIRROR_TOKEN_FILE"]))
    if profile_token:
        return profile_token
    default = (cwd or Path.cwd()) / DEFAULT_TOKEN_FILE
    if default.is_file():
        return read_token_file(default)
    return None


def channel_credentials(
    ca_file: Path | str | None,
    client_cert: Path | str | None = None,
    client_key: Path | str | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials trusting ``ca_file`` (with a client certificate for mTLS); None
    (plaintext) when no file is given."""
    if not (ca_file or client_cert):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        private_key=Path(client_key).read_bytes() if client_key else None,
        certificate_chain=Path(client_cert).read_bytes() if client_cert else None,
    )


def _bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


def _aio_details(pair: tuple[str, str], details: Any) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(tuple(details.metadata or ())))
    metadata.add(*pair)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# grpc.aio files each interceptor under the first kind it is an instance of, so unary and
# streaming calls need one object each.
class _AioUnaryBearer(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._pair = _bearer(token)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_aio_details(self._pair, details), request)


class _AioStreamBearer(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._pair = _bearer(token)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_aio_details(self._pair, details), request)


def aio_interceptors(token: str | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding the token to every call of a ``grpc.aio`` channel (for
    ``grpc.aio.insecure_channel(..., interceptors=...)``); none without a token."""
    return [_AioUnaryBearer(token), _AioStreamBearer(token)] if token else []


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _SyncBearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the token to every call of a blocking channel."""

    def __init__(self, token: str) -> None:
        self._pair = _bearer(token)

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._pair]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


class _CallDetails(_Details, grpc.ClientCallDetails):
    """grpc wants a ClientCallDetails instance; a named tuple gives it the fields."""


def sync_interceptor(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """``channel`` sending the token with every call (unchanged without a token)."""
    return grpc.intercept_channel(channel, _SyncBearer(token)) if token else channel
