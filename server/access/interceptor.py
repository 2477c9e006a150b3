"""The one gRPC server interceptor of access control: who calls, may they, and the audit.

Authentication: `authorization: Bearer <API token>` metadata, or (when the server requires
client certificates) the verified certificate's common name, which must name a principal.
Missing or bad credentials end the call UNAUTHENTICATED, a known caller without the role
PERMISSION_DENIED (`rules.py` says which action each RPC needs, `policy.may` decides); either
way the servicer never runs. Health and reflection are open.

Streams (Sync, WatchTask) re-check their caller whenever access changes in this process
(`AccessStore.changes`) and every RECHECK_SECONDS (changes made by another process on a
shared database): a revoked token ends the stream UNAUTHENTICATED at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from server.access import audit
from server.access.model import NO_AUTH, Action, Principal
from server.access.policy import may
from server.access.rules import RULES, UNKNOWN, Rule, is_mutating, is_open
from server.access.store import AccessStore
from server.domain.errors import MirrorError, PermissionDenied, Unauthenticated
from server.services.errors import to_status

log = logging.getLogger(__name__)

RECHECK_SECONDS = 5.0

_CURRENT: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "mirror_principal", default=None
)


def current_principal() -> Principal | None:
    """The principal of the call being served (None outside a call)."""
    return _CURRENT.get()


@dataclass(frozen=True, slots=True)
class _Credential:
    bearer: str = ""
    common_name: str = ""

    @property
    def kind(self) -> str:
        return "token" if self.bearer else "certificate" if self.common_name else "none"


class AccessInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates and authorises every call but health and reflection; audits changes."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        trust_client_certificates: bool = False,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self._store_or_none: AccessStore | None = None
        self._enabled = enabled
        self._trust_certificates = trust_client_certificates
        self._recheck = recheck_seconds

    def bind(self, store: AccessStore) -> None:
        """Attach the access store (the server is built before the database opens)."""
        self._store_or_none = store

    @property
    def _store(self) -> AccessStore:
        if self._store_or_none is None:
            raise RuntimeError("AccessInterceptor.bind() was not called before serving")
        return self._store_or_none

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open(method):
            return handler
        rule = RULES.get(method, UNKNOWN)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, rule, handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, rule, handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        raise RuntimeError(f"{method}: client-streaming RPCs are not guarded; add them here")

    # -- wrappers --------------------------------------------------------------------
    def _unary(self, method: str, rule: Rule, inner: Any) -> Any:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal, _credential, _checks = await self._admit(method, rule, request, context)
            reset = _CURRENT.set(principal)
            try:
                return await inner(request, context)
            finally:
                _CURRENT.reset(reset)
                self._audit(method, principal, request, context)

        return unary

    def _stream(self, method: str, rule: Rule, inner: Any) -> Any:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            principal, credential, checks = await self._admit(method, rule, request, context)
            reset = _CURRENT.set(principal)
            lost = asyncio.ensure_future(self._until_lost(credential, checks))
            responses = inner(request, context).__aiter__()
            following: asyncio.Future[Any] | None = None
            try:
                while True:
                    following = asyncio.ensure_future(responses.__anext__())
                    await asyncio.wait({following, lost}, return_when=asyncio.FIRST_COMPLETED)
                    if following.done():
                        try:
                            response = following.result()
                        except StopAsyncIteration:
                            return
                        yield response
                        continue
                    error = lost.result()
                    self._record_failure(method, context, error, principal.name)
                    await context.abort_with_status(to_status(error))
            finally:
                # The client went away, the caller lost access, or the stream ended: stop
                # the servicer's generator too, and the re-check.
                lost.cancel()
                if following is not None and not following.done():
                    following.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await following
                with contextlib.suppress(ValueError):  # finalised in another context
                    _CURRENT.reset(reset)
                self._audit(method, principal, request, context)

        return stream

    # -- the checks ------------------------------------------------------------------
    def _credential(self, context: grpc.aio.ServicerContext) -> _Credential:
        bearer = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, rest = value.strip().partition(" ")
                if scheme.lower() == "bearer":
                    bearer = rest.strip()
        common_name = ""
        if self._trust_certificates:
            names = (context.auth_context() or {}).get("x509_common_name") or []
            if names:
                common_name = names[0].decode("utf-8", "replace")
        return _Credential(bearer, common_name)

    async def _authenticate(self, credential: _Credential) -> Principal | MirrorError:
        if credential.bearer:
            found = await self._store.authenticate(credential.bearer)
            if found is None:
                return Unauthenticated(
                    "the API token is unknown, expired or revoked", reason="TOKEN_INVALID"
                )
            return found
        if credential.common_name:
            found = await self._store.find_principal(credential.common_name)
            if found is None:
                return Unauthenticated(
                    "the client certificate names no principal",
                    reason="CERTIFICATE_UNKNOWN",
                    commonName=credential.common_name,
                )
            return found
        return Unauthenticated(
            "credentials required: send `authorization: Bearer <token>` metadata "
            "(mirrorctl: --token, MIRROR_TOKEN or MIRROR_TOKEN_FILE)",
            reason="CREDENTIALS_MISSING",
        )

    def _authorise(
        self, principal: Principal, action: Action, repository: str | None
    ) -> MirrorError | None:
        if may(principal, action, repository):
            return None
        where = f"repository {repository!r}" if repository else "the service"
        return PermissionDenied(
            f"principal {principal.name!r} may not {action} on {where}",
            reason="PERMISSION_DENIED",
            principal=principal.resource_name,
            action=str(action),
            repository=f"repositories/{repository}" if repository else None,
        )

    async def _checks(
        self, method: str, rule: Rule, request: Any
    ) -> list[tuple[Action, str | None]]:
        """(action, repository) pairs the call needs; a scope that cannot be read from a
        malformed request falls back to the service as a whole (global roles only)."""

        async def scope(of: Any) -> str | None:
            try:
                return await of(request, self._store)
            except MirrorError:  # e.g. the database is away: the caller learns that
                raise
            except Exception:
                log.debug("no repository scope for %s", method, exc_info=True)
                return None

        checks = [(rule.action_for(request), await scope(rule.scope))]
        if rule.reads is not None:
            source = await scope(rule.reads)
            if source is not None:
                checks.append((Action.READ, source))
        return checks

    def _refusal(
        self, principal: Principal, checks: list[tuple[Action, str | None]]
    ) -> MirrorError | None:
        for action, repository in checks:
            refused = self._authorise(principal, action, repository)
            if refused is not None:
                return refused
        return None

    async def _admit(
        self, method: str, rule: Rule, request: Any, context: grpc.aio.ServicerContext
    ) -> tuple[Principal, _Credential, list[tuple[Action, str | None]]]:
        if not self._enabled:
            return NO_AUTH, _Credential(), []
        credential = self._credential(context)
        try:
            found = await self._authenticate(credential)
            checks = (
                [] if isinstance(found, MirrorError) else await self._checks(method, rule, request)
            )
        except MirrorError as exc:  # DatabaseUnavailable and the like: UNAVAILABLE, not UNKNOWN
            await context.abort_with_status(to_status(exc))
            raise AssertionError("unreachable: abort_with_status raises") from None
        if isinstance(found, MirrorError):
            self._record_failure(method, context, found, "-")
            await context.abort_with_status(to_status(found))
            raise AssertionError("unreachable: abort_with_status raises")
        refused = self._refusal(found, checks)
        if refused is not None:
            self._record_failure(method, context, refused, found.name, request)
            await context.abort_with_status(to_status(refused))
        return found, credential, checks

    async def _until_lost(
        self, credential: _Credential, checks: list[tuple[Action, str | None]]
    ) -> MirrorError:
        """Wait until the caller of an open stream loses access; the reason why."""
        if not self._enabled:
            await asyncio.Event().wait()
        while True:
            await self._store.changes.wait(self._recheck)
            try:
                found = await self._authenticate(credential)
            except Exception:  # a database hiccup must not end a healthy stream
                log.warning("re-checking the caller of a stream failed", exc_info=True)
                continue
            if isinstance(found, MirrorError):
                return found
            refused = self._refusal(found, checks)
            if refused is not None:
                return refused

    # -- audit -----------------------------------------------------------------------
    def _record_failure(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        error: MirrorError,
        principal: str,
        request: Any = None,
    ) -> None:
        audit.record(
            principal=principal,
            method=method,
            resource=audit.resource_of(request) if request is not None else "",
            result=error.code,
            reason=error.reason,
            peer=context.peer() or "",
        )

    def _audit(
        self, method: str, principal: Principal, request: Any, context: grpc.aio.ServicerContext
    ) -> None:
        if not is_mutating(method):
            return
        code = context.code() or grpc.StatusCode.OK
        audit.record(
            principal=principal.name,
            method=method,
            resource=audit.resource_of(request),
            result=code.name if isinstance(code, grpc.StatusCode) else str(code),
        )
