"""Gathering signatures of the synced manifests (see `server.domain.signatures` for kinds).

Every kind is tried for the tagged (root) manifests. A registry without the referrers API or
the signature extension is detected by its first 404 and not asked again in this sync.
A signature that cannot be fetched never fails the sync: it becomes a warning, counted.
"""

from __future__ import annotations

import logging

from server.domain.digests import Digest
from server.domain.errors import UpstreamError
from server.domain.manifests import ManifestKind
from server.domain.resources import Remote
from server.domain.signatures import (
    COSIGN_SIMPLESIGNING,
    SIGNATURE_ARTIFACT_TYPES,
    cosign_tags,
    read_atomic_metadata,
    referrers_fallback_tag,
)
from server.sync.snapshot import FoundSignature, Gatherer

log = logging.getLogger(__name__)


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

    async def _guard(self, what: str, error: UpstreamError) -> None:
        self.failures += 1
        await self._g.context.warn(f"{what} could not be fetched: {error.message}")

    async def _resolve_present(self, wanted: dict[str, Digest]) -> dict[str, Digest]:
        """Resolve those of `wanted` (tag -> subject) that exist upstream: the listing says
        which, or (no listing) a HEAD of each. Returns the present ones."""
        candidates = sorted(wanted if self._listed is None else set(wanted) & self._listed)
        await self._g.resolve_tags(candidates, quiet_missing=True)
        return {t: wanted[t] for t in candidates if t in self._g.snapshot.tags}

    async def _cosign(self, subjects: set[Digest]) -> None:
        # With a listing every synced manifest is checked for free; without one, HEAD requests
        # are spent on the tagged manifests only.
        signed = subjects if self._listed is None else self._g.snapshot.reachable(subjects)
        wanted = {tag: s for s in signed for tag in cosign_tags(s)}
        try:
            present = await self._resolve_present(wanted)
            await self._g.walk({self._g.snapshot.tags[t] for t in present})
        except UpstreamError as exc:
            await self._guard("cosign signatures", exc)
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

    async def _referrers(self, subjects: set[Digest]) -> None:
        snapshot = self._g.snapshot
        supported = True
        for subject in sorted(subjects):
            try:
                descriptors = await self._g.upstream.get_referrers(subject) if supported else None
            except UpstreamError as exc:
                await self._guard(f"referrers of {subject}", exc)
                continue
            if descriptors is None:
                supported = False
                break
            digests = {d.digest for d in descriptors}
            try:
                await self._g.walk(digests)
            except UpstreamError as exc:
                await self._guard(f"referrers of {subject}", exc)
                continue
            snapshot.artifacts |= snapshot.reachable(digests)
            for descriptor in descriptors:
                self._note_referrer(subject, descriptor.digest)
        if supported:
            return
        # No referrers API: the OCI 1.1 fallback is an index tagged sha256-<hex>.
        wanted = {referrers_fallback_tag(s): s for s in subjects}
        try:
            present = await self._resolve_present(wanted)
            await self._g.walk({snapshot.tags[t] for t in present})
        except UpstreamError as exc:
            await self._guard("referrers (fallback tags)", exc)
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
        snapshot = self._g.snapshot
        extension = True
        for subject in sorted(subjects):
            raw: list[tuple[str, bytes]] = []
            if extension:
                try:
                    found = await self._g.upstream.get_atomic_signatures(subject)
                except UpstreamError as exc:
                    await self._guard(f"atomic signatures of {subject}", exc)
                    found = []
                if found is None:
                    extension = False
                else:
                    raw += found
            if self._remote.sigstore:
                try:
                    lookaside = await self._g.upstream.get_lookaside_signatures(
                        self._remote.sigstore, subject
                    )
                except UpstreamError as exc:
                    await self._guard(f"lookaside signatures of {subject}", exc)
                    lookaside = []
                raw += [(f"{subject}@signature-{i}", data) for i, data in enumerate(lookaside, 1)]
            seen: set[Digest] = set()
            for name, data in raw:
                digest = Digest.of_bytes(data)
                if digest in seen:
                    continue
                seen.add(digest)
                key_id, creator, timestamp = read_atomic_metadata(data)
                snapshot.signatures.append(
                    FoundSignature(
                        name or f"{subject}@{digest.hex[:32]}",
                        "atomic",
                        subject,
                        data,
                        digest,
                        key_id=key_id,
                        creator=creator,
                        timestamp=timestamp,
                    )
                )
