"""RemoteService: remotes, with write-only secrets."""

from __future__ import annotations

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.credentials import check_secret_destinations
from server.domain.errors import Rule, Violations
from server.domain.names import RemoteName, check_id
from server.domain.rules import remote_violations, validate_remote
from server.services import convert
from server.services.errors import unary_errors
from server.services.masks import resolve_mask
from server.services.paging import is_name, next_token, page_of
from server.store.remotes import RemoteStore, merge

_OUTPUT_ONLY = (
    "name",
    "uid",
    "password_set",
    "proxy_password_set",
    "ssl_client_key_set",
    "header_names",
    "create_time",
    "update_time",
)
_MUTABLE = tuple(f.name for f in pb.Remote.DESCRIPTOR.fields if f.name not in _OUTPUT_ONLY)


class RemoteServicer(pb_grpc.RemoteServiceServicer):
    """Translates RemoteService calls to the remote store."""

    def __init__(self, remotes: RemoteStore) -> None:
        self._remotes = remotes

    @unary_errors
    async def CreateRemote(
        self, request: pb.CreateRemoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRemoteResponse:
        # Every bad field in one answer: an invalid id does not hide a bad URL.
        bad = Violations()
        remote_id = bad.check(check_id, request.remote_id, "remote_id")
        remote = None
        if not request.HasField("remote"):
            bad.add("remote", "remote is required", Rule.REQUIRED_FIELD)
        elif remote := bad.check(convert.remote_from_pb, remote_id or "", request.remote):
            bad.extend(remote_violations(remote))
        bad.raise_if_any()
        assert remote is not None
        created = await self._remotes.create(remote)
        return pb.CreateRemoteResponse(remote=convert.remote_to_pb(created))

    @unary_errors
    async def GetRemote(
        self, request: pb.GetRemoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRemoteResponse:
        remote = await self._remotes.get(RemoteName.parse(request.name).remote_id)
        return pb.GetRemoteResponse(remote=convert.remote_to_pb(remote))

    @unary_errors
    async def ListRemotes(
        self, request: pb.ListRemotesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRemotesResponse:
        page = page_of(request.page_size, request.page_token, cursor=is_name)
        remotes, more = await self._remotes.list(page.size, page.cursor)
        return pb.ListRemotesResponse(
            remotes=[convert.remote_to_pb(r) for r in remotes],
            next_page_token=next_token(more, remotes[-1].remote_id if remotes else None),
        )

    @unary_errors
    async def UpdateRemote(
        self, request: pb.UpdateRemoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateRemoteResponse:
        bad = Violations()
        name = bad.check(RemoteName.parse, request.remote.name, "remote.name")
        paths = bad.check(
            resolve_mask,
            request.update_mask,
            request.remote,
            mutable=_MUTABLE,
            output_only=_OUTPUT_ONLY,
        )
        bad.raise_if_any()
        assert name is not None and paths is not None
        current = await self._remotes.get(name.remote_id)
        update = convert.remote_from_pb(name.remote_id, request.remote)
        merged = validate_remote(merge(current, update, paths))
        check_secret_destinations(current, merged, paths)
        saved = await self._remotes.replace(merged) if paths else current
        return pb.UpdateRemoteResponse(remote=convert.remote_to_pb(saved))

    @unary_errors
    async def DeleteRemote(
        self, request: pb.DeleteRemoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRemoteResponse:
        await self._remotes.delete(RemoteName.parse(request.name).remote_id)
        return pb.DeleteRemoteResponse()
