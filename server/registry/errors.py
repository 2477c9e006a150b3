"""OCI distribution-spec error codes as data, and the JSON error body.

https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from aiohttp import web

from server.domain.errors import MirrorError, UpstreamAuthError, UpstreamUnavailable

log = logging.getLogger("mirror.registry")


@dataclass(frozen=True, slots=True)
class OciError:
    code: str
    status: int
    message: str


BLOB_UNKNOWN = OciError("BLOB_UNKNOWN", 404, "blob unknown to registry")
BLOB_UPLOAD_INVALID = OciError("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
BLOB_UPLOAD_UNKNOWN = OciError("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
MANIFEST_BLOB_UNKNOWN = OciError(
    "MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry"
)
MANIFEST_INVALID = OciError("MANIFEST_INVALID", 400, "manifest invalid")
SIZE_INVALID = OciError("SIZE_INVALID", 400, "provided length did not match content length")
DIGEST_INVALID = OciError("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
MANIFEST_UNKNOWN = OciError("MANIFEST_UNKNOWN", 404, "manifest unknown")
NAME_INVALID = OciError("NAME_INVALID", 400, "invalid repository name")
NAME_UNKNOWN = OciError("NAME_UNKNOWN", 404, "repository name not known to registry")
TAG_INVALID = OciError("TAG_INVALID", 400, "manifest tag did not match URI")
PAGINATION_NUMBER_INVALID = OciError(
    "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"
)
UNSUPPORTED = OciError("UNSUPPORTED", 405, "the operation is unsupported")
UNAVAILABLE = OciError("UNAVAILABLE", 503, "upstream unavailable")
TOOMANYREQUESTS = OciError("TOOMANYREQUESTS", 429, "too many requests")
DENIED = OciError("DENIED", 403, "requested access to the resource is denied")
UNAUTHORIZED = OciError("UNAUTHORIZED", 401, "authentication required")


def error_response(
    error: OciError, detail: object = None, *, head: bool = False, message: str = ""
) -> web.Response:
    """The spec's `{"errors": [...]}` body (headers only for HEAD requests)."""
    body = {
        "errors": [
            {"code": error.code, "message": message or error.message, "detail": detail or {}}
        ]
    }
    return web.Response(
        status=error.status,
        body=None if head else json.dumps(body).encode(),
        content_type="application/json",
        headers={"Docker-Distribution-API-Version": "registry/2.0"},
    )


def upstream_error_response(exc: MirrorError, head: bool = False) -> web.Response:
    """A pull-through failure, as an anonymous puller may see it: the spec's code and its
    generic message. The upstream's host, status and body are for the server log only (a
    puller must not learn where a mirror fetches from, nor read an upstream's error pages)."""
    log.warning("pull-through failed (%s): %s", exc.reason, exc.message)
    if isinstance(exc, UpstreamUnavailable) and exc.status == 429:
        return error_response(TOOMANYREQUESTS, head=head)
    if isinstance(exc, UpstreamAuthError):
        return error_response(DENIED, head=head)
    # The mirror's own failures say what happened, never where (no data dir path).
    return error_response(UNAVAILABLE, head=head, message=OWN_FAILURES.get(exc.reason, ""))


OWN_FAILURES = {"STORAGE_FULL": "the mirror's blob storage is full"}
"""Generic messages of failures of the mirror itself (not of an upstream), by reason."""
