"""The pull side of the OCI distribution API, for what distributions publish.

Routes: `/v2/`, `/v2/_catalog`, `/v2/<base_path>/tags/list`,
`/v2/<base_path>/manifests/<tag|digest>` and `/v2/<base_path>/blobs/<digest>` (GET and HEAD).
Manifests go out as the exact stored bytes; stored blobs as the store answers them (a file, a
presigned redirect or a stream; Range honoured) or, when not yet stored, through the
pull-through of `ondemand.py`. Pushes are `push.py`'s: accepted into repositories that are
not mirrors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server.access.model import Action
from server.access.policy import may
from server.access.registry import RegistryAccess
from server.domain.digests import Digest
from server.domain.errors import DatabaseUnavailable
from server.domain.manifests import MAX_MANIFEST_BYTES, OCI_INDEX
from server.domain.rules import is_oci_name, is_tag
from server.registry import errors
from server.registry.cache import ServingCache
from server.registry.ondemand import PullThrough, descriptor
from server.registry.push import Pusher
from server.registry.ranges import RangeKind, classify_range
from server.storage import BlobStat, BlobStore
from server.store.serving import Served, ServedManifest

log = logging.getLogger("mirror.registry")

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
MAX_PAGE = 10_000

SERVING = web.AppKey("serving", ServingCache)
STORAGE = web.AppKey("storage", BlobStore)
PULL_THROUGH = web.AppKey("pull_through", PullThrough)
ACCESS = web.AppKey("access", RegistryAccess)


def _head(request: web.Request) -> bool:
    return request.method == "HEAD"


async def _served(request: web.Request) -> Served | web.Response:
    name = request.match_info["name"]
    if not is_oci_name(name):
        return errors.error_response(errors.NAME_INVALID, {"name": name}, head=_head(request))
    served = await request.app[SERVING].resolve(name)
    if served is None:
        return errors.error_response(errors.NAME_UNKNOWN, {"name": name}, head=_head(request))
    return served


def _page_args(request: web.Request) -> tuple[int | None, str] | web.Response:
    raw = request.query.get("n")
    if raw is None:
        return None, request.query.get("last", "")
    if not re.fullmatch(r"[0-9]{1,6}", raw) or int(raw) > MAX_PAGE:
        return errors.error_response(errors.PAGINATION_NUMBER_INVALID, {"n": raw})
    return int(raw), request.query.get("last", "")


def _paged(request: web.Request, key: str, items: list[str], limit: int | None) -> web.Response:
    """A JSON list page with a `Link: <...>; rel="next"` header when more follow."""
    headers = dict(API_VERSION)
    if limit == 0:
        items = []  # `n=0` asks for an empty page (and no Link: there is no last entry)
    elif limit is not None and len(items) > limit:
        items = items[:limit]
        query = urlencode({"n": limit, "last": items[-1]})
        headers["Link"] = f'<{request.path}?{query}>; rel="next"'
    body: dict[str, Any] = {key: items}
    if key == "tags":
        body = {"name": request.match_info["name"], "tags": items}
    # Compact, newline-terminated: byte for byte what distribution's JSON encoder writes.
    text = json.dumps(body, separators=(",", ":")) + "\n"
    return web.Response(text=text, content_type="application/json", headers=headers)


async def base(request: web.Request) -> web.Response:
    return web.json_response({}, headers=API_VERSION)


async def catalog(request: web.Request) -> web.Response:
    page = _page_args(request)
    if isinstance(page, web.Response):
        return page
    limit, last = page
    if limit == 0:
        return _paged(request, "repositories", [], 0)
    # Only what the caller may pull (the policy decides per distribution); filtered before
    # paging so that pages stay full and `Link` stays right.
    caller = await request.app[ACCESS].caller(request)
    wanted = (limit or MAX_PAGE) + 1
    found: list[str] = []
    while len(found) < wanted:
        entries = await request.app[SERVING].catalog_entries(wanted, last)
        found += [
            base_path
            for base_path, repository, public in entries
            if may(caller, Action.PULL, repository, public=public)
        ]
        if len(entries) < wanted:
            break
        last = entries[-1][0]
    return _paged(request, "repositories", found[:wanted], limit if limit is not None else MAX_PAGE)


async def tags_list(request: web.Request) -> web.Response:
    served = await _served(request)
    if isinstance(served, web.Response):
        return served
    page = _page_args(request)
    if isinstance(page, web.Response):
        return page
    limit, last = page
    if limit == 0:
        return _paged(request, "tags", [], None)
    found = await request.app[SERVING].tags(served, (limit or 1_000_000) + 1, last)
    return _paged(request, "tags", found, limit)


async def manifest(request: web.Request) -> web.Response:
    head = _head(request)
    served = await _served(request)
    if isinstance(served, web.Response):
        return served
    reference = request.match_info["reference"]
    queries = request.app[SERVING]
    if ":" in reference:
        if not Digest.is_valid(reference):
            return errors.error_response(errors.DIGEST_INVALID, {"digest": reference}, head=head)
        found = await queries.manifest_by_digest(served, reference)
    elif is_tag(reference):
        found = await queries.manifest_by_tag(served, reference)
    else:
        return errors.error_response(errors.TAG_INVALID, {"tag": reference}, head=head)
    if found is None:
        return errors.error_response(errors.MANIFEST_UNKNOWN, {"reference": reference}, head=head)
    headers = {
        **API_VERSION,
        "Content-Type": found.media_type,
        "Docker-Content-Digest": found.digest,
        "ETag": f'"{found.digest}"',
    }
    if head:
        headers["Content-Length"] = str(len(found.data))
        return web.Response(headers=headers)
    return web.Response(body=found.data, headers=headers)


async def blob(request: web.Request) -> web.StreamResponse:
    head = _head(request)
    served = await _served(request)
    if isinstance(served, web.Response):
        return served
    raw = request.match_info["digest"]
    if not Digest.is_valid(raw):
        return errors.error_response(errors.DIGEST_INVALID, {"digest": raw}, head=head)
    found = await request.app[SERVING].blob(served, raw)
    if found is None:
        return errors.error_response(errors.BLOB_UNKNOWN, {"digest": raw}, head=head)
    digest = Digest.parse(raw)
    storage = request.app[STORAGE]
    pull = request.app[PULL_THROUGH]
    headers = {**API_VERSION, "Docker-Content-Digest": raw}
    stored = await storage.stat(digest)
    # A stored blob of another size than recorded is damaged: fetch it again if we can.
    if stored is not None and stored.size == found.size:
        return await _stored_response(request, storage, stored, headers)
    # The remote the content came from (a repository re-pointed since keeps serving older
    # versions' layers from where they were synced), else the repository's remote.
    source = found.remote_pk if found.remote_pk is not None else served.remote_pk
    remote = None if source is None else await pull.remote(source)
    if remote is None:
        return errors.error_response(
            errors.BLOB_UNKNOWN,
            {
                "digest": raw,
                "reason": "not stored and the repository has no remote to fetch it from",
            },
            head=head,
        )
    if head:
        headers.update(
            {"Content-Type": "application/octet-stream", "Content-Length": str(found.size)}
        )
        return web.Response(headers=headers)
    blob_descriptor = descriptor(raw, found.size, found.media_type)
    response = await pull.serve(request, remote, blob_descriptor)
    if response is None:  # stored meanwhile (by another pull or a sync)
        stored = await storage.stat(digest)
        if stored is None:
            return errors.error_response(errors.BLOB_UNKNOWN, {"digest": raw})
        return await _stored_response(request, storage, stored, headers)
    return response


async def _stored_response(
    request: web.Request, storage: BlobStore, stored: BlobStat, headers: dict[str, str]
) -> web.StreamResponse:
    """A stored blob as the store answers it (a file, a presigned redirect or a stream), with
    RFC 9110's Range rules (see `ranges.py`) applied first."""
    headers = {**headers, "Content-Type": "application/octet-stream"}
    kind = classify_range(request.headers.get("Range"))
    if kind is RangeKind.UNSATISFIABLE:
        return web.Response(
            status=416, headers={**headers, "Content-Range": f"bytes */{stored.size}"}
        )
    # A multi-range or malformed header is ignored: the whole blob, 200 (the store answers
    # as if there were none).
    return await storage.http_response(
        request, stored, headers, ignore_range=kind is RangeKind.IGNORE
    )


async def referrers(request: web.Request) -> web.Response:
    """OCI 1.1 referrers API: an image index of the manifests whose subject is the digest."""
    served = await _served(request)
    if isinstance(served, web.Response):
        return served
    raw = request.match_info["digest"]
    if not Digest.is_valid(raw):
        return errors.error_response(errors.DIGEST_INVALID, {"digest": raw})
    wanted = request.query.get("artifactType", "")
    descriptors = []
    for found in await request.app[SERVING].referrers(served, raw):
        descriptor = _referrer_descriptor(found)
        if not wanted or descriptor.get("artifactType") == wanted:
            descriptors.append(descriptor)
    headers = {**API_VERSION, "Content-Type": OCI_INDEX}
    if wanted:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return web.Response(body=json.dumps(body).encode(), headers=headers)


def _referrer_descriptor(found: ServedManifest) -> dict[str, Any]:
    doc = json.loads(found.data)
    artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType", "")
    descriptor: dict[str, Any] = {
        "mediaType": found.media_type,
        "digest": found.digest,
        "size": len(found.data),
    }
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if doc.get("annotations"):
        descriptor["annotations"] = doc["annotations"]
    return descriptor


async def signatures(request: web.Request) -> web.Response:
    """The docker signature extension: atomic signatures of a manifest, as stored."""
    served = await _served(request)
    if isinstance(served, web.Response):
        return served
    raw = request.match_info["digest"]
    if not Digest.is_valid(raw):
        return errors.error_response(errors.DIGEST_INVALID, {"digest": raw})
    found = await request.app[SERVING].atomic_signatures(served, raw)
    body = {
        "signatures": [
            {
                "version": 2,
                "type": "atomic",
                "name": name,
                "content": base64.b64encode(data).decode(),
            }
            for name, data in found
        ]
    }
    return web.json_response(body, headers=API_VERSION)


async def unsupported(request: web.Request) -> web.Response:
    return errors.error_response(
        errors.UNSUPPORTED,
        {"method": request.method},
        message="no such write operation on this registry",
    )


@web.middleware
async def no_internal_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown routes get the spec's JSON; a bug is logged and answered 500 without details."""
    if "%2f" in request.raw_path.split("?", 1)[0].lower():
        # Routing sees the decoded path; a proxy in front may authorise on the raw one.
        # An encoded slash must not quietly become a name separator.
        return errors.error_response(
            errors.NAME_INVALID, {"path": request.raw_path}, head=_head(request)
        )
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return errors.error_response(
            errors.NAME_UNKNOWN, {"path": request.path}, head=_head(request)
        )
    except web.HTTPMethodNotAllowed:
        if request.method in ("GET", "HEAD"):  # no such read route: unknown, not a write
            return errors.error_response(
                errors.NAME_UNKNOWN, {"path": request.path}, head=_head(request)
            )
        return await unsupported(request)
    except web.HTTPException:
        raise
    except DatabaseUnavailable as exc:
        # A pull client retries a 503; the details name the database, never its credentials.
        return errors.error_response(
            errors.UNAVAILABLE, exc.metadata, head=_head(request), message=exc.message
        )
    except Exception:
        log.exception("registry request %s %s failed", request.method, request.path)
        return web.json_response(
            {"errors": [{"code": "UNKNOWN", "message": "internal error", "detail": {}}]},
            status=500,
            headers=API_VERSION,
        )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer: browsers must not sniff a blob (user-supplied bytes) into HTML."""
    response.headers["X-Content-Type-Options"] = "nosniff"


def build_registry_app(
    serving: ServingCache,
    storage: BlobStore,
    pull_through: PullThrough,
    access: RegistryAccess,
    pusher: Pusher | None = None,
) -> web.Application:
    # Errors first, then access: a request that passes access may still fail, and a refused
    # one never reaches a handler. Handlers find the caller in `request[REQUEST_PRINCIPAL]`.
    # Manifest PUTs are read with their own 4 MiB limit; blob bodies are streamed.
    app = web.Application(
        middlewares=[no_internal_errors, access.middleware], client_max_size=MAX_MANIFEST_BYTES
    )
    app.on_response_prepare.append(_security_headers)
    app[SERVING] = serving
    app[STORAGE] = storage
    app[PULL_THROUGH] = pull_through
    app[ACCESS] = access
    app.router.add_get("/token", access.token_endpoint)
    name = "{name:[^?#]+?}"
    app.router.add_get("/v2/", base)
    if pusher is not None:
        uploads = f"/v2/{name}/blobs/uploads/"
        app.router.add_post(uploads, pusher.start_upload)
        app.router.add_patch(uploads + "{uid}", pusher.patch_upload)
        app.router.add_put(uploads + "{uid}", pusher.finish_upload)
        app.router.add_get(uploads + "{uid}", pusher.upload_status)
        app.router.add_delete(uploads + "{uid}", pusher.cancel_upload)
        app.router.add_put(f"/v2/{name}/manifests/{{reference}}", pusher.put_manifest)
        app.router.add_delete(f"/v2/{name}/manifests/{{reference}}", pusher.delete_manifest)
        app.router.add_delete(f"/v2/{name}/blobs/{{digest}}", pusher.delete_blob)

        async def sweeper(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(pusher.run_sweeper())
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(sweeper)
    app.router.add_get("/v2/_catalog", catalog)
    app.router.add_get(f"/v2/{name}/tags/list", tags_list)
    app.router.add_route("GET", f"/v2/{name}/manifests/{{reference}}", manifest)
    app.router.add_route("HEAD", f"/v2/{name}/manifests/{{reference}}", manifest)
    app.router.add_route("GET", f"/v2/{name}/blobs/{{digest}}", blob)
    app.router.add_route("HEAD", f"/v2/{name}/blobs/{{digest}}", blob)
    app.router.add_get(f"/v2/{name}/referrers/{{digest}}", referrers)
    app.router.add_get(f"/extensions/v2/{name}/signatures/{{digest}}", signatures)
    for method in ("PUT", "POST", "PATCH", "DELETE"):
        app.router.add_route(method, "/v2/{tail:.*}", unsupported)
    return app
