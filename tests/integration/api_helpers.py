"""Helpers shared by the API acceptance tests (``test_api_*.py``)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from client import MirrorClientError

DOMAIN = "mirror.v1"


async def fails(
    call: Awaitable[object], code: grpc.StatusCode, reason: str | None = None
) -> MirrorClientError:
    """Await `call`, which must fail with `code` (and `reason`) in the mirror.v1 domain."""
    with pytest.raises(MirrorClientError) as info:
        await call
    err = info.value
    assert err.code is code, str(err)
    assert err.domain == DOMAIN, str(err)
    if reason is not None:
        assert err.reason == reason, str(err)
    return err


def when(ts: Timestamp) -> datetime:
    """A proto Timestamp as an aware datetime (must be set)."""
    assert ts.seconds or ts.nanos, "timestamp unset"
    return ts.ToDatetime(tzinfo=UTC)


def dead_url() -> str:
    """An http URL on a loopback port that refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
