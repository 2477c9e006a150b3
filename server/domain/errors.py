"""The error tree every layer raises; mapped to gRPC codes in `server/services/errors.py`.

```
MirrorError(reason, metadata)
  NotFound                 -> NOT_FOUND
  AlreadyExists            -> ALREADY_EXISTS
  InvalidArgument(fields)  -> INVALID_ARGUMENT     (with BadRequest field violations)
  FailedPrecondition       -> FAILED_PRECONDITION  (state forbids the call)
  Unauthenticated          -> UNAUTHENTICATED      (no valid credentials)
  PermissionDenied         -> PERMISSION_DENIED    (a known caller without the role)
  UpstreamError(host)
    UpstreamUnavailable    -> UNAVAILABLE          (429, 5xx, resets, timeouts; retryable)
    UpstreamAuthError      -> UNAUTHENTICATED      (401/403 after the token dance)
    UpstreamRejected       -> FAILED_PRECONDITION  (other 4xx, e.g. MANIFEST_UNKNOWN)
    UpstreamProtocolError  -> FAILED_PRECONDITION  (malformed or oversized answers)
    DigestMismatch         -> DATA_LOSS
```

`reason` is a stable UPPER_SNAKE string (AIP-193); `metadata` carries every dynamic value that
appears in the message, under lowerCamel keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. `remote.url`) and what is wrong."""

    field: str
    description: str


class MirrorError(Exception):
    """Base of every error the server reports to a caller."""

    reason = "MIRROR_ERROR"
    code = "INTERNAL"  # canonical gRPC code name

    def __init__(self, message: str, *, reason: str | None = None, **metadata: object) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = {k: str(v) for k, v in metadata.items() if v is not None}


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order; `[exc]` for a plain one."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    return [leaf for inner in exc.exceptions for leaf in leaves(inner)]


class NotFound(MirrorError):
    """The named resource does not exist."""

    reason = "NOT_FOUND"
    code = "NOT_FOUND"


class AlreadyExists(MirrorError):
    """A resource with that name (or unique key) exists already."""

    reason = "ALREADY_EXISTS"
    code = "ALREADY_EXISTS"


class InvalidArgument(MirrorError):
    """The request is malformed; `violations` names each offending field."""

    reason = "INVALID_ARGUMENT"
    code = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        violations: list[FieldViolation] | None = None,
        reason: str | None = None,
        **metadata: object,
    ) -> None:
        super().__init__(message, reason=reason, **metadata)
        found = list(violations or [])
        if field is not None:
            found.insert(0, FieldViolation(field, message))
        self.violations = found

    @classmethod
    def of(cls, violations: list[FieldViolation]) -> InvalidArgument:
        """One error carrying several violations; the message lists them all."""
        text = "; ".join(f"{v.field}: {v.description}" for v in violations)
        return cls(text, violations=violations)


class FailedPrecondition(MirrorError):
    """The resource's state forbids the call (e.g. deleting the latest version)."""

    reason = "FAILED_PRECONDITION"
    code = "FAILED_PRECONDITION"


class Unauthenticated(MirrorError):
    """The call carries no valid credentials (missing, unknown, expired or revoked)."""

    reason = "UNAUTHENTICATED"
    code = "UNAUTHENTICATED"


class PermissionDenied(MirrorError):
    """The caller is known but its role does not allow the call."""

    reason = "PERMISSION_DENIED"
    code = "PERMISSION_DENIED"


class UpstreamError(MirrorError):
    """The upstream registry failed or answered something we cannot use."""

    reason = "UPSTREAM_ERROR"
    code = "UNAVAILABLE"

    def __init__(self, message: str, *, host: str, reason: str | None = None, **metadata: object):
        super().__init__(message, reason=reason, upstreamHost=host, **metadata)
        self.host = host


class UpstreamUnavailable(UpstreamError):
    """Transient upstream failure: worth retrying after `retry_after` seconds if given."""

    reason = "UPSTREAM_UNAVAILABLE"
    code = "UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        host: str,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
        **metadata: object,
    ) -> None:
        if status == 429 and reason is None:
            reason = "UPSTREAM_RATE_LIMITED"
        super().__init__(
            message,
            host=host,
            reason=reason,
            httpStatus=status,
            retryAfterSeconds=retry_after,
            **metadata,
        )
        self.status = status
        self.retry_after = retry_after


class UpstreamAuthError(UpstreamError):
    """The upstream refused our credentials (401/403 after the token flow)."""

    reason = "UPSTREAM_AUTH_FAILED"
    code = "UNAUTHENTICATED"


class UpstreamRejected(UpstreamError):
    """The upstream answered a definitive 4xx (e.g. MANIFEST_UNKNOWN)."""

    reason = "UPSTREAM_REJECTED"
    code = "FAILED_PRECONDITION"

    def __init__(
        self, message: str, *, host: str, status: int | None = None, **metadata: object
    ) -> None:
        super().__init__(message, host=host, httpStatus=status, **metadata)
        self.status = status


class UpstreamProtocolError(UpstreamError):
    """The upstream's answer breaks the protocol: malformed, oversized or ambiguous."""

    reason = "UPSTREAM_PROTOCOL_ERROR"
    code = "FAILED_PRECONDITION"


class DigestMismatch(UpstreamError):
    """Bytes received do not hash to the digest they were asked for or announced with."""

    reason = "DIGEST_MISMATCH"
    code = "DATA_LOSS"
