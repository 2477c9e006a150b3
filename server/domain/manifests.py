"""Manifest media types and strict parsing (one type per document: CVE-2021-41190).

A manifest is stored and served as the exact bytes fetched; parsing only extracts the
references a mirror must follow (config, layers, child manifests, subject).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.domain import strictjson
from server.domain.digests import Digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
SCHEMA1_TYPES = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
MANIFEST_TYPES = (*IMAGE_TYPES, *INDEX_TYPES, *SCHEMA1_TYPES)
# What we ask upstreams for, most preferred first.
ACCEPT = ", ".join(
    (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1)
)

FOREIGN_LAYER_TYPES = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)

# Field names of the image/index specs (and schema1): a key equal to one of them up to case
# (`Layers`, `Config`) is refused, as are duplicate keys (see `strictjson`).
SPEC_KEYS = frozenset(
    {
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "manifests",
        "subject",
        "annotations",
        "digest",
        "size",
        "urls",
        "data",
        "platform",
        "architecture",
        "os",
        "os.version",
        "os.features",
        "variant",
        "features",
        "name",
        "tag",
        "fsLayers",
        "blobSum",
        "history",
        "signatures",
    }
)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MEDIA_TYPE = 255  # RFC 6838 caps each part at 127 characters
MAX_PLATFORM_FIELD = 64


class ManifestKind(StrEnum):
    IMAGE = "image"
    INDEX = "index"
    SCHEMA1 = "schema1"


class ManifestError(ValueError):
    """The document is not a manifest we accept; the message says why."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A reference to content: digest, size, media type; URLs for foreign layers."""

    digest: Digest
    size: int
    media_type: str
    urls: tuple[str, ...] = ()
    platform_os: str = ""
    platform_architecture: str = ""
    platform_variant: str = ""

    @property
    def is_foreign(self) -> bool:
        return self.media_type in FOREIGN_LAYER_TYPES


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parsed view of a manifest's exact bytes."""

    digest: Digest
    media_type: str
    kind: ManifestKind
    data: bytes
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Digest | None = None
    artifact_type: str = ""

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config first, then layers."""
        return ((self.config,) if self.config else ()) + self.layers


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} is not an object")
    try:
        digest = Digest.parse(str(raw["digest"]))
    except (KeyError, Exception) as exc:
        raise ManifestError(f"{where} has no valid digest") from exc
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where} has no valid size")
    media_type = raw.get("mediaType", "")
    if not isinstance(media_type, str) or len(media_type) > MAX_MEDIA_TYPE:
        raise ManifestError(f"{where} has an invalid mediaType")
    urls = raw.get("urls") or []
    platform = raw.get("platform") or {}
    if not isinstance(urls, list) or not isinstance(platform, dict):
        raise ManifestError(f"{where} has invalid urls or platform")
    if any(
        len(str(platform.get(k, ""))) > MAX_PLATFORM_FIELD
        for k in ("os", "architecture", "variant")
    ):
        raise ManifestError(f"{where} has an oversized platform field")
    return Descriptor(
        digest=digest,
        size=size,
        media_type=media_type,
        urls=tuple(str(u) for u in urls),
        platform_os=str(platform.get("os", "")),
        platform_architecture=str(platform.get("architecture", "")),
        platform_variant=str(platform.get("variant", "")),
    )


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_manifest(
    data: bytes, content_type: str, digest: Digest | None = None, *, verified: bool = False
) -> Manifest:
    """Parse `data` served with `content_type`; raise ManifestError on anything ambiguous.

    `verified=True` (with `digest`) skips hashing bytes already checked when they were stored.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    if verified and digest is not None:
        actual = digest
    else:
        actual = Digest.of_bytes(data, digest.algorithm if digest else "sha256")
    if digest is not None and actual != digest:
        raise ManifestError(f"content hashes to {actual}, not {digest}")
    try:
        doc = strictjson.loads(data, spec_keys=SPEC_KEYS)
    except strictjson.StrictJSONError as exc:
        raise ManifestError(f"manifest is not strict JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    declared = doc.get("mediaType")
    served = _base_type(content_type)
    if declared is not None and not isinstance(declared, str):
        raise ManifestError("mediaType is not a string")
    if declared and served and served in MANIFEST_TYPES and declared != served:
        raise ManifestError(f"mediaType {declared!r} disagrees with Content-Type {served!r}")
    if declared and declared not in MANIFEST_TYPES:
        raise ManifestError(f"unsupported manifest media type {declared!r}")
    media_type = declared or served
    if media_type not in MANIFEST_TYPES:
        # OCI documents may omit mediaType; infer only from an unambiguous structure.
        if "manifests" in doc and "layers" not in doc and "config" not in doc:
            media_type = OCI_INDEX
        elif "config" in doc and "manifests" not in doc:
            media_type = OCI_MANIFEST
        else:
            raise ManifestError(f"unsupported manifest media type {media_type!r}")
    if media_type in SCHEMA1_TYPES:
        return Manifest(digest=actual, media_type=media_type, kind=ManifestKind.SCHEMA1, data=data)
    subject = None
    if "subject" in doc:
        subject = _descriptor(doc["subject"], "subject").digest
    artifact_type = doc.get("artifactType", "")
    if not isinstance(artifact_type, str) or len(artifact_type) > MAX_MEDIA_TYPE:
        raise ManifestError("artifactType is not a valid media type")
    if media_type in INDEX_TYPES:
        if "layers" in doc or "config" in doc:
            raise ManifestError("an index must not carry config or layers")
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestError("an index needs a manifests list")
        return Manifest(
            digest=actual,
            media_type=media_type,
            kind=ManifestKind.INDEX,
            data=data,
            children=tuple(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)),
            subject=subject,
            artifact_type=artifact_type,
        )
    if "manifests" in doc:
        raise ManifestError("an image manifest must not carry manifests")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("an image manifest needs a layers list")
    return Manifest(
        digest=actual,
        media_type=media_type,
        kind=ManifestKind.IMAGE,
        data=data,
        config=_descriptor(doc.get("config"), "config"),
        layers=tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
        subject=subject,
        artifact_type=artifact_type,
    )
