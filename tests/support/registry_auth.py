"""A pull client's side of the Docker token flow, for raw aiohttp tests of the registry.

`DockerTokenAuth` is an aiohttp client middleware: on a `401` with a `Bearer` challenge it
asks the challenge's realm for a token (with Basic principal + API token, or anonymously),
caches it per scope and retries once, as docker/podman/skopeo do. The tests of the registry
endpoint use it so that they run against the server as shipped (access control on).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp import ClientRequest, ClientResponse, hdrs

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> dict[str, str]:
    """`Bearer realm="...",service="...",scope="..."` -> its parameters ({} if not Bearer)."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "bearer":
        return {}
    return dict(_PARAM.findall(rest))


class DockerTokenAuth:
    """Client middleware: answer Bearer challenges with tokens from the realm."""

    def __init__(self, user: str = "", secret: str = "") -> None:
        basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
        self._headers = {hdrs.AUTHORIZATION: f"Basic {basic}"} if user else {}
        self._tokens: dict[str, str] = {}
        self.token_requests = 0

    async def token(self, session: Any, challenge: dict[str, str]) -> str:
        params = {"service": challenge.get("service", "")}
        if challenge.get("scope"):
            params["scope"] = challenge["scope"]
        self.token_requests += 1
        async with session.get(
            challenge["realm"], params=params, headers=self._headers, middlewares=()
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        return str(body["token"])

    async def __call__(self, request: ClientRequest, handler: Any) -> ClientResponse:
        scope_key = f"{request.method} {request.url.path}"
        cached = self._tokens.get(scope_key)
        if cached:
            request.headers[hdrs.AUTHORIZATION] = f"Bearer {cached}"
        response = await handler(request)
        if response.status != 401:
            return response
        challenge = parse_challenge(response.headers.get(hdrs.WWW_AUTHENTICATE, ""))
        if "realm" not in challenge:
            return response
        token = await self.token(request.session, challenge)
        self._tokens[scope_key] = token
        request.headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        response.release()
        return await handler(request)
