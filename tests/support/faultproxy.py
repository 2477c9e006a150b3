"""A scriptable fault-injecting HTTP reverse proxy for registry tests (aiohttp).

``async with FaultProxy(registry.url) as proxy:`` listens on a free loopback port
(``proxy.url``) and forwards every request (method, raw path + query, headers except
Host and hop-by-hop ones, streamed body) to the upstream, streaming the response back
byte for byte: ``Accept-Encoding: identity`` is sent upstream and nothing is decoded
(``auto_decompress=False`` on both sides). ``Location``, ``Link`` and the
``WWW-Authenticate`` realm are rewritten only when they point at the upstream, so a
client keeps talking to the proxy.

Faults match on an (optional) method and a substring of the request's path+query;
``times=None`` means "every matching request until :meth:`FaultProxy.clear`":

* ``fail(method, sub, status=429, times=2, headers={"Retry-After": "1"})`` answers
  without contacting the upstream;
* ``corrupt(sub, times=1)`` flips bytes of the response body (same length);
* ``slow(sub, bytes_per_sec=...)`` throttles the response body;
* ``reset(sub, after_bytes=N, times=1)`` sends the headers and N body bytes, then
  aborts the connection;
* ``block(sub)`` holds matching requests (before they reach the upstream) until
  :meth:`FaultProxy.release`.

``paginate_tags(n)`` makes the proxy serve ``GET /v2/<name>/tags/list`` in pages of at
most ``n`` tags (honouring ``?n=`` and ``?last=``, with a ``Link: <...>; rel="next"``
header), because distribution 2.8 ignores ``n`` for tag lists and always returns
every tag (it only paginates ``/v2/_catalog``).

``hits(method, sub)`` counts requests seen, ``requests`` lists ``(method, path_qs)``.
If the upstream is unreachable the proxy answers 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

__all__ = ["FaultProxy", "FaultRule"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
_CHUNK = 64 * 1024
_TAGS_LIST = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


@dataclass
class FaultRule:
    """One scripted fault (see the module docstring); ``remaining=None`` is unlimited."""

    kind: str
    method: str | None
    substring: str
    remaining: int | None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    bytes_per_sec: float = 0.0
    after_bytes: int = 0

    def matches(self, method: str, path: str) -> bool:
        """True if the rule applies to this request and has uses left."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method not in (None, "*") and self.method.upper() != method.upper():
            return False
        return self.substring in path


def _method_matches(wanted: str | None, method: str) -> bool:
    return wanted in (None, "*") or wanted.upper() == method.upper()


class FaultProxy:
    """Reverse proxy to ``upstream_url`` with scriptable faults and hit counters."""

    def __init__(self, upstream_url: str, *, port: int | None = None) -> None:
        """Prepare a proxy for ``upstream_url`` (e.g. ``http://127.0.0.1:5000``)."""
        from tests.support.registry import free_port  # local import keeps deps small

        self.upstream = upstream_url.rstrip("/")
        self.port = port if port is not None else free_port()
        self.requests: list[tuple[str, str]] = []
        self.rules: list[FaultRule] = []
        self._release = asyncio.Event()
        self._waiting = 0
        self._blocked_changed = asyncio.Event()
        self.tag_page_size: int | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` of the proxy."""
        return f"127.0.0.1:{self.port}"

    @property
    def blocked(self) -> int:
        """Number of requests currently held by :meth:`block`."""
        return self._waiting

    # ------------------------------------------------------------------ scripting
    def fail(
        self,
        method: str | None,
        path_substring: str,
        status: int = 429,
        times: int | None = 2,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> FaultRule:
        """Answer matching requests with ``status`` (+ ``headers``/``body``) without
        forwarding them; ``method`` None or ``"*"`` matches any method."""
        return self._add(
            FaultRule("fail", method, path_substring, times, status, dict(headers or {}), body)
        )

    def corrupt(
        self, path_substring: str, times: int | None = 1, method: str | None = None
    ) -> FaultRule:
        """Flip bytes of matching response bodies (length unchanged)."""
        return self._add(FaultRule("corrupt", method, path_substring, times))

    def slow(
        self,
        path_substring: str,
        bytes_per_sec: float,
        times: int | None = None,
        method: str | None = None,
    ) -> FaultRule:
        """Throttle matching response bodies to ``bytes_per_sec``."""
        return self._add(
            FaultRule("slow", method, path_substring, times, bytes_per_sec=bytes_per_sec)
        )

    def reset(
        self,
        path_substring: str,
        after_bytes: int = 0,
        times: int | None = 1,
        method: str | None = None,
    ) -> FaultRule:
        """Abort the connection after ``after_bytes`` bytes of a matching response body."""
        return self._add(FaultRule("reset", method, path_substring, times, after_bytes=after_bytes))

    def block(
        self, path_substring: str, method: str | None = None, times: int | None = None
    ) -> FaultRule:
        """Hold matching requests (before they reach upstream) until :meth:`release`."""
        self._release.clear()
        return self._add(FaultRule("block", method, path_substring, times))

    def release(self) -> None:
        """Let every held request through and drop all ``block`` rules."""
        self.rules = [r for r in self.rules if r.kind != "block"]
        self._release.set()

    def paginate_tags(self, page_size: int | None) -> None:
        """Serve tag lists in pages of at most ``page_size`` (None turns it off)."""
        self.tag_page_size = page_size

    def clear(self) -> None:
        """Remove every fault rule (held requests are released)."""
        self.rules.clear()
        self._release.set()

    def clear_log(self) -> None:
        """Forget the request log (``requests`` / ``hits``)."""
        self.requests.clear()

    def hits(self, method: str | None, path_substring: str) -> int:
        """Requests seen so far whose method matches (None/``"*"`` = any) and whose
        path+query contains ``path_substring``."""
        return sum(
            1 for m, p in self.requests if _method_matches(method, m) and path_substring in p
        )

    async def wait_blocked(self, count: int = 1, max_wait: float = 10.0) -> None:
        """Wait until at least ``count`` requests are held by :meth:`block`
        (``TimeoutError`` after ``max_wait`` seconds)."""
        async with asyncio.timeout(max_wait):
            while self._waiting < count:
                self._blocked_changed.clear()
                await self._blocked_changed.wait()

    def _add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def _take(self, kind: str, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.kind == kind and rule.matches(method, path):
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule
        return None

    # ------------------------------------------------------------------ lifecycle
    async def astart(self) -> Self:
        """Start listening."""
        if self._runner is not None:
            return self
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, auto_decompress=False, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
        except BaseException:
            await runner.cleanup()
            await self._session.close()
            raise
        self._runner = runner
        return self

    async def astop(self) -> None:
        """Stop listening (held requests are released first)."""
        self._release.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # ------------------------------------------------------------------ proxying
    def _rewrite(self, value: str) -> str:
        return value.replace(self.upstream, self.url) if self.upstream in value else value

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.raw_path
        self.requests.append((method, path))

        rule = self._take("fail", method, path)
        if rule is not None:
            return web.Response(status=rule.status, headers=rule.headers, body=rule.body)
        if self._take("block", method, path) is not None:
            self._waiting += 1
            self._blocked_changed.set()
            try:
                await self._release.wait()
            finally:
                self._waiting -= 1

        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        headers.popall("Accept-Encoding", None)
        headers["Accept-Encoding"] = "identity"
        target = path
        tags_match = _TAGS_LIST.match(request.path) if method == "GET" else None
        paginate = self.tag_page_size is not None and tags_match is not None
        if paginate:
            target = request.path  # fetch the full list, page it here
        assert self._session is not None
        try:
            upstream = await self._session.request(
                method,
                self.upstream + target,
                headers=headers,
                data=request.content if request.body_exists else None,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError) as exc:
            return web.Response(status=502, text=f"fault proxy: upstream unreachable: {exc}")

        try:
            if paginate and upstream.status == 200 and tags_match is not None:
                return await self._tags_page(request, upstream, tags_match.group("name"))
            return await self._relay(request, upstream)
        finally:
            upstream.release()

    async def _tags_page(
        self, request: web.Request, upstream: aiohttp.ClientResponse, name: str
    ) -> web.Response:
        assert self.tag_page_size is not None
        data = json.loads(await upstream.read())
        tags = sorted(data.get("tags") or [])
        last = request.query.get("last")
        if last:
            tags = [t for t in tags if t > last]
        size = self.tag_page_size
        if request.query.get("n", "").isdigit():
            size = min(size, int(request.query["n"]))
        page, more = tags[:size], len(tags) > size
        headers = {"Docker-Distribution-Api-Version": "registry/2.0"}
        if more and page:
            query = {"last": page[-1], "n": str(size)}
            next_url = URL.build(path=f"/v2/{name}/tags/list", query=query)
            headers["Link"] = f'<{next_url}>; rel="next"'
        return web.json_response({"name": data.get("name", name), "tags": page}, headers=headers)

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        method, path = request.method, request.raw_path
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() in _HOP_BY_HOP:
                continue
            if key.lower() in ("location", "www-authenticate", "link"):
                value = self._rewrite(value)
            resp.headers.add(key, value)
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        await resp.prepare(request)
        if method == "HEAD" or upstream.status in (204, 304):
            await resp.write_eof()
            return resp

        corrupt = self._take("corrupt", method, path) is not None
        slow = self._take("slow", method, path)
        reset = self._take("reset", method, path)
        cut = reset.after_bytes if reset is not None else 0
        if reset is not None and upstream.content_length:
            cut = min(cut, upstream.content_length - 1)  # always lose at least one byte
        sent = 0
        chunk_size = _CHUNK
        if slow is not None and slow.bytes_per_sec > 0:
            chunk_size = max(1, min(_CHUNK, int(slow.bytes_per_sec / 10) or 1))
        loop = asyncio.get_running_loop()
        started = loop.time()
        async for chunk in upstream.content.iter_chunked(chunk_size):
            if not chunk:
                continue
            if corrupt:
                buf = bytearray(chunk)
                buf[0] ^= 0xFF
                buf[len(buf) // 2] ^= 0x55
                chunk = bytes(buf)
                corrupt = False
            if reset is not None and sent + len(chunk) > cut:
                head = chunk[: max(0, cut - sent)]
                if head:
                    await resp.write(head)
                self._abort(request)
                return resp
            if slow is not None and slow.bytes_per_sec > 0:
                # pace so that `sent + chunk` bytes go out no sooner than the rate allows
                due = started + (sent + len(chunk)) / slow.bytes_per_sec
                await asyncio.sleep(max(0.0, due - loop.time()))
            await resp.write(chunk)
            sent += len(chunk)
        if reset is not None:  # empty or unsized body: cut at the end
            self._abort(request)
            return resp
        await resp.write_eof()
        return resp

    @staticmethod
    def _abort(request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.abort()
