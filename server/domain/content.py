"""Read models of content units, as the Content API lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Membership(StrEnum):
    """Which content of a version: all present, or what it added/removed vs its base."""

    PRESENT = "present"
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: str
    size: int
    media_type: str
    stored: bool


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """A child manifest of an index, with its platform."""

    digest: str
    media_type: str
    os: str
    architecture: str
    variant: str


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int
    config_digest: str
    blobs: tuple[str, ...]
    children: tuple[ChildInfo, ...]
    artifact_type: str
    subject: str


@dataclass(frozen=True, slots=True)
class TagInfo:
    name: str
    manifest_digest: str


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    name: str
    digest: str
    type: str
    key_id: str
    timestamp: datetime | None
    creator: str
    manifest_digest: str
    size: int


ContentInfo = BlobInfo | ManifestInfo | TagInfo | SignatureInfo
