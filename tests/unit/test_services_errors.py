"""Domain errors -> rich gRPC statuses (server/services/errors.py to_status)."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from server.domain.errors import (
    AlreadyExists,
    DigestMismatch,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MirrorError,
    NotFound,
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from server.services.errors import ERROR_DOMAIN, internal_status, to_status

DETAILS_KEY = "grpc-status-details-bin"


def decode(status: grpc.Status) -> status_pb2.Status:
    """The google.rpc.Status carried in the trailing metadata."""
    values = [value for key, value in status.trailing_metadata if key == DETAILS_KEY]
    assert len(values) == 1
    rich = status_pb2.Status.FromString(values[0])
    assert rich.code == status.code.value[0]
    assert rich.message == status.details
    return rich


def unpack(rich: status_pb2.Status, kind: type) -> list:
    found = []
    for detail in rich.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


def error_info(rich: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    (info,) = unpack(rich, error_details_pb2.ErrorInfo)
    assert info.domain == ERROR_DOMAIN == "mirror.v1"
    return info


@pytest.mark.parametrize(
    ("exc", "code", "rpc_code", "reason", "metadata"),
    [
        pytest.param(
            NotFound("remote remotes/x not found", remote="remotes/x"),
            grpc.StatusCode.NOT_FOUND,
            code_pb2.NOT_FOUND,
            "NOT_FOUND",
            {"remote": "remotes/x"},
            id="not-found",
        ),
        pytest.param(
            NotFound("no such version", reason="VERSION_NOT_FOUND", version=3),
            grpc.StatusCode.NOT_FOUND,
            code_pb2.NOT_FOUND,
            "VERSION_NOT_FOUND",
            {"version": "3"},
            id="not-found-custom-reason",
        ),
        pytest.param(
            AlreadyExists("exists", repository="repositories/r"),
            grpc.StatusCode.ALREADY_EXISTS,
            code_pb2.ALREADY_EXISTS,
            "ALREADY_EXISTS",
            {"repository": "repositories/r"},
            id="already-exists",
        ),
        pytest.param(
            FailedPrecondition("cannot delete latest", reason="LATEST_VERSION", number=4),
            grpc.StatusCode.FAILED_PRECONDITION,
            code_pb2.FAILED_PRECONDITION,
            "LATEST_VERSION",
            {"number": "4"},
            id="failed-precondition",
        ),
        pytest.param(
            UpstreamAuthError("denied", host="registry.example.com", httpStatus=401),
            grpc.StatusCode.UNAUTHENTICATED,
            code_pb2.UNAUTHENTICATED,
            "UPSTREAM_AUTH_FAILED",
            {"upstreamHost": "registry.example.com", "httpStatus": "401"},
            id="upstream-auth",
        ),
        pytest.param(
            UpstreamRejected("manifest unknown", host="h", status=404),
            grpc.StatusCode.FAILED_PRECONDITION,
            code_pb2.FAILED_PRECONDITION,
            "UPSTREAM_REJECTED",
            {"upstreamHost": "h", "httpStatus": "404"},
            id="upstream-rejected",
        ),
        pytest.param(
            UpstreamProtocolError("too big", host="h", reason="UPSTREAM_RESPONSE_TOO_LARGE"),
            grpc.StatusCode.FAILED_PRECONDITION,
            code_pb2.FAILED_PRECONDITION,
            "UPSTREAM_RESPONSE_TOO_LARGE",
            {"upstreamHost": "h"},
            id="upstream-protocol",
        ),
        pytest.param(
            DigestMismatch(
                "blob does not match",
                host="h",
                digest=f"sha256:{'a' * 64}",
                receivedSize=3,
            ),
            grpc.StatusCode.DATA_LOSS,
            code_pb2.DATA_LOSS,
            "DIGEST_MISMATCH",
            {"upstreamHost": "h", "digest": f"sha256:{'a' * 64}", "receivedSize": "3"},
            id="digest-mismatch",
        ),
        pytest.param(
            MirrorError("boom"),
            grpc.StatusCode.INTERNAL,
            code_pb2.INTERNAL,
            "MIRROR_ERROR",
            {},
            id="base-error",
        ),
    ],
)
def test_status_code_reason_and_metadata(
    exc: MirrorError,
    code: grpc.StatusCode,
    rpc_code: int,
    reason: str,
    metadata: dict[str, str],
) -> None:
    status = to_status(exc)
    assert status.code == code
    assert status.details == exc.message
    rich = decode(status)
    assert rich.code == rpc_code
    info = error_info(rich)
    assert info.reason == reason
    assert dict(info.metadata) == metadata
    assert unpack(rich, error_details_pb2.BadRequest) == []
    assert unpack(rich, error_details_pb2.RetryInfo) == []


def test_invalid_argument_carries_bad_request() -> None:
    exc = InvalidArgument.of(
        [
            FieldViolation("remote.url", "is required", "REQUIRED_FIELD"),
            FieldViolation(
                "remote.include_tags[1]", "unbalanced [ ] in wildcard", "INVALID_TAG_FILTER"
            ),
        ]
    )
    status = to_status(exc)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    rich = decode(status)
    assert rich.code == code_pb2.INVALID_ARGUMENT
    # Two rules broken: the ErrorInfo says so, each violation names its own rule.
    assert error_info(rich).reason == "MULTIPLE_RULES"
    (bad_request,) = unpack(rich, error_details_pb2.BadRequest)
    assert [(v.field, v.description, v.reason) for v in bad_request.field_violations] == [
        ("remote.url", "is required", "REQUIRED_FIELD"),
        ("remote.include_tags[1]", "unbalanced [ ] in wildcard", "INVALID_TAG_FILTER"),
    ]


def test_one_rule_broken_is_the_reason() -> None:
    exc = InvalidArgument.of(
        [FieldViolation("a", "x", "INVALID_URL"), FieldViolation("b", "y", "INVALID_URL")]
    )
    assert error_info(decode(to_status(exc))).reason == "INVALID_URL"


def test_invalid_argument_single_field() -> None:
    status = to_status(InvalidArgument("bad id", field="remote_id", id="-x"))
    rich = decode(status)
    assert dict(error_info(rich).metadata) == {"id": "-x"}
    (bad_request,) = unpack(rich, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["remote_id"]


def test_invalid_argument_without_fields_has_no_bad_request() -> None:
    rich = decode(to_status(InvalidArgument("filter is malformed")))
    assert unpack(rich, error_details_pb2.BadRequest) == []


@pytest.mark.parametrize(
    ("retry_after", "seconds", "nanos"),
    [(30.0, 30, 0), (1.5, 1, 500_000_000), (0.25, 0, 250_000_000), (300.0, 300, 0)],
)
def test_upstream_unavailable_with_retry_after(
    retry_after: float, seconds: int, nanos: int
) -> None:
    exc = UpstreamUnavailable("rate limited", host="h", status=429, retry_after=retry_after)
    status = to_status(exc)
    assert status.code == grpc.StatusCode.UNAVAILABLE
    rich = decode(status)
    info = error_info(rich)
    assert info.reason == "UPSTREAM_RATE_LIMITED"
    assert dict(info.metadata) == {
        "upstreamHost": "h",
        "httpStatus": "429",
        "retryAfterSeconds": str(retry_after),
    }
    (retry,) = unpack(rich, error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (seconds, nanos)


def test_upstream_unavailable_without_retry_after() -> None:
    exc = UpstreamUnavailable("503", host="h", status=503)
    rich = decode(to_status(exc))
    info = error_info(rich)
    assert info.reason == "UPSTREAM_UNAVAILABLE"
    assert dict(info.metadata) == {"upstreamHost": "h", "httpStatus": "503"}
    assert unpack(rich, error_details_pb2.RetryInfo) == []


def test_negative_retry_after_is_clamped_to_zero() -> None:
    rich = decode(to_status(UpstreamUnavailable("x", host="h", retry_after=-5.0)))
    (retry,) = unpack(rich, error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (0, 0)


def test_infinite_retry_after_still_maps() -> None:
    status = to_status(UpstreamUnavailable("x", host="h", retry_after=math.inf))
    assert status.code == grpc.StatusCode.UNAVAILABLE


def test_internal_status_hides_details() -> None:
    status = internal_status()
    assert status.code == grpc.StatusCode.INTERNAL
    rich = decode(status)
    info = error_info(rich)
    assert info.reason == "INTERNAL_ERROR"
    assert "server log" in rich.message
