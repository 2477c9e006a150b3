"""The error tree every layer raises; mapped to gRPC codes in `server/services/errors.py`.

```
MirrorError(reason, metadata)
  NotFound                 -> NOT_FOUND
  AlreadyExists            -> ALREADY_EXISTS
  InvalidArgument(fields)  -> INVALID_ARGUMENT     (BadRequest; reason = the Rule broken)
  FailedPrecondition       -> FAILED_PRECONDITION  (state forbids the call)
  Unauthenticated          -> UNAUTHENTICATED      (no valid credentials)
  PermissionDenied         -> PERMISSION_DENIED    (a known caller without the role)
  UpstreamError(host)
    UpstreamUnavailable    -> UNAVAILABLE          (429, 5xx, resets, timeouts; retryable)
    UpstreamAuthError      -> UNAUTHENTICATED      (401/403 after the token dance)
    UpstreamRejected       -> FAILED_PRECONDITION  (other 4xx, e.g. MANIFEST_UNKNOWN)
    UpstreamProtocolError  -> FAILED_PRECONDITION  (malformed or oversized answers)
    DigestMismatch         -> DATA_LOSS
  DatabaseUnavailable      -> UNAVAILABLE          (the database does not answer; retryable)
  ContentCollected         -> ABORTED              (garbage collection won a race; run again)
```

`reason` is a stable UPPER_SNAKE string (AIP-193); `metadata` carries every dynamic value that
appears in the message, under lowerCamel keys. For bad input the reason names the rule broken
(the `Rule` constants below): each field violation carries its own rule, and the error's reason
is that rule when all violations share it, `MULTIPLE_RULES` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Rule:
    """The validation rules, as `ErrorInfo.reason` and `BadRequest.FieldViolation.reason`."""

    INVALID_RESOURCE_ID = "INVALID_RESOURCE_ID"  # an id: a-z 0-9 . _ -, 1-128 characters
    INVALID_RESOURCE_NAME = "INVALID_RESOURCE_NAME"  # not `collection/{id}` as AIP-122 says
    REQUIRED_FIELD = "REQUIRED_FIELD"
    OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"  # a number outside its documented bounds
    INVALID_URL = "INVALID_URL"
    INVALID_REPOSITORY_PATH = "INVALID_REPOSITORY_PATH"  # OCI repository-name grammar
    INVALID_TAG_FILTER = "INVALID_TAG_FILTER"
    INVALID_HEADER = "INVALID_HEADER"
    INVALID_DIGEST = "INVALID_DIGEST"
    INVALID_ENUM_VALUE = "INVALID_ENUM_VALUE"
    INVALID_FIELD_MASK = "INVALID_FIELD_MASK"
    INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"
    INVALID_TEXT = "INVALID_TEXT"  # NUL characters and the like
    INCOMPATIBLE_FIELDS = "INCOMPATIBLE_FIELDS"  # fields that must (not) be set together
    INVALID_VALUE = "INVALID_VALUE"  # any other malformed value
    MULTIPLE_RULES = "MULTIPLE_RULES"  # violations of different rules in one request


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. `remote.url`), what is wrong, which rule."""

    field: str
    description: str
    reason: str = Rule.INVALID_VALUE


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
    """The request is malformed; `violations` names each offending field and its rule."""

    reason = Rule.INVALID_VALUE
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
        found = list(violations or [])
        if field is not None:
            found.insert(0, FieldViolation(field, message, reason or Rule.INVALID_VALUE))
        if reason is None and found:
            rules = {v.reason for v in found}
            reason = rules.pop() if len(rules) == 1 else Rule.MULTIPLE_RULES
        super().__init__(message, reason=reason, **metadata)
        self.violations = found

    @classmethod
    def of(cls, violations: list[FieldViolation]) -> InvalidArgument:
        """One error carrying several violations; the message lists them all."""
        text = "; ".join(f"{v.field}: {v.description}" for v in violations)
        return cls(text, violations=violations)


class Violations:
    """Collects the violations of several checks, so one answer names every bad field.

    `check(fn, ...)` runs a validator that raises InvalidArgument and keeps its violations
    (returning None) instead of stopping at the first bad field, e.g. an invalid id.
    """

    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def check(self, validate: Callable[..., T], *args: object, **kwargs: object) -> T | None:
        try:
            return validate(*args, **kwargs)
        except InvalidArgument as exc:
            self.found += exc.violations or [FieldViolation("", exc.message, exc.reason)]
            return None

    def add(self, field: str, description: str, reason: str = Rule.INVALID_VALUE) -> None:
        self.found.append(FieldViolation(field, description, reason))

    def extend(self, violations: list[FieldViolation]) -> None:
        self.found += violations

    def raise_if_any(self) -> None:
        if self.found:
            raise InvalidArgument.of(self.found)


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


class DatabaseUnavailable(MirrorError):
    """The database of record cannot be reached (stopped, restarting, network down).

    Retryable: the server reconnects by itself once the database answers again."""

    reason = "DATABASE_UNAVAILABLE"
    code = "UNAVAILABLE"


class ContentCollected(MirrorError):
    """Content a task relied on was garbage-collected while it ran; running it again works."""

    reason = "CONTENT_COLLECTED"
    code = "ABORTED"
