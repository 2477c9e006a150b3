"""The one exception type of the client, decoded from the server's rich gRPC status.

The server answers every failure with a ``google.rpc.Status`` carried in the
``grpc-status-details-bin`` trailer: one ``ErrorInfo`` (domain ``mirror.v1``) and, for bad
input, a ``BadRequest``; sometimes a ``RetryInfo``. :class:`MirrorClientError` exposes those
pieces as plain attributes and renders them as one readable line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = ["STATUS_DETAILS_KEY", "FieldViolation", "MirrorClientError", "decode_status"]

#: Trailing-metadata key that carries the serialized ``google.rpc.Status``.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def decode_status(trailing_metadata: Iterable[tuple[str, Any]] | None) -> status_pb2.Status | None:
    """Return the ``google.rpc.Status`` found in ``trailing_metadata``, or ``None``.

    Unlike ``grpc_status.rpc_status.from_call`` this never raises: a missing or garbled
    trailer just yields ``None`` so that the plain gRPC code and details still surface.
    """
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY:
            continue
        try:
            return status_pb2.Status.FromString(
                value if isinstance(value, bytes) else value.encode()
            )
        except DecodeError:
            return None
    return None


def _mentions(text: str, value: str) -> bool:
    """Whether `text` already shows `value`: quoted, or (when long enough to be unique) as is."""
    return any(q in text for q in (f"'{value}'", f'"{value}"')) or (
        len(value) >= 8 and value in text
    )


class FieldViolation(NamedTuple):
    """One bad field of a request, from ``BadRequest``: path, what is wrong, rule broken."""

    field: str
    description: str
    reason: str = ""


def _one_line(text: str) -> str:
    """Collapse whitespace runs (newlines included) into single spaces."""
    return " ".join(text.split())


class MirrorClientError(Exception):
    """A failed call to the mirror service.

    Attributes:
        code: The gRPC status code.
        message: The developer-facing message (the status details).
        reason: ``ErrorInfo.reason`` (UPPER_SNAKE), or ``""`` without a rich status.
        domain: ``ErrorInfo.domain`` (``mirror.v1`` for the service's own errors).
        metadata: ``ErrorInfo.metadata``: every dynamic value in the message.
        field_violations: ``(field, description)`` pairs from ``BadRequest``.
        violations: The same as :class:`FieldViolation` triples, with the rule (``reason``)
            each field broke, e.g. ``INVALID_RESOURCE_ID``.
        retry_delay: Seconds to wait before retrying (``RetryInfo``), or ``None``.
        status: The decoded ``google.rpc.Status``, or ``None`` when the server sent none.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Iterable[tuple[str, str] | FieldViolation] = (),
        retry_delay: float | None = None,
        status: status_pb2.Status | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.violations = [FieldViolation(*v) for v in field_violations]
        self.field_violations: list[tuple[str, str]] = [
            (v.field, v.description) for v in self.violations
        ]
        self.retry_delay = retry_delay
        self.status = status
        super().__init__(str(self))

    @classmethod
    def from_status(
        cls,
        code: grpc.StatusCode,
        message: str,
        status: status_pb2.Status | None,
    ) -> MirrorClientError:
        """Build the error from a gRPC code, its details and an optional rich status."""
        reason = domain = ""
        metadata: dict[str, str] = {}
        violations: list[FieldViolation] = []
        retry_delay: float | None = None
        if status is not None:
            code = _CODES_BY_NUMBER.get(status.code, code)
            message = status.message or message
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, domain = info.reason, info.domain
                    metadata.update(info.metadata)
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations.extend(
                        FieldViolation(v.field, v.description, v.reason)
                        for v in bad.field_violations
                    )
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
        return cls(
            code,
            message,
            reason=reason,
            domain=domain,
            metadata=metadata,
            field_violations=violations,
            retry_delay=retry_delay,
            status=status,
        )

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> MirrorClientError:
        """Decode a ``grpc.RpcError`` (sync) or ``grpc.aio.AioRpcError`` (asyncio).

        Both expose ``code()``, ``details()`` and ``trailing_metadata()`` synchronously
        once the call has failed.
        """
        code_fn = getattr(error, "code", None)
        details_fn = getattr(error, "details", None)
        trailers_fn = getattr(error, "trailing_metadata", None)
        code = code_fn() if callable(code_fn) else None
        details = details_fn() if callable(details_fn) else None
        trailers = trailers_fn() if callable(trailers_fn) else None
        return cls.from_status(
            code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
            details or "",
            decode_status(trailers),
        )

    @property
    def is_connection_error(self) -> bool:
        """Whether the server could not be reached at all (UNAVAILABLE without ErrorInfo)."""
        return self.code is grpc.StatusCode.UNAVAILABLE and not self.reason

    def __str__(self) -> str:
        """One line, each fact once: ``CODE: message [reason=R k=v] (field f: description; ...)``.

        The server's message for bad input is the list of violations; it is then left out,
        and so is any metadata value the line already shows, so nothing prints twice. A
        violation whose rule differs from the overall reason names it, e.g. ``(INVALID_URL)``.
        """
        violations = [
            f"field {v.field}: {_one_line(v.description)}"
            + (f" ({v.reason})" if v.reason and v.reason != self.reason else "")
            for v in self.violations
        ]
        message = _one_line(self.message)
        if self.violations and all(_one_line(v.description) in message for v in self.violations):
            message = ""  # the message only repeats the violations
        head = f"{self.code.name}: {message}" if message else self.code.name
        if not message and not violations:
            head += ": (no message)"
        shown = " ".join([message, *violations])
        tags = [f"reason={self.reason}"] if self.reason else []
        tags += [
            f"{key}={_one_line(value)}"
            for key, value in sorted(self.metadata.items())
            if not _mentions(shown, _one_line(value))
        ]
        parts = [head]
        if tags:
            parts.append(f"[{' '.join(tags)}]")
        if violations:
            parts.append(f"({'; '.join(violations)})")
        if self.retry_delay is not None:
            parts.append(f"(retry in {self.retry_delay:g}s)")
        return " ".join(parts)

    def __repr__(self) -> str:
        """A debugging representation with the code and reason."""
        return f"MirrorClientError({self.code.name}, {self.message!r}, reason={self.reason!r})"
