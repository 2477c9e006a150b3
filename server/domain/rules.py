"""Validation rules for user input that the domain owns: remotes, tag filters, base paths."""

from __future__ import annotations

import math
import re
import uuid
from urllib.parse import urlsplit

from server.domain.digests import Digest
from server.domain.errors import FieldViolation, InvalidArgument, Rule
from server.domain.resources import MAX_DOWNLOAD_CONCURRENCY, Remote

# OCI distribution-spec: repository name components separated by "/".
OCI_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
OCI_NAME_MAX = 255
# OCI distribution-spec: tag grammar.
OCI_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# A tag filter: tag characters plus the shell wildcards * ? [ ] !
_PATTERN = re.compile(r"[a-zA-Z0-9_.*?\[\]!-]{1,128}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the client manages itself; letting a remote set them would break auth or framing.
_RESERVED_HEADERS = {
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "accept-encoding",
}
MAX_RETRIES_LIMIT = 10
# Bounds of a remote's tag filters: every sync matches each upstream tag against them, and a
# remote with 35,000 patterns froze the event loop for 19 s.
MAX_TAG_PATTERNS = 256
MAX_TAG_PATTERN_LENGTH = 128


def is_oci_name(value: str) -> bool:
    """Whether `value` is a valid OCI repository name."""
    return len(value) <= OCI_NAME_MAX and bool(OCI_NAME.fullmatch(value))


def is_tag(value: str) -> bool:
    """Whether `value` is a valid OCI tag."""
    return bool(OCI_TAG.fullmatch(value))


def check_tag_pattern(pattern: str) -> str | None:
    """Why `pattern` is not a usable tag filter, or None when it is fine."""
    if pattern.startswith(("sha256:", "sha512:")):
        return None if Digest.is_valid(pattern) else "a digest entry must be sha256:<64 hex>"
    if not _PATTERN.fullmatch(pattern):
        return "must be a tag or a shell-style wildcard of tag characters and * ? [ ] !"
    depth = 0
    for char in pattern:
        depth += char == "["
        depth -= char == "]"
        if depth not in (0, 1):
            return "unbalanced [ ] in wildcard"
    if depth:
        return "unbalanced [ ] in wildcard"
    return None


def _check_url(value: str, field: str, required: bool) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "is required", Rule.REQUIRED_FIELD)] if required else []
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return [
            FieldViolation(field, "must not contain spaces or control characters", Rule.INVALID_URL)
        ]
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return [FieldViolation(field, f"not a valid URL: {value!r}", Rule.INVALID_URL)]
    if parts.scheme not in ("http", "https"):
        return [
            FieldViolation(
                field, f"scheme must be http or https, got {parts.scheme!r}", Rule.INVALID_URL
            )
        ]
    if not parts.hostname or not port_ok:
        return [
            FieldViolation(field, f"needs a host (and a valid port): {value!r}", Rule.INVALID_URL)
        ]
    if parts.query or parts.fragment:
        return [FieldViolation(field, "must not carry a query or fragment", Rule.INVALID_URL)]
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL would be echoed in responses, errors and logs.
        return [
            FieldViolation(
                field,
                "must not carry credentials; use the username/password fields",
                Rule.INVALID_URL,
            )
        ]
    return []


def remote_violations(remote: Remote) -> list[FieldViolation]:
    """Every rule a remote breaks; empty when it is valid. Fields are named `remote.<field>`."""
    bad: list[FieldViolation] = []
    bad += _check_url(remote.url, "remote.url", required=True)
    bad += _check_url(remote.proxy_url, "remote.proxy_url", required=False)
    bad += _check_url(remote.sigstore, "remote.sigstore", required=False)
    if not remote.upstream_name:
        bad.append(FieldViolation("remote.upstream_name", "is required", Rule.REQUIRED_FIELD))
    elif not is_oci_name(remote.upstream_name):
        bad.append(
            FieldViolation(
                "remote.upstream_name",
                f"{remote.upstream_name!r} is not an OCI repository name "
                "(lower-case components separated by /, e.g. library/hello-world)",
                Rule.INVALID_REPOSITORY_PATH,
            )
        )
    for kind, patterns in (
        ("include_tags", remote.include_tags),
        ("exclude_tags", remote.exclude_tags),
    ):
        if len(patterns) > MAX_TAG_PATTERNS:
            bad.append(
                FieldViolation(
                    f"remote.{kind}",
                    f"at most {MAX_TAG_PATTERNS} entries, got {len(patterns)}",
                )
            )
            continue  # one violation, not one per entry of a huge list
        for i, pattern in enumerate(patterns):
            if len(pattern) > MAX_TAG_PATTERN_LENGTH:
                bad.append(
                    FieldViolation(
                        f"remote.{kind}[{i}]",
                        f"at most {MAX_TAG_PATTERN_LENGTH} characters, got {len(pattern)}",
                    )
                )
                continue
            if (why := check_tag_pattern(pattern)) is not None:
                bad.append(
                    FieldViolation(
                        f"remote.{kind}[{i}]", f"{pattern!r}: {why}", Rule.INVALID_TAG_FILTER
                    )
                )
    if not 1 <= remote.download_concurrency <= MAX_DOWNLOAD_CONCURRENCY:
        bad.append(
            FieldViolation(
                "remote.download_concurrency",
                f"must be between 1 and {MAX_DOWNLOAD_CONCURRENCY}, "
                f"got {remote.download_concurrency}",
                Rule.OUT_OF_RANGE,
            )
        )
    if not 0 <= remote.max_retries <= MAX_RETRIES_LIMIT:
        bad.append(
            FieldViolation(
                "remote.max_retries",
                f"must be between 0 and {MAX_RETRIES_LIMIT}, got {remote.max_retries}",
                Rule.OUT_OF_RANGE,
            )
        )
    for field in ("connect_timeout", "sock_read_timeout", "total_timeout", "rate_limit"):
        value = getattr(remote, field)
        if not math.isfinite(value) or value < 0:
            bad.append(
                FieldViolation(
                    f"remote.{field}",
                    f"must be a finite number >= 0, got {value}",
                    Rule.OUT_OF_RANGE,
                )
            )
    for key, value in remote.headers:
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            bad.append(
                FieldViolation(
                    "remote.headers",
                    f"value of {key!r} has control characters",
                    Rule.INVALID_HEADER,
                )
            )
        if not _HEADER_NAME.fullmatch(key):
            bad.append(
                FieldViolation(
                    "remote.headers", f"{key!r} is not a valid header name", Rule.INVALID_HEADER
                )
            )
        elif key.lower() in _RESERVED_HEADERS:
            bad.append(
                FieldViolation(
                    "remote.headers", f"{key!r} is managed by the server", Rule.INVALID_HEADER
                )
            )
    if bool(remote.ssl_client_certificate) != bool(remote.ssl_client_key):
        bad.append(
            FieldViolation(
                "remote.ssl_client_key",
                "ssl_client_certificate and ssl_client_key must be set together",
                Rule.INCOMPATIBLE_FIELDS,
            )
        )
    for i, host in enumerate(remote.token_realm_allowlist):
        if not host or "/" in host or " " in host:
            bad.append(
                FieldViolation(
                    f"remote.token_realm_allowlist[{i}]", "must be a host name", Rule.INVALID_VALUE
                )
            )
    return bad


def validate_remote(remote: Remote) -> Remote:
    """Return `remote` or raise InvalidArgument listing every violation."""
    if bad := remote_violations(remote):
        raise InvalidArgument.of(bad)
    return remote


def check_request_id(value: str) -> str | None:
    """An optional AIP-155 request id: empty (None) or a UUID, else INVALID_ARGUMENT."""
    if not value:
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(
            f"request_id must be a UUID, got {value!r}", field="request_id"
        ) from None
    return value
