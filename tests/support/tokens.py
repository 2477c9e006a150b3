"""A small Docker-registry token issuer (the "realm" of registry token auth) for tests.

:class:`TokenIssuer` serves the Docker token flow on a free loopback port:

* ``GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]`` with optional
  HTTP Basic credentials (checked against ``users``) returns
  ``{"token", "access_token", "expires_in", "issued_at"}``;
* ``POST /token`` (the OAuth2 variant, ``grant_type=password`` or ``refresh_token``)
  returns ``{"access_token", "token", "expires_in", "issued_at"[, "refresh_token"]}``.

Tokens are JWTs written by hand with ``cryptography`` (no PyJWT): ES256 signed by a
generated P-256 key, whose self-signed certificate is carried in the ``x5c`` header and
is also what the registry gets as ``auth.token.rootcertbundle`` (``cert_pem``).
Claims: ``iss``, ``sub``, ``aud`` (the service), ``exp``, ``nbf``, ``iat``, ``jti`` and
``access: [{type, name, actions}]``.

Wrong credentials get 401. Requests without credentials get 401 too unless
``allow_anonymous=True``, in which case they get tokens limited to ``anonymous_actions``
(pull only by default). ``requests`` counts every request; ``request_log`` records them.

Run it with ``async with TokenIssuer(...)`` on the current loop, or ``start()``/``stop()``
which run it on a private event loop in a daemon thread (for synchronous tests).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = [
    "ALL_ACTIONS",
    "AccessPolicy",
    "TokenIssuer",
    "TokenRequest",
    "b64url",
    "decode_jwt_unverified",
    "parse_scope",
]

ALL_ACTIONS: tuple[str, ...] = ("pull", "push", "delete", "*")
"""Actions granted to authenticated users by the default policy."""

AccessPolicy = Callable[[str | None, str, str, Sequence[str]], Collection[str]]
"""``policy(account_or_None, type, name, requested_actions) -> granted actions``."""


def b64url(data: bytes) -> str:
    """Base64url without padding, as used in JWS compact serialisation."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(header, claims)`` of a compact JWT without checking its signature."""
    header, payload, _sig = token.split(".")
    return json.loads(_b64url_decode(header)), json.loads(_b64url_decode(payload))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """Split ``type:name:actions`` (the name may itself contain ``:``, e.g. a port).

    Returns ``(type, name, [actions])`` or None for a malformed scope.
    """
    first = scope.find(":")
    last = scope.rfind(":")
    if first <= 0 or last == first:
        return None
    actions = [a for a in scope[last + 1 :].split(",") if a]
    return scope[:first], scope[first + 1 : last], actions


@dataclass
class TokenRequest:
    """One request seen by the issuer (kept in :attr:`TokenIssuer.request_log`)."""

    method: str
    account: str | None
    service: str | None
    scopes: list[str]
    status: int
    granted: list[dict[str, Any]] = field(default_factory=list)


class TokenIssuer:
    """Docker token server on ``127.0.0.1:<free port>``; see the module docstring."""

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        service: str = "mirror-test-registry",
        issuer: str = "mirror-test-issuer",
        allow_anonymous: bool = False,
        anonymous_actions: Collection[str] = ("pull",),
        policy: AccessPolicy | None = None,
        expires_in: int = 300,
        port: int | None = None,
    ) -> None:
        """Create the issuer, its P-256 key and self-signed certificate (not started yet).

        ``users`` maps user name to password (default: none, so only anonymous access).
        ``policy`` overrides which actions are granted (default: everything requested for
        authenticated users, ``anonymous_actions`` for anonymous ones).
        """
        from tests.support.registry import free_port  # local import: avoid a cycle

        self.users: dict[str, str] = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.allow_anonymous = allow_anonymous
        self.anonymous_actions = frozenset(anonymous_actions)
        self.policy = policy
        self.expires_in = expires_in
        self.port = port if port is not None else free_port()
        self.requests = 0
        self.request_log: list[TokenRequest] = []
        self._failures: list[tuple[int, int]] = []  # (status, remaining)
        self._refresh_tokens: dict[str, str] = {}
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._make_cert()
        self.cert_pem: bytes = self.cert.public_bytes(serialization.Encoding.PEM)
        self._x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        """The token endpoint, to be used as the registry's ``auth.token.realm``."""
        return f"{self.url}/token"

    @property
    def running(self) -> bool:
        """True while the HTTP server is up (on a loop or in the background thread)."""
        return self._runner is not None or self._thread is not None

    # ------------------------------------------------------------------ scripting
    def fail(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` token requests with ``status`` (no token)."""
        self._failures.append((status, times))

    def make_token(
        self,
        subject: str | None,
        access: Sequence[Mapping[str, Any]],
        *,
        expires_in: int | None = None,
        audience: str | None = None,
        not_before: int | None = None,
    ) -> str:
        """Sign and return a compact JWT granting ``access`` (``[{type,name,actions}]``)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject or "",
            "aud": audience or self.service,
            "exp": now + (self.expires_in if expires_in is None else expires_in),
            "nbf": now - 10 if not_before is None else not_before,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [dict(a) for a in access],
        }
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{b64url(signature)}"

    # ------------------------------------------------------------------ lifecycle
    async def astart(self) -> Self:
        """Start serving on the running event loop."""
        if self.running:
            return self
        app = web.Application()
        app.router.add_get("/token", self._handle)
        app.router.add_post("/token", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    async def astop(self) -> None:
        """Stop serving (works whether started with :meth:`astart` or :meth:`start`)."""
        if self._thread is not None:
            await asyncio.to_thread(self.stop)
            return
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def start(self) -> Self:
        """Start serving on a private event loop in a daemon thread."""
        if self.running:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.astart())
            except BaseException as exc:
                error.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup_runner())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=run, name=f"token-issuer-{self.port}", daemon=True)
        thread.start()
        ready.wait()
        if error:
            thread.join()
            raise error[0]
        self._thread, self._thread_loop = thread, loop
        return self

    async def _cleanup_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def stop(self) -> None:
        """Stop a server started with :meth:`start` (the background-thread mode)."""
        thread, loop = self._thread, self._thread_loop
        if thread is None or loop is None:
            if self._runner is not None:
                raise RuntimeError("issuer runs on an event loop: use `await astop()`")
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = self._thread_loop = None

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # ------------------------------------------------------------------ internals
    def _make_cert(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def _grant(self, account: str | None, scopes: Sequence[str]) -> list[dict[str, Any]]:
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            rtype, name, requested = parsed
            if self.policy is not None:
                allowed = set(self.policy(account, rtype, name, requested))
            elif account is None:
                allowed = set(self.anonymous_actions)
            else:
                allowed = set(ALL_ACTIONS)
            actions = [a for a in requested if a in allowed]
            access.append({"type": rtype, "name": name, "actions": actions})
        return access

    def _check_basic(self, header: str) -> str | None:
        """Return the account for a valid ``Basic`` header, else None."""
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user in self.users and secrets.compare_digest(self.users[user], password):
            return user
        return None

    def _unauthorized(self, entry: TokenRequest, message: str) -> web.Response:
        entry.status = 401
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
            status=401,
            headers={"WWW-Authenticate": f'Basic realm="{self.issuer}"'},
        )

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        entry = TokenRequest(request.method, None, None, [], 200)
        self.request_log.append(entry)
        if self._failures:
            status, remaining = self._failures[0]
            if remaining <= 1:
                self._failures.pop(0)
            else:
                self._failures[0] = (status, remaining - 1)
            entry.status = status
            return web.json_response({"errors": [{"code": "UNAVAILABLE"}]}, status=status)

        refresh: str | None = None
        if request.method == "POST":
            form = await request.post()
            entry.service = str(form.get("service", "")) or None
            entry.scopes = [s for s in str(form.get("scope", "")).split(" ") if s]
            grant_type = str(form.get("grant_type", ""))
            if grant_type == "password":
                user, password = str(form.get("username", "")), str(form.get("password", ""))
                if user not in self.users or not secrets.compare_digest(self.users[user], password):
                    return self._unauthorized(entry, "invalid username or password")
                account: str | None = user
                refresh = secrets.token_urlsafe(24)
                self._refresh_tokens[refresh] = user
            elif grant_type == "refresh_token":
                account = self._refresh_tokens.get(str(form.get("refresh_token", "")))
                if account is None:
                    return self._unauthorized(entry, "invalid refresh token")
            else:
                entry.status = 400
                return web.json_response({"error": "unsupported_grant_type"}, status=400)
        else:
            entry.service = request.query.get("service")
            entry.scopes = [s for v in request.query.getall("scope", []) for s in v.split(" ")]
            header = request.headers.get("Authorization", "")
            if header:
                account = self._check_basic(header)
                if account is None:
                    return self._unauthorized(entry, "invalid username or password")
            elif self.allow_anonymous:
                account = None
            else:
                return self._unauthorized(entry, "authentication required")
            if request.query.get("offline_token") == "true" and account is not None:
                refresh = secrets.token_urlsafe(24)
                self._refresh_tokens[refresh] = account

        if entry.service and entry.service != self.service:
            entry.status = 400
            return web.json_response(
                {"errors": [{"code": "DENIED", "message": f"unknown service {entry.service}"}]},
                status=400,
            )
        entry.account = account
        entry.granted = self._grant(account, entry.scopes)
        token = self.make_token(account, entry.granted)
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return web.json_response(body)
