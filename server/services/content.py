"""ContentService: what a version holds, and what changed between two versions."""

from __future__ import annotations

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from server.domain.content import (
    BlobInfo,
    ContentInfo,
    ManifestInfo,
    Membership,
    SignatureInfo,
    TagInfo,
)
from server.domain.digests import Digest
from server.domain.errors import InvalidArgument, Rule
from server.domain.names import VersionName
from server.domain.plan import ContentKey
from server.domain.resources import CONTENT_TYPES, SIGNATURE
from server.services import convert
from server.services.errors import unary_errors
from server.services.paging import is_change_key, is_content_key, next_token, page_of
from server.store.content_queries import ContentQueries
from server.store.membership import count_by_type

_MEMBERSHIP = {
    pb.MEMBERSHIP_UNSPECIFIED: Membership.PRESENT,
    pb.MEMBERSHIP_PRESENT: Membership.PRESENT,
    pb.MEMBERSHIP_ADDED: Membership.ADDED,
    pb.MEMBERSHIP_REMOVED: Membership.REMOVED,
}


def _content_type(value: str) -> str:
    if value and value not in CONTENT_TYPES:
        raise InvalidArgument(
            f"content_type must be one of {', '.join(CONTENT_TYPES)}, got {value!r}",
            field="content_type",
            reason=Rule.INVALID_ENUM_VALUE,
        )
    return value


def _page(
    keys: list[ContentKey], cursor: list[object] | None, size: int
) -> tuple[list[ContentKey], bool]:
    if cursor is not None:
        after = (str(cursor[0]), int(str(cursor[1])))
        keys = [k for k in keys if k > after]
    return keys[:size], len(keys) > size


def content_to_pb(info: ContentInfo) -> pb.Content:
    match info:
        case BlobInfo():
            return pb.Content(
                blob=pb.Blob(
                    digest=info.digest,
                    size=info.size,
                    media_type=info.media_type,
                    stored=info.stored,
                )
            )
        case ManifestInfo():
            return pb.Content(
                manifest=pb.Manifest(
                    digest=info.digest,
                    media_type=info.media_type,
                    size=info.size,
                    config_digest=info.config_digest,
                    blobs=list(info.blobs),
                    manifests=[
                        pb.ManifestReference(
                            digest=c.digest,
                            media_type=c.media_type,
                            os=c.os,
                            architecture=c.architecture,
                            variant=c.variant,
                        )
                        for c in info.children
                    ],
                    artifact_type=info.artifact_type,
                    subject=info.subject,
                )
            )
        case TagInfo():
            return pb.Content(tag=pb.Tag(name=info.name, manifest_digest=info.manifest_digest))
        case SignatureInfo():
            return pb.Content(
                signature=pb.Signature(
                    name=info.name,
                    digest=info.digest,
                    type=info.type,
                    key_id=info.key_id,
                    timestamp=convert.timestamp(info.timestamp),
                    creator=info.creator,
                    manifest_digest=info.manifest_digest,
                    size=info.size,
                )
            )
    raise TypeError(f"unknown content {info!r}")


class ContentServicer(pb_grpc.ContentServiceServicer):
    """Translates ContentService calls to content queries."""

    def __init__(self, queries: ContentQueries) -> None:
        self._queries = queries

    @unary_errors
    async def ListContent(
        self, request: pb.ListContentRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContentResponse:
        name = VersionName.parse(request.parent, "parent")
        content_type = _content_type(request.content_type)
        if request.membership not in _MEMBERSHIP:
            raise InvalidArgument(
                f"unknown membership {request.membership}",
                field="membership",
                reason=Rule.INVALID_ENUM_VALUE,
            )
        if request.manifest_digest:
            Digest.parse(request.manifest_digest, "manifest_digest")
            if content_type not in ("", SIGNATURE):
                raise InvalidArgument(
                    "manifest_digest filters signatures; content_type must be container.signature",
                    field="manifest_digest",
                    reason=Rule.INCOMPATIBLE_FIELDS,
                )
            content_type = SIGNATURE
        filters = {
            "parent": request.parent,
            "type": content_type,
            "membership": request.membership,
            "manifest": request.manifest_digest,
        }
        page = page_of(request.page_size, request.page_token, cursor=is_content_key, **filters)
        _, keys = await self._queries.version_keys(
            name.repository.repository_id, name.number, _MEMBERSHIP[request.membership]
        )
        if content_type:
            keys = [k for k in keys if k[0] == content_type]
        if request.manifest_digest:
            infos = await self._queries.load(keys)
            keys = [
                k
                for k, info in zip(keys, infos, strict=True)
                if isinstance(info, SignatureInfo)
                and info.manifest_digest == request.manifest_digest
            ]
        chosen, more = _page(keys, page.cursor, page.size)
        infos = await self._queries.load(chosen)
        return pb.ListContentResponse(
            content=[content_to_pb(i) for i in infos],
            next_page_token=next_token(more, list(chosen[-1]) if chosen else None, **filters),
        )

    @unary_errors
    async def DiffVersions(
        self, request: pb.DiffVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DiffVersionsResponse:
        base = VersionName.parse(request.base_version, "base_version")
        target = VersionName.parse(request.target_version, "target_version")
        if base.repository != target.repository:
            raise InvalidArgument(
                "base_version and target_version must belong to the same repository",
                field="target_version",
                reason=Rule.INCOMPATIBLE_FIELDS,
            )
        content_type = _content_type(request.content_type)
        filters = {
            "base": request.base_version,
            "target": request.target_version,
            "type": content_type,
        }
        page = page_of(request.page_size, request.page_token, cursor=is_change_key, **filters)
        _, _, added, removed = await self._queries.diff_keys(
            base.repository.repository_id, base.number, target.number
        )
        if content_type:
            added = [k for k in added if k[0] == content_type]
            removed = [k for k in removed if k[0] == content_type]
        # One ordered list: added first, then removed; the cursor is (kind, type, id).
        changes = [(1, *k) for k in added] + [(2, *k) for k in removed]
        if page.cursor is not None:
            after = (int(page.cursor[0]), str(page.cursor[1]), int(page.cursor[2]))
            changes = [c for c in changes if c > after]
        chosen, more = changes[: page.size], len(changes) > page.size
        infos = await self._queries.load([(t, i) for _, t, i in chosen])
        kinds = {1: pb.CHANGE_KIND_ADDED, 2: pb.CHANGE_KIND_REMOVED}
        return pb.DiffVersionsResponse(
            changes=[
                pb.ContentChange(kind=kinds[kind], content=content_to_pb(info))
                for (kind, _, _), info in zip(chosen, infos, strict=True)
            ],
            next_page_token=next_token(more, list(chosen[-1]) if chosen else None, **filters),
            summary=pb.ContentSummary(added=count_by_type(added), removed=count_by_type(removed)),
        )
