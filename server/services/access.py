"""AccessService: principals, API tokens and grants (admin only, see server/access/rules.py)."""

from __future__ import annotations

from datetime import UTC

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.access.model import GRANT_ROLES, ApiToken, Grant, Principal, Role
from server.access.store import MUTABLE_FIELDS, AccessStore
from server.domain.errors import InvalidArgument
from server.domain.names import RepositoryName, check_id
from server.services.convert import timestamp
from server.services.errors import unary_errors
from server.services.masks import resolve_mask
from server.services.paging import is_name, is_number, next_token, page_of
from server.store.schema import utcnow

_ROLE_TO_PB = {
    Role.NONE: pb.ROLE_UNSPECIFIED,
    Role.VIEWER: pb.ROLE_VIEWER,
    Role.EDITOR: pb.ROLE_EDITOR,
    Role.ADMIN: pb.ROLE_ADMIN,
}
_ROLE_FROM_PB = {v: k for k, v in _ROLE_TO_PB.items()}
_OUTPUT_ONLY = ("name", "create_time", "update_time")


def _role(value: int, field: str) -> Role:
    try:
        return _ROLE_FROM_PB[value]
    except KeyError:
        raise InvalidArgument(f"unknown role {value}", field=field) from None


def principal_to_pb(principal: Principal) -> pb.Principal:
    return pb.Principal(
        name=principal.resource_name,
        role=_ROLE_TO_PB[principal.role],
        description=principal.description,
        create_time=timestamp(principal.create_time),
        update_time=timestamp(principal.update_time),
    )


def token_to_pb(token: ApiToken) -> pb.Token:
    return pb.Token(
        name=token.name,
        description=token.description,
        create_time=timestamp(token.create_time),
        expire_time=timestamp(token.expire_time),
    )


def grant_to_pb(grant: Grant) -> pb.Grant:
    return pb.Grant(
        name=grant.name,
        repository=f"repositories/{grant.repository_id}",
        role=_ROLE_TO_PB[grant.role],
    )


def _principal_id(name: str, field: str) -> str:
    if not name.startswith("principals/"):
        raise InvalidArgument(f"expected principals/{{id}}, got {name!r}", field=field, name=name)
    return check_id(name.removeprefix("principals/"), field)


def _child(name: str, collection: str, field: str) -> tuple[str, str]:
    """`principals/{p}/{collection}/{id}` -> (p, id)."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "principals" or parts[2] != collection:
        raise InvalidArgument(
            f"expected principals/{{id}}/{collection}/{{id}}, got {name!r}",
            field=field,
            name=name,
        )
    return check_id(parts[1], field), parts[3]


class AccessServicer(pb_grpc.AccessServiceServicer):
    """Translates AccessService calls to the access store."""

    def __init__(self, store: AccessStore) -> None:
        self._store = store

    @unary_errors
    async def CreatePrincipal(
        self, request: pb.CreatePrincipalRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePrincipalResponse:
        name = check_id(request.principal_id, "principal_id")
        role = _role(request.principal.role, "principal.role")
        found = await self._store.create_principal(name, role, request.principal.description)
        return pb.CreatePrincipalResponse(principal=principal_to_pb(found))

    @unary_errors
    async def GetPrincipal(
        self, request: pb.GetPrincipalRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPrincipalResponse:
        found = await self._store.get_principal(_principal_id(request.name, "name"))
        return pb.GetPrincipalResponse(principal=principal_to_pb(found))

    @unary_errors
    async def ListPrincipals(
        self, request: pb.ListPrincipalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPrincipalsResponse:
        page = page_of(request.page_size, request.page_token, cursor=is_name)
        found, more = await self._store.list_principals(page.size, page.cursor)
        return pb.ListPrincipalsResponse(
            principals=[principal_to_pb(p) for p in found],
            next_page_token=next_token(more, found[-1].name if found else None),
        )

    @unary_errors
    async def UpdatePrincipal(
        self, request: pb.UpdatePrincipalRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdatePrincipalResponse:
        name = _principal_id(request.principal.name, "principal.name")
        paths = resolve_mask(
            request.update_mask,
            request.principal,
            mutable=MUTABLE_FIELDS,
            output_only=_OUTPUT_ONLY,
        )
        changes: dict[str, object] = {}
        if "role" in paths:
            changes["role"] = _role(request.principal.role, "principal.role")
        if "description" in paths:
            changes["description"] = request.principal.description
        found = await self._store.update_principal(name, changes)
        return pb.UpdatePrincipalResponse(principal=principal_to_pb(found))

    @unary_errors
    async def DeletePrincipal(
        self, request: pb.DeletePrincipalRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeletePrincipalResponse:
        await self._store.delete_principal(_principal_id(request.name, "name"))
        return pb.DeletePrincipalResponse()

    @unary_errors
    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTokenResponse:
        principal = _principal_id(request.parent, "parent")
        expire = None
        if request.token.HasField("expire_time"):
            expire = request.token.expire_time.ToDatetime(tzinfo=UTC)
            if expire <= utcnow():
                raise InvalidArgument(
                    "expire_time must be in the future", field="token.expire_time"
                )
        token, secret = await self._store.create_token(principal, request.token.description, expire)
        return pb.CreateTokenResponse(token=token_to_pb(token), secret=secret)

    @unary_errors
    async def ListTokens(
        self, request: pb.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTokensResponse:
        principal = _principal_id(request.parent, "parent")
        page = page_of(request.page_size, request.page_token, cursor=is_number, parent=principal)
        found, more = await self._store.list_tokens(principal, page.size, page.cursor)
        return pb.ListTokensResponse(
            tokens=[token_to_pb(t) for _, t in found],
            next_page_token=next_token(more, found[-1][0] if found else None, parent=principal),
        )

    @unary_errors
    async def DeleteToken(
        self, request: pb.DeleteTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTokenResponse:
        principal, token_id = _child(request.name, "tokens", "name")
        await self._store.delete_token(principal, token_id)
        return pb.DeleteTokenResponse()

    @unary_errors
    async def CreateGrant(
        self, request: pb.CreateGrantRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateGrantResponse:
        principal = _principal_id(request.parent, "parent")
        repository = RepositoryName.parse(request.grant.repository, "grant.repository")
        role = _role(request.grant.role, "grant.role")
        if role not in GRANT_ROLES:
            raise InvalidArgument(
                "a grant's role is ROLE_VIEWER or ROLE_EDITOR (admin is global only)",
                field="grant.role",
            )
        grant = await self._store.put_grant(principal, repository.repository_id, role)
        return pb.CreateGrantResponse(grant=grant_to_pb(grant))

    @unary_errors
    async def ListGrants(
        self, request: pb.ListGrantsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListGrantsResponse:
        grants = await self._store.list_grants(_principal_id(request.parent, "parent"))
        return pb.ListGrantsResponse(grants=[grant_to_pb(g) for g in grants])

    @unary_errors
    async def DeleteGrant(
        self, request: pb.DeleteGrantRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteGrantResponse:
        principal, repository_id = _child(request.name, "grants", "name")
        await self._store.delete_grant(principal, check_id(repository_id, "name"))
        return pb.DeleteGrantResponse()
