"""Content operations: each one new version through the committer, or none.

add/remove by digest or tag on top of a base version, tag and untag a manifest, copy tags
(with manifests, blobs and signatures) from a version of another repository, roll back.
Each operation is a `ChangeBuilder` run inside the committer's transaction: it reads the
base version (and the source version) as a `ContentGraph` and returns the change, so what
it checked is what gets committed. Closures are the domain's (`server/domain/closure.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from server.domain.closure import ContentGraph
from server.domain.digests import Digest
from server.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from server.domain.filters import TagFilter
from server.domain.names import version_name
from server.domain.plan import ContentChange, ContentKey
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG, Version, VersionOrigin
from server.domain.rules import is_tag
from server.store.commits import BaseContent, VersionCommitter
from server.store.membership import present_keys
from server.store.repositories import load_row
from server.store.schema import (
    BlobRow,
    ManifestBlobRow,
    ManifestChildRow,
    ManifestRow,
    SignatureRow,
    TagRow,
    VersionRow,
)

BATCH = 500

BlobCheck = Callable[[Sequence[str]], Awaitable[list[str]]]
"""Given blob digests, the ones NOT in the blob store."""


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A version named by a caller: repository id and number (None: the latest)."""

    repository_id: str
    number: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an operation: the new version, or the latest one when nothing changed."""

    version: Version
    changed: bool


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


async def load_graph(session: Any, keys: Iterable[ContentKey]) -> ContentGraph:
    """The content graph of a set of content keys (one version's)."""
    by_type: dict[str, list[int]] = {BLOB: [], MANIFEST: [], TAG: [], SIGNATURE: []}
    for kind, pk in keys:
        by_type[kind].append(pk)
    graph = ContentGraph()
    for chunk in _chunks(sorted(by_type[MANIFEST])):
        rows = await session.execute(
            select(ManifestRow.id, ManifestRow.digest, ManifestRow.subject_digest).where(
                ManifestRow.id.in_(chunk)
            )
        )
        for pk, digest, subject in rows:
            graph.manifests[pk] = digest
            if subject:
                graph.subjects[pk] = subject
        links = await session.execute(
            select(ManifestBlobRow.manifest_id, ManifestBlobRow.blob_id).where(
                ManifestBlobRow.manifest_id.in_(chunk)
            )
        )
        for manifest_id, blob_id in links:
            graph.manifest_blobs.setdefault(manifest_id, set()).add(blob_id)
        children = await session.execute(
            select(ManifestChildRow.index_id, ManifestChildRow.child_id).where(
                ManifestChildRow.index_id.in_(chunk)
            )
        )
        for index_id, child_id in children:
            graph.children.setdefault(index_id, set()).add(child_id)
    for chunk in _chunks(sorted(by_type[BLOB])):
        rows = await session.execute(
            select(BlobRow.id, BlobRow.digest).where(BlobRow.id.in_(chunk))
        )
        graph.blobs.update({pk: digest for pk, digest in rows})
    for chunk in _chunks(sorted(by_type[SIGNATURE])):
        rows = await session.execute(
            select(SignatureRow.id, SignatureRow.manifest_id).where(SignatureRow.id.in_(chunk))
        )
        graph.signatures.update({pk: manifest_id for pk, manifest_id in rows})
    for chunk in _chunks(sorted(by_type[TAG])):
        rows = await session.execute(
            select(TagRow.id, TagRow.name, TagRow.manifest_id).where(TagRow.id.in_(chunk))
        )
        graph.tags.update({pk: (name, manifest_id) for pk, name, manifest_id in rows})
    return graph


def _reference(value: str, field: str) -> tuple[str, str]:
    """('digest', d) or ('tag', t) for a caller's reference; INVALID_ARGUMENT otherwise."""
    if ":" in value:
        if not Digest.is_valid(value):
            raise InvalidArgument(
                f"{value!r} is not a valid digest (algorithm:hex)",
                field=field,
                reason="INVALID_DIGEST",
            )
        return "digest", value
    check_tag(value, field)
    return "tag", value


def check_tag(value: str, field: str) -> str:
    if not is_tag(value):
        raise InvalidArgument(
            f"{value!r} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})",
            field=field,
            reason="INVALID_TAG",
        )
    return value


def _unknown(reference: str, where: str) -> NotFound:
    return NotFound(
        f"{reference} is not in {where}",
        reason="CONTENT_NOT_FOUND",
        reference=reference,
        version=where,
    )


def _resolve(
    graph: ContentGraph, references: Sequence[str], field: str, where: str
) -> tuple[set[int], set[int], set[int]]:
    """(tag ids, manifest ids, blob ids) named by references in `graph`."""
    tags: set[int] = set()
    manifests: set[int] = set()
    blobs: set[int] = set()
    for index, raw in enumerate(references):
        kind, value = _reference(raw, f"{field}[{index}]")
        if kind == "tag":
            tag = graph.tag(value)
            if tag is None:
                raise _unknown(f"tag {value!r}", where)
            tags.add(tag)
            manifests.add(graph.tags[tag][1])
            continue
        manifest = graph.manifest(value)
        if manifest is not None:
            manifests.add(manifest)
            continue
        blob = graph.blob(value)
        if blob is None:
            raise _unknown(value, where)
        blobs.add(blob)
    return tags, manifests, blobs


class ContentOperations:
    """The content operations of ContentOperationService, over the committer."""

    def __init__(self, committer: VersionCommitter, missing_blobs: BlobCheck) -> None:
        self._committer = committer
        self._missing_blobs = missing_blobs

    async def modify(
        self,
        base: VersionRef,
        *,
        add: Sequence[str] = (),
        source: VersionRef | None = None,
        remove: Sequence[str] = (),
        origin: VersionOrigin,
    ) -> Outcome:
        """Add content named in `source` (tags: the tag and its image; digests: the manifest
        or blob with its closure) and remove content of the base (a tag: the tag and its image,
        unless other content needs it; a digest: that manifest or blob)."""
        for index, value in enumerate(add):
            _reference(value, f"add[{index}]")
        for index, value in enumerate(remove):
            _reference(value, f"remove[{index}]")
        if add and source is None:
            raise InvalidArgument(
                "source_version is required to add content", field="source_version"
            )

        async def build(current: BaseContent) -> ContentChange:
            graph = await load_graph(current.session, current.keys)
            where = version_name(base.repository_id, current.number)
            tags, manifests, blobs = _resolve(graph, remove, "remove", where)
            dropped = graph.removal(manifests, blobs) | {(TAG, t) for t in tags}
            added: frozenset[ContentKey] = frozenset()
            names: dict[int, str] = {}
            if add:
                assert source is not None
                added, names = await self._take(current, source, list(add), "add")
            return ContentChange(add=added, add_tag_names=names, remove=dropped - added)

        return await self._commit(base, build, origin)

    async def tag(self, base: VersionRef, tag: str, digest: str, origin: VersionOrigin) -> Outcome:
        """Tag a manifest of the base version (a tag of that name moves)."""
        check_tag(tag, "tag")
        if not Digest.is_valid(digest):
            raise InvalidArgument(
                f"{digest!r} is not a valid digest", field="digest", reason="INVALID_DIGEST"
            )

        async def build(current: BaseContent) -> ContentChange:
            graph = await load_graph(current.session, current.keys)
            manifest = graph.manifest(digest)
            if manifest is None:
                raise _unknown(digest, version_name(base.repository_id, current.number))
            pk = (await save_tags_in(current.session, [(tag, manifest)]))[(tag, manifest)]
            return ContentChange(add=frozenset({(TAG, pk)}), add_tag_names={pk: tag})

        return await self._commit(base, build, origin)

    async def untag(self, base: VersionRef, tag: str, origin: VersionOrigin) -> Outcome:
        """Remove a tag; the manifest stays."""
        check_tag(tag, "tag")

        async def build(current: BaseContent) -> ContentChange:
            graph = await load_graph(current.session, current.keys)
            pk = graph.tag(tag)
            if pk is None:
                raise _unknown(f"tag {tag!r}", version_name(base.repository_id, current.number))
            return ContentChange(remove=frozenset({(TAG, pk)}))

        return await self._commit(base, build, origin)

    async def copy_tags(
        self,
        source: VersionRef,
        destination: VersionRef,
        patterns: Sequence[str],
        origin: VersionOrigin,
    ) -> Outcome:
        """Copy the source's tags matching `patterns` (all when empty) with their images,
        signatures and referrers into the destination; same-named tags there move."""

        async def build(current: BaseContent) -> ContentChange:
            added, names = await self._take(current, source, patterns, "tags", by_pattern=True)
            return ContentChange(add=added, add_tag_names=names)

        return await self._commit(destination, build, origin)

    async def rollback(self, target: VersionRef, origin: VersionOrigin) -> Outcome:
        """A new latest version with exactly the content of version `target.number`."""
        assert target.number is not None

        async def build(current: BaseContent) -> ContentChange:
            row = await current.session.scalar(
                select(VersionRow.id).where(
                    VersionRow.repository_id == current.repository_pk,
                    VersionRow.number == target.number,
                )
            )
            if row is None:
                raise NotFound(
                    f"version {version_name(target.repository_id, target.number)} not found",
                    reason="VERSION_NOT_FOUND",
                    version=version_name(target.repository_id, target.number),
                )
            keys = await present_keys(current.session, current.repository_pk, target.number)
            return ContentChange(add=frozenset(keys), exact=True)

        # Every version of a mirror came from one of its syncs: restoring one keeps the promise.
        return await self._commit(
            VersionRef(target.repository_id), build, origin, allow_on_mirror=True
        )

    async def _take(
        self,
        current: BaseContent,
        source: VersionRef,
        references: Sequence[str],
        field: str,
        *,
        by_pattern: bool = False,
    ) -> tuple[frozenset[ContentKey], dict[int, str]]:
        """The content `references` name in the source version, with closures, and the
        names of the tags among it."""
        session = current.session
        repo = await load_row(session, source.repository_id)
        number = repo.latest_version if source.number is None else source.number
        if number != current.number or repo.id != current.repository_pk:
            exists = await session.scalar(
                select(VersionRow.id).where(
                    VersionRow.repository_id == repo.id, VersionRow.number == number
                )
            )
            if exists is None:
                name = version_name(source.repository_id, number)
                raise NotFound(
                    f"version {name} not found", reason="VERSION_NOT_FOUND", version=name
                )
        where = version_name(source.repository_id, number)
        graph = await load_graph(session, await present_keys(session, repo.id, number))
        if by_pattern:
            patterns = TagFilter(tuple(references) or ("*",), ())
            tags = {pk for pk, (name, _) in graph.tags.items() if patterns.wants(name)}
            if not tags:
                raise NotFound(
                    f"no tag of {where} matches {list(references) or ['*']}",
                    reason="CONTENT_NOT_FOUND",
                    version=where,
                )
            manifests = {graph.tags[pk][1] for pk in tags}
            blobs: set[int] = set()
        else:
            tags, manifests, blobs = _resolve(graph, references, field, where)
        keys = set(graph.closure(manifests)) | {(TAG, t) for t in tags} | {(BLOB, b) for b in blobs}
        if repo.id != current.repository_pk:
            await self._check_stored(graph, keys, where)
        names = {pk: graph.tags[pk][0] for kind, pk in keys if kind == TAG}
        return frozenset(keys), names

    async def _check_stored(self, graph: ContentGraph, keys: set[ContentKey], where: str) -> None:
        """Content fetched on demand stays fetchable only from its own repository's remote: a
        copy of it elsewhere would have a hole, so it is refused until the blobs are stored."""
        digests = sorted(graph.blobs[pk] for kind, pk in keys if kind == BLOB)
        missing = await self._missing_blobs(digests)
        if missing:
            raise FailedPrecondition(
                f"{len(missing)} blob(s) of the content to copy from {where} are not stored "
                f"(fetched on demand), e.g. {missing[0]}; pull them or sync with the immediate "
                "policy first",
                reason="BLOBS_NOT_STORED",
                version=where,
                missing=len(missing),
                example=missing[0],
            )

    async def _commit(
        self,
        base: VersionRef,
        build: Callable[[BaseContent], Awaitable[ContentChange]],
        origin: VersionOrigin,
        *,
        allow_on_mirror: bool = False,
    ) -> Outcome:
        version, _ = await self._committer.commit(
            base.repository_id,
            build,
            origin=origin,
            base=base.number,
            allow_on_mirror=allow_on_mirror,
        )
        if version is not None:
            return Outcome(version, True)
        return Outcome(await self._committer.latest(base.repository_id), False)


async def save_tags_in(session: Any, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Tag rows (name, manifest id) -> ids, created inside the caller's transaction."""
    # Tag rows are global: another repository may create the same one meanwhile.
    insert = sqlite.insert if session.bind.dialect.name == "sqlite" else postgresql.insert
    found: dict[tuple[str, int], int] = {}
    for name, manifest in pairs:
        await session.execute(
            insert(TagRow).values(name=name, manifest_id=manifest).on_conflict_do_nothing()
        )
        found[(name, manifest)] = await session.scalar(
            select(TagRow.id).where(TagRow.name == name, TagRow.manifest_id == manifest)
        )
    return found


def stored_check(
    stat_many: Callable[[list[Digest]], Awaitable[Mapping[Digest, object]]],
) -> BlobCheck:
    """A `BlobCheck` over a blob store's `stat_many` (digests present in storage)."""

    async def missing(digests: Sequence[str]) -> list[str]:
        present = await stat_many([Digest.parse(d) for d in digests])
        return [d for d in digests if Digest.parse(d) not in present]

    return missing
