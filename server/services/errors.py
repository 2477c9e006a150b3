"""Domain errors -> `google.rpc.Status` with ErrorInfo (+ BadRequest, RetryInfo) at the RPC edge."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.domain.errors import (
    FieldViolation,
    InvalidArgument,
    MirrorError,
    Rule,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

# AIP-193: the fixed domain of every ErrorInfo this service sends.
ERROR_DOMAIN = "mirror.v1"

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(exc: MirrorError) -> grpc.Status:
    """The rich status for a domain error."""
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=exc.reason, domain=ERROR_DOMAIN, metadata=dict(exc.metadata)
            )
        )
    ]
    if isinstance(exc, InvalidArgument) and exc.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.reason
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    if isinstance(exc, UpstreamUnavailable) and exc.retry_after and math.isfinite(exc.retry_after):
        seconds = max(0.0, exc.retry_after)
        details.append(
            _pack(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(
                        seconds=int(seconds), nanos=int(math.modf(seconds)[0] * 1e9)
                    )
                )
            )
        )
    code = getattr(code_pb2, exc.code, code_pb2.INTERNAL)
    return rpc_status.to_status(status_pb2.Status(code=code, message=exc.message, details=details))


def internal_status() -> grpc.Status:
    """What a caller sees for a bug: a generic message, never internals."""
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message="internal error; the server log has the details",
            details=[
                _pack(error_details_pb2.ErrorInfo(reason="INTERNAL_ERROR", domain=ERROR_DOMAIN))
            ],
        )
    )


def _nul_fields(message: Message, prefix: str = "") -> list[str]:
    """Paths of string fields holding a NUL character (PostgreSQL text cannot store one)."""
    found: list[str] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        values = (
            value.values()
            if field.message_type and field.message_type.GetOptions().map_entry
            else (value if field.is_repeated else [value])
        )
        for item in values:
            if isinstance(item, str) and "\x00" in item:
                found.append(path)
            elif isinstance(item, Message):
                found += _nul_fields(item, f"{path}.")
        if field.message_type and field.message_type.GetOptions().map_entry:
            found += [path for key in value if "\x00" in key]
    return found


def check_request_text(request: object) -> None:
    """No request may carry NUL characters in its text: reject them as bad input."""
    if isinstance(request, Message) and (fields := _nul_fields(request)):
        raise InvalidArgument.of(
            [
                FieldViolation(f, "must not contain NUL characters", Rule.INVALID_TEXT)
                for f in dict.fromkeys(fields)
            ]
        )


def unary_errors(
    method: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    """Map domain errors of a unary method to rich statuses; anything else to INTERNAL."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            check_request_text(request)
            return await method(self, request, context)
        except MirrorError as exc:
            await context.abort_with_status(to_status(exc))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error in %s", method.__qualname__)
            await context.abort_with_status(internal_status())
        raise AssertionError("unreachable: abort_with_status raises")

    return wrapper


def stream_errors(
    method: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    """The same mapping for server-streaming methods."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Resp]:
        try:
            check_request_text(request)
            async for response in method(self, request, context):
                yield response
        except MirrorError as exc:
            await context.abort_with_status(to_status(exc))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error in %s", method.__qualname__)
            await context.abort_with_status(internal_status())

    return wrapper
