"""Access control of the registry endpoint: the one aiohttp middleware and `GET /token`.

This is the Docker token flow that docker, podman, skopeo and containerd speak
(https://distribution.github.io/distribution/spec/auth/token/):

1. a request without a usable bearer token gets `401` with
   `WWW-Authenticate: Bearer realm="<this server>/token",service="mirror",
   scope="repository:<base_path>:pull"`;
2. the client calls `GET /token?service=mirror&scope=...` with Basic credentials (principal
   name + API token), or none for public distributions;
3. the token endpoint answers a short-lived JWT (HS256, PyJWT; the key is generated 0600 into
   the data dir) listing the actions `policy.may` allows on each requested name;
4. the client retries with `Authorization: Bearer <jwt>`; the middleware checks signature,
   expiry, audience and that the JWT lists the base path and action, then puts the caller on
   the request (`request[PRINCIPAL]`) for handlers (the push helper records it).

A `public` distribution is pulled without any token. JWTs are stateless: revoking an API
token stops new JWTs at once; one already issued works until it expires
(`--registry-token-seconds`, default 300).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from server.access import audit
from server.access.model import ANONYMOUS, NO_AUTH, Action, Principal
from server.access.policy import may
from server.access.store import AccessStore
from server.domain.rules import is_oci_name
from server.registry import errors
from server.store.serving import Served

log = logging.getLogger(__name__)

SERVICE = "mirror"
ISSUER = "mirror"
ALGORITHM = "HS256"
REQUEST_PRINCIPAL = web.RequestKey("principal", Principal)
"""`request[REQUEST_PRINCIPAL]`: who calls (ANONYMOUS without a token); the push hook."""

# The name a /v2 path acts on, and whether it pushes. Paths outside these patterns name no
# repository (`/v2/`, `/v2/_catalog`, unknown routes answered 404 by the app).
_NAMED = re.compile(
    r"^/(?:extensions/)?v2/(?P<name>.+?)/"
    r"(?:tags/list|manifests/[^/]+|blobs/uploads(?:/.*)?|blobs/[^/]+|referrers/[^/]+"
    r"|signatures/[^/]+)$"
)
_READ_METHODS = ("GET", "HEAD")


def new_signing_key() -> bytes:
    return secrets.token_hex(32).encode()


@dataclass(frozen=True, slots=True)
class Grant:
    """What a registry token allows on one name: `repository:<name>:<actions>`."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, scope: str) -> Grant | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


# How many verified tokens `RegistryTokens.verify` remembers. A client (docker, podman, a CI
# runner) reuses one bearer token for every request of a pull; without the memo each request
# paid a signature check, base64 and two JSON parses (~40 us of a ~300 us manifest answer).
VERIFIED_MEMO_SIZE = 4096


class RegistryTokens:
    """Issues and verifies the registry's bearer tokens (JWTs)."""

    def __init__(self, key: bytes, lifetime: int) -> None:
        self._key = key
        self.lifetime = lifetime
        # token -> its claims, for tokens whose signature already checked out. Only `exp` and
        # `nbf` change their verdict over time, so a hit re-checks those two; the memo keeps
        # nothing a fresh decode would not accept (JWTs here are stateless: see the module).
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, subject: str, grants: list[Grant]) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
            "access": [g.claim() for g in grants],
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid token; None when forged, tampered, expired or foreign."""
        claims = self._verified.get(token)
        if claims is not None:
            now = time.time()
            if claims["nbf"] <= now < claims["exp"]:
                return claims
            del self._verified[token]
            return None
        claims = self._decode(token)
        if claims is not None and isinstance(claims.get("nbf"), int):
            if len(self._verified) >= VERIFIED_MEMO_SIZE:
                # Oldest first (dicts keep insertion order): a burst of one-off tokens
                # cannot pin memory, and a busy client's token is simply verified again.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> dict[str, Any] | None:
        try:
            return jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],  # never "none", never an asymmetric confusion
                audience=SERVICE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None


def _allows(claims: dict[str, Any], name: str, action: str) -> bool:
    for entry in claims.get("access") or ():
        if (
            isinstance(entry, dict)
            and entry.get("type") == "repository"
            and entry.get("name") == name
            and action in (entry.get("actions") or ())
        ):
            return True
    return False


class RegistryAccess:
    """The token endpoint and the middleware, over the access store and the policy."""

    def __init__(
        self,
        store: AccessStore,
        tokens: RegistryTokens,
        resolve: Callable[[str], Awaitable[Served | None]],
        *,
        enabled: bool,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._resolve = resolve  # the registry's cached base-path lookup
        self._enabled = enabled

    async def _target(self, base_path: str) -> tuple[str, bool] | None:
        """(repository id, public) served at `base_path`, or None."""
        served = await self._resolve(base_path)
        return None if served is None else (served.repository_id, served.public)

    # -- GET /token --------------------------------------------------------------------
    async def token_endpoint(self, request: web.Request) -> web.Response:
        principal = await self._basic_principal(request)
        if principal is None:
            return self._unauthorized(request, "", "invalid credentials", realm_only=True)
        grants: list[Grant] = []
        for scope in request.query.getall("scope", []):
            for part in scope.split(" "):
                wanted = Grant.parse(part)
                if wanted is not None:
                    granted = await self._grant(principal, wanted)
                    if granted is not None:
                        grants.append(granted)
        token = self._tokens.issue(principal.name, grants)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": self._tokens.lifetime,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def _basic_principal(self, request: web.Request) -> Principal | None:
        """The principal of the Basic credentials; ANONYMOUS without any; None when bad."""
        header = request.headers.get("Authorization", "")
        if not header:
            return ANONYMOUS
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return self._fail(request, "-", "not Basic credentials")
        try:
            user, sep, secret = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return self._fail(request, "-", "malformed Basic credentials")
        found = await self._store.authenticate(secret) if sep else None
        if found is None or found.name != user:
            return self._fail(request, user or "-", "unknown, expired or revoked token")
        return found

    def _fail(self, request: web.Request, user: str, reason: str) -> None:
        audit.record(
            principal=user,
            method="GET /token",
            resource=" ".join(request.query.getall("scope", [])),
            result="UNAUTHENTICATED",
            reason=reason,
            peer=request.remote or "",
        )
        return None

    async def _grant(self, principal: Principal, wanted: Grant) -> Grant | None:
        if wanted.type == "registry" and wanted.name == "catalog":
            return Grant("registry", "catalog", ("*",))  # the catalog filters by caller
        if wanted.type != "repository":
            return None
        target = await self._target(wanted.name)
        # An unknown name is granted only to global roles (they learn NAME_UNKNOWN; anyone
        # else keeps getting 401 and learns nothing about which names exist).
        repository, public = target if target is not None else (None, False)
        allowed = tuple(
            action
            for action in wanted.actions
            if action in (Action.PULL, Action.PUSH)
            and may(principal, Action(action), repository, public=public)
        )
        return Grant("repository", wanted.name, allowed) if allowed else None

    # -- the middleware ------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path == "/token" or not (path.startswith("/v2") or path.startswith("/extensions/")):
            return await handler(request)
        if not self._enabled:
            request[REQUEST_PRINCIPAL] = NO_AUTH
            return await handler(request)
        claims: dict[str, Any] | None = None
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            claims = self._tokens.verify(header[7:].strip())
            if claims is None:
                audit.record(
                    principal="-",
                    method=f"{request.method} {path}",
                    resource="",
                    result="UNAUTHENTICATED",
                    reason="invalid, expired or tampered bearer token",
                    peer=request.remote or "",
                )
                return self._unauthorized(request, "", "invalid token", error="invalid_token")
        request[REQUEST_PRINCIPAL] = (
            Principal(name=str(claims.get("sub", ""))) if claims else ANONYMOUS
        )
        named = _NAMED.match(path)
        if named is None:
            # `/v2/`, `/v2/_catalog` (filtered per caller by the handler) and unknown paths:
            # any valid token will do; without one, the challenge tells clients the realm.
            if claims is None:
                scope = "registry:catalog:*" if path == "/v2/_catalog" else ""
                return self._unauthorized(request, scope, "authentication required")
            return await handler(request)
        name = named["name"]
        if not is_oci_name(name):
            # No distribution can have this name: the handler answers NAME_INVALID, and the
            # name never reaches a header (it may hold anything the path could carry).
            return await handler(request)
        action = Action.PULL if request.method in _READ_METHODS else Action.PUSH
        if action is Action.PULL and claims is None:
            target = await self._target(name)
            if target is not None and target[1]:  # public: anonymous pull
                return await handler(request)
        if claims is not None and _allows(claims, name, action):
            return await handler(request)
        if claims is not None and action is Action.PUSH:
            # A known caller the policy refuses gets 403 DENIED (a new token would not help);
            # one that may push but holds a pull-only token gets 401 to fetch a push token.
            refused = await self._refuse_push(request, name)
            if refused is not None:
                return refused
        # Clients push with a `pull,push` token (they read blobs back while pushing).
        scope = f"repository:{name}:{'pull,push' if action is Action.PUSH else action}"
        error = "insufficient_scope" if claims is not None else ""
        return self._unauthorized(request, scope, "authentication required", error=error)

    async def _refuse_push(self, request: web.Request, name: str) -> web.Response | None:
        """403 DENIED when the (authenticated) caller may not push into `name`, else None."""
        target = await self._target(name)
        repository = target[0] if target is not None else None
        caller = await self.caller(request)
        if caller.is_anonymous or may(caller, Action.PUSH, repository):
            return None
        return self._denied(request, caller, Action.PUSH, repository or name)

    # -- the push seam (`PushAccess` in server/registry/push.py) ---------------------------
    async def authorize(
        self, request: web.Request, repository_id: str, action: str, *, public: bool = False
    ) -> str | web.Response:
        """The caller's name if the policy lets it `action` ("push", or "pull" for the source
        of a mount) on `repository_id`; else 401 with the challenge (anonymous) or 403 DENIED."""
        wanted = Action.PUSH if action == "push" else Action.PULL
        caller = await self.caller(request)
        if may(caller, wanted, repository_id, public=public):
            return caller.name
        if caller.is_anonymous:
            name = request.match_info.get("name", "")
            scope = f"repository:{name}:pull,push" if is_oci_name(name) else ""
            return self._unauthorized(request, scope, "authentication required")
        return self._denied(request, caller, wanted, repository_id)

    def _denied(
        self, request: web.Request, caller: Principal, action: Action, repository: str
    ) -> web.Response:
        audit.record(
            principal=caller.name,
            method=f"{request.method} {request.path}",
            resource=f"repositories/{repository}",
            result="DENIED",
            reason=f"may not {action}",
            peer=request.remote or "",
        )
        return errors.error_response(
            errors.DENIED,
            {"repository": f"repositories/{repository}", "action": str(action)},
            head=request.method == "HEAD",
            message=f"principals/{caller.name} may not {action} repositories/{repository}",
        )

    async def caller(self, request: web.Request) -> Principal:
        """The full principal of a request (role and grants), for per-item decisions such as
        `_catalog`; ANONYMOUS when unknown."""
        found = request.get(REQUEST_PRINCIPAL, ANONYMOUS)
        if found is NO_AUTH or found.is_anonymous:
            return found
        return await self._store.find_principal(found.name) or ANONYMOUS

    def _unauthorized(
        self,
        request: web.Request,
        scope: str,
        message: str,
        *,
        error: str = "",
        realm_only: bool = False,
    ) -> web.Response:
        realm = f"{request.scheme}://{request.host}/token"
        challenge = f'Bearer realm="{realm}",service="{SERVICE}"'
        if scope:
            challenge += f',scope="{scope}"'
        if error:
            challenge += f',error="{error}"'
        response = errors.error_response(
            errors.UNAUTHORIZED,
            {"scope": scope} if scope else None,
            head=request.method == "HEAD",
            message=message,
        )
        if realm_only:
            response.headers["WWW-Authenticate"] = f'Basic realm="{SERVICE}"'
        else:
            response.headers["WWW-Authenticate"] = challenge
        return response
