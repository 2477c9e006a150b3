"""Gathering signatures of the synced manifests (see `server.domain.signatures` for kinds).

Every kind is tried for the tagged (root) manifests. A registry without the referrers API or
the signature extension is detected by its first 404 and not asked again in this sync.
A signature that cannot be fetched never fails the sync: it becomes a warning, counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from server.domain.digests import Digest
from server.domain.errors import UpstreamError, leaves
from server.domain.filters import TagFilter
from server.domain.manifests import ManifestKind
from server.domain.resources import Remote
from server.domain.signatures import (
    COSIGN_SIMPLESIGNING,
    MAX_TEXT,
    SIGNATURE_ARTIFACT_TYPES,
    cosign_tags,
    read_atomic_metadata,
    referrers_fallback_tag,
)
from server.sync.pool import for_each
from server.sync.snapshot import FoundSignature, Gatherer

log = logging.getLogger(__name__)

T = TypeVar("T")


def _kind_of(artifact_type: str) -> str:
    if "notary" in artifact_type:
        return "notation"
    if "sigstore" in artifact_type:
        return "sigstore"
    return "cosign"


class SignatureCollector:
    """Adds signature manifests, tags and atomic signatures to a gatherer's snapshot."""

    def __init__(self, gatherer: Gatherer, remote: Remote, listed: set[str] | None) -> None:
        self._g = gatherer
        self._remote = remote
        self._listed = listed
        self._filter = TagFilter(remote.include_tags, remote.exclude_tags)
        self.failures = 0

    async def collect(self) -> None:
        subjects = set(self._g.snapshot.roots)
        await self._cosign(subjects)
        await self._referrers(subjects)
        await self._atomic(subjects)
        if self.failures:
            await self._g.context.warn(
                f"{self.failures} signature source(s) could not be fetched; see earlier warnings"
            )

    async def _attempt(self, what: str, step: Callable[[], Awaitable[T]]) -> T | None:
        """Run an optional step; an upstream failure (even inside a TaskGroup) becomes a
        counted warning and the snapshot goes back to where it was before the step."""
        saved = self._g.snapshot.checkpoint()
        try:
            return await step()
        except (UpstreamError, BaseExceptionGroup) as exc:
            found = leaves(exc)
            if not all(isinstance(e, UpstreamError) for e in found):
                raise
            self._g.snapshot.restore(saved)
            self.failures += 1
            message = found[0].message  # type: ignore[attr-defined]
            await self._g.context.warn(f"{what} could not be fetched: {message}")
            return None

    async def _resolve_present(self, wanted: dict[str, Digest]) -> dict[str, Digest]:
        """Resolve those of `wanted` (tag -> subject) that exist upstream: the listing says
        which, or (no listing) a HEAD of each. Returns the present ones."""
        # Include patterns do not apply to signature tags (they follow their image); an
        # exclusion still wins, e.g. exclude_tags ["*.att"] keeps attestations out.
        allowed = {t for t in wanted if not self._filter.excludes(t)}
        candidates = sorted(allowed if self._listed is None else allowed & self._listed)
        await self._g.resolve_tags(candidates, quiet_missing=True)
        return {t: wanted[t] for t in candidates if t in self._g.snapshot.tags}

    async def _cosign(self, subjects: set[Digest]) -> None:
        # With a listing every synced manifest is checked for free; without one, HEAD requests
        # are spent on the tagged manifests only.
        signed = subjects if self._listed is None else self._g.snapshot.reachable(subjects)
        wanted = {tag: s for s in signed for tag in cosign_tags(s)}

        async def fetch() -> dict[str, Digest]:
            present = await self._resolve_present(wanted)
            await self._g.walk({self._g.snapshot.tags[t] for t in present})
            return present

        present = await self._attempt("cosign signatures", fetch)
        if present is None:
            return
        snapshot = self._g.snapshot
        for tag, subject in sorted(present.items()):
            digest = snapshot.tags[tag]
            snapshot.artifacts |= snapshot.reachable({digest})
            manifest = snapshot.manifests[digest]
            if tag.endswith(".sig"):
                snapshot.signatures.append(
                    FoundSignature(tag, "cosign", subject, manifest.data, manifest.digest)
                )

    async def _each(
        self,
        what: str,
        subjects: list[Digest],
        fetch: Callable[[Digest], Awaitable[T]],
    ) -> dict[Digest, T]:
        """`fetch` for every subject at once (the upstream's slots bound the requests); a
        failure is a counted warning. Answers only: the snapshot is not touched here."""
        answers: dict[Digest, T] = {}

        async def one(subject: Digest) -> None:
            try:
                answers[subject] = await fetch(subject)
            except UpstreamError as exc:
                self.failures += 1
                await self._g.context.warn(
                    f"{what} of {subject} could not be fetched: {exc.message}"
                )

        await for_each(subjects, one, self._g.upstream.concurrency)
        return answers

    async def _probe_then_each(
        self, what: str, subjects: set[Digest], fetch: Callable[[Digest], Awaitable[T | None]]
    ) -> dict[Digest, T] | None:
        """Ask for the first subject alone: None back means the registry lacks the API
        (one request spent, not one per subject); otherwise ask for the rest at once."""
        ordered = sorted(subjects)
        if not ordered:
            return {}
        first = await self._each(what, ordered[:1], fetch)
        if ordered[0] in first and first[ordered[0]] is None:
            return None
        rest = await self._each(what, ordered[1:], fetch)
        return {s: a for s, a in {**first, **rest}.items() if a is not None}

    async def _referrers(self, subjects: set[Digest]) -> None:
        snapshot = self._g.snapshot
        found = await self._probe_then_each("referrers", subjects, self._g.upstream.get_referrers)
        supported = found is not None
        # One walk per subject (only those with referrers cost requests), so a broken
        # referrer costs that subject's referrers alone.
        for subject, descriptors in sorted((found or {}).items()):
            digests = {d.digest for d in descriptors}
            if not digests:
                continue

            async def walk(digests: set[Digest] = digests) -> bool:
                await self._g.walk(digests)
                return True

            if await self._attempt(f"referrers of {subject}", walk):
                snapshot.artifacts |= snapshot.reachable(digests)
                for descriptor in descriptors:
                    self._note_referrer(subject, descriptor.digest)
        if supported:
            return
        # No referrers API: the OCI 1.1 fallback is an index tagged sha256-<hex>.
        wanted = {referrers_fallback_tag(s): s for s in subjects}

        async def fetch_fallback() -> dict[str, Digest]:
            present = await self._resolve_present(wanted)
            await self._g.walk({snapshot.tags[t] for t in present})
            return present

        present = await self._attempt("referrers (fallback tags)", fetch_fallback)
        if present is None:
            return
        for tag, subject in present.items():
            index = snapshot.manifests.get(snapshot.tags[tag])
            if index is None or index.kind is not ManifestKind.INDEX:
                continue
            snapshot.artifacts |= snapshot.reachable({index.digest})
            for child in index.children:
                self._note_referrer(subject, child.digest)

    def _note_referrer(self, subject: Digest, digest: Digest) -> None:
        manifest = self._g.snapshot.manifests.get(digest)
        if manifest is None:
            return
        config_type = manifest.config.media_type if manifest.config else ""
        artifact_type = manifest.artifact_type or config_type
        if artifact_type in SIGNATURE_ARTIFACT_TYPES or any(
            layer.media_type == COSIGN_SIMPLESIGNING for layer in manifest.layers
        ):
            self._g.snapshot.signatures.append(
                FoundSignature(
                    str(digest), _kind_of(artifact_type), subject, manifest.data, manifest.digest
                )
            )

    async def _atomic(self, subjects: set[Digest]) -> None:
        upstream = self._g.upstream
        raw: dict[Digest, list[tuple[str, bytes]]] = {s: [] for s in subjects}
        extension = await self._probe_then_each(
            "atomic signatures", subjects, upstream.get_atomic_signatures
        )
        for subject, entries in (extension or {}).items():
            raw[subject] += entries
        if self._remote.sigstore:
            sigstore = self._remote.sigstore

            async def lookaside(subject: Digest) -> list[bytes]:
                return await upstream.get_lookaside_signatures(sigstore, subject)

            stored = await self._each("lookaside signatures", sorted(subjects), lookaside)
            for subject, blobs in stored.items():
                raw[subject] += [(f"{subject}@signature-{i}", d) for i, d in enumerate(blobs, 1)]
        for subject in sorted(raw):
            seen: set[Digest] = set()
            for name, data in raw[subject]:
                digest = Digest.of_bytes(data)
                if digest in seen:
                    continue
                seen.add(digest)
                key_id, creator, timestamp = read_atomic_metadata(data)
                self._g.snapshot.signatures.append(
                    FoundSignature(
                        (name or f"{subject}@{digest.hex[:32]}")[:MAX_TEXT],
                        "atomic",
                        subject,
                        data,
                        digest,
                        key_id=key_id,
                        creator=creator,
                        timestamp=timestamp,
                    )
                )
