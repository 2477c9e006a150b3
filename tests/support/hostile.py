"""A hostile upstream registry: a small aiohttp app that each test scripts.

``async with HostileUpstream() as up:`` listens on a free port of ``host`` (a loopback
address, 127.0.0.1 by default) and answers ``GET /v2/`` with 200. A test adds what the
attack needs:

* ``up.route("GET", "/v2/app/tags/list", handler)`` - any aiohttp handler;
* ``up.json("/v2/app/tags/list", body, headers=...)`` - a fixed JSON (or bytes) answer;
* ``up.image("app", "v1", manifest_bytes, blobs={digest: bytes}, media_type=...)`` - a
  manifest by tag and digest and its blobs, so a sync can complete (and the tag in the
  repository's tag list, unless the test scripted that route itself);

``up.requests`` lists ``(method, path_qs, headers)`` of every request received, so a test can
assert what the mirror sent (e.g. that no ``Authorization`` went somewhere).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["HostileUpstream"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HostileUpstream:
    """One scripted upstream on ``host`` (loopback only)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        if not host.startswith("127."):
            raise ValueError("the hostile upstream only listens on loopback addresses")
        self.host_ip = host
        self.port = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self._tags: dict[str, list[str]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host_ip}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.host_ip}:{self.port}"

    # ------------------------------------------------------------------ scripting
    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def json(
        self,
        path: str,
        body: object,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()

        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(
                status=status,
                body=data,
                headers={"Content-Type": content_type, **(headers or {})},
            )

        self.route("GET", path, answer)

    def image(
        self,
        name: str,
        tag: str,
        manifest: bytes,
        *,
        media_type: str,
        blobs: dict[str, bytes] | None = None,
    ) -> str:
        """Serve `manifest` under `tag` and its digest (GET and HEAD) and `blobs`; the digest."""
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()

        async def answer(request: web.Request) -> web.StreamResponse:
            headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(manifest))
                return web.Response(headers=headers)
            return web.Response(body=manifest, headers=headers)

        for reference in (tag, digest):
            for method in ("GET", "HEAD"):
                self.route(method, f"/v2/{name}/manifests/{reference}", answer)
        tags = self._tags.setdefault(name, [])
        tags.append(tag)
        if ("GET", f"/v2/{name}/tags/list") not in self._routes:
            self.route("GET", f"/v2/{name}/tags/list", self._tag_list(name))
        for blob_digest, data in (blobs or {}).items():
            self.json(
                f"/v2/{name}/blobs/{blob_digest}", data, content_type="application/octet-stream"
            )
        return digest

    def _tag_list(self, name: str) -> Handler:
        async def answer(request: web.Request) -> web.StreamResponse:
            return web.json_response({"name": name, "tags": sorted(self._tags[name])})

        return answer

    # ------------------------------------------------------------------ serving
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        handler = self._routes.get((request.method, request.path))
        if handler is not None:
            return await handler(request)
        if request.path == "/v2/":
            return web.json_response({})
        return web.json_response({"errors": [{"code": "NAME_UNKNOWN"}]}, status=404)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host_ip, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def sent(self, path_part: str) -> list[dict[str, str]]:
        """Headers of the requests whose path contains `path_part`."""
        return [headers for _, path, headers in self.requests if path_part in path]
