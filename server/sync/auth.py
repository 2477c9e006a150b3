"""Registry authentication: anonymous, Basic, and the Docker token flow.

The token flow (https://distribution.github.io/distribution/spec/auth/token/): a 401 carries
`WWW-Authenticate: Bearer realm=..,service=..,scope=..`; we GET the realm with the remote's
credentials (Basic) and retry with `Authorization: Bearer <token>`. Tokens are cached per
scope until shortly before they expire. Safety: credentials go only to the registry host and a
realm on the same host or registrable domain (Public Suffix List; see `origins`) or
allow-listed; never https -> http.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import aiohttp

from server.domain import strictjson
from server.domain.errors import (
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from server.domain.resources import Remote
from server.sync.origins import (
    NetworkPolicy,
    Origin,
    PrivateAddressRefused,
    normal_host,
    registrable_domain,
)
from server.sync.session import ProxySettings, basic_header

MAX_TOKEN_BYTES = 1024 * 1024
# Fields of a token response (distribution's token spec); case variants are refused.
TOKEN_KEYS = ("token", "access_token", "expires_in", "issued_at", "refresh_token")
DEFAULT_TOKEN_LIFETIME = 60.0
MAX_TOKEN_LIFETIME = 86_400.0
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed WWW-Authenticate challenge."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


async def read_capped(response: aiohttp.ClientResponse, cap: int, host: str, what: str) -> bytes:
    """The body, refusing more than `cap` bytes (the size caps of the safety rules)."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise UpstreamProtocolError(
            f"{what} from {host} is {declared} bytes, more than the {cap} allowed",
            host=host,
            reason="UPSTREAM_RESPONSE_TOO_LARGE",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise UpstreamProtocolError(
                f"{what} from {host} exceeds {cap} bytes",
                host=host,
                reason="UPSTREAM_RESPONSE_TOO_LARGE",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_token_response(body: bytes, host: str) -> tuple[str, float]:
    """(token, lifetime in seconds) of a token service's answer; UpstreamProtocolError if it
    is not strict JSON with a token. A missing, absurd or non-finite `expires_in` gives the
    spec's default of 60 s; more than a day is taken as a day."""
    try:
        data = strictjson.loads(body, spec_keys=TOKEN_KEYS)
        token = data.get("token") or data.get("access_token")
        lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError, OverflowError) as exc:
        raise UpstreamProtocolError(
            f"token response is not valid: {exc}", host=host, reason="UPSTREAM_TOKEN_INVALID"
        ) from exc
    if not isinstance(token, str) or not token:
        raise UpstreamProtocolError(
            "token response carries no token", host=host, reason="UPSTREAM_TOKEN_INVALID"
        )
    if not math.isfinite(lifetime) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, min(lifetime, MAX_TOKEN_LIFETIME)


class Authorizer:
    """Holds the credentials state of one sync against one registry."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        remote: Remote,
        registry_url: str,
        policy: NetworkPolicy | None = None,
    ) -> None:
        self._session = session
        self._remote = remote
        self._origin = Origin.of(registry_url)
        self._scheme = self._origin.scheme
        self._host = self._origin.host
        self._policy = policy
        self._tokens: dict[str, tuple[str, float]] = {}
        self._basic = False  # the registry asked for Basic auth
        self._lock = asyncio.Lock()

    def may_receive_credentials(self, url: str) -> bool:
        """Only the registry itself gets Authorization (not blob CDNs, foreign URLs, nor a
        plain-http page or another port of the same host): same scheme, host and port."""
        return Origin.of(url) == self._origin

    def header_for(self, scope: str) -> str | None:
        token = self._tokens.get(scope)
        if token is not None and token[1] > time.monotonic():
            return f"Bearer {token[0]}"
        if self._basic and self._remote.username:
            return basic_header(self._remote.username, self._remote.password)
        return None

    async def answer(
        self,
        challenge_header: str | None,
        scope: str,
        proxy: ProxySettings,
        sent: str | None,
    ) -> None:
        """React to a 401 of a request sent with Authorization `sent`: obtain a token or switch
        to Basic; raise if we cannot. Concurrent 401s share one token request."""
        async with self._lock:
            current = self.header_for(scope)
            if current is not None and current != sent:
                return  # another request already refreshed the credentials
            await self._answer(challenge_header, scope, proxy)

    async def _answer(self, challenge_header: str | None, scope: str, proxy: ProxySettings) -> None:
        challenge = parse_challenge(challenge_header)
        self._tokens.pop(scope, None)
        if challenge is None:
            raise UpstreamAuthError(
                f"{self._host} refused access without saying how to authenticate",
                host=self._host,
            )
        if challenge.scheme == "basic":
            if not self._remote.username or self._basic:
                raise UpstreamAuthError(
                    f"{self._host} requires credentials"
                    + (" and refused the ones configured" if self._basic else ""),
                    host=self._host,
                )
            self._basic = True
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise UpstreamAuthError(
                f"{self._host} asked for unsupported authentication {challenge.scheme!r}",
                host=self._host,
            )
        realm = challenge.params["realm"]
        self._check_realm(realm)
        query = {"service": challenge.params.get("service", "")}
        query["scope"] = challenge.params.get("scope") or scope
        headers = {}
        if self._remote.username:
            headers["Authorization"] = basic_header(self._remote.username, self._remote.password)
        query_string = urlencode({k: v for k, v in query.items() if v})
        url = f"{realm}{'&' if '?' in realm else '?'}{query_string}"
        request_kwargs = dict(proxy.kwargs(url))
        headers.update(request_kwargs.pop("extra_headers", {}))  # type: ignore[arg-type]
        try:
            async with self._session.get(
                url, headers=headers, allow_redirects=False, **request_kwargs
            ) as resp:
                body = await read_capped(resp, MAX_TOKEN_BYTES, self._host, "token response")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(getattr(exc, "os_error", None), PrivateAddressRefused):
                raise self._realm_refused(realm, "resolves to a private address") from exc
            raise UpstreamUnavailable(
                f"token service {urlsplit(realm).netloc} unreachable: {exc.__class__.__name__}",
                host=self._host,
            ) from exc
        if status in (401, 403):
            raise UpstreamAuthError(
                f"token service {urlsplit(realm).netloc} refused the credentials of "
                f"{self._remote.name} (HTTP {status})",
                host=self._host,
                httpStatus=status,
            )
        if status == 429 or status >= 500:
            raise UpstreamUnavailable(
                f"token service answered HTTP {status}", host=self._host, status=status
            )
        if status != 200:
            raise UpstreamAuthError(
                f"token service answered HTTP {status}", host=self._host, httpStatus=status
            )
        token, lifetime = parse_token_response(body, self._host)
        # Refresh a little early so a token never expires mid-request.
        self._tokens[scope] = (token, time.monotonic() + max(lifetime - 10, lifetime / 2))

    def _realm_refused(self, realm: str, why: str) -> UpstreamAuthError:
        return UpstreamAuthError(
            f"token realm {realm!r} {why}; refused",
            host=self._host,
            reason="UPSTREAM_REALM_REFUSED",
            realm=realm,
        )

    def _check_realm(self, realm: str) -> None:
        parts = urlsplit(realm)
        host = normal_host(parts.hostname or "")
        if parts.scheme not in ("http", "https") or not host:
            raise UpstreamProtocolError(f"token realm {realm!r} is not a URL", host=self._host)
        if self._scheme == "https" and parts.scheme != "https":
            raise UpstreamAuthError(
                f"token realm {realm!r} would downgrade https to http; refused",
                host=self._host,
                reason="UPSTREAM_REALM_REFUSED",
                realm=realm,
            )
        if self._policy is not None and self._policy.refuses_host(host):
            raise self._realm_refused(realm, "is a private address")
        allowed = host == self._host or registrable_domain(host) == registrable_domain(self._host)
        listed = {normal_host(h) for h in self._remote.token_realm_allowlist}
        if not allowed and host not in listed:
            raise UpstreamAuthError(
                f"token realm host {host!r} is not {self._host!r} nor in its domain; add it to "
                "the remote's token_realm_allowlist to trust it",
                host=self._host,
                reason="UPSTREAM_REALM_REFUSED",
                realm=realm,
            )
