"""Repositories, remotes, versions and distributions as plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from server.domain.names import version_name

DEFAULT_DOWNLOAD_CONCURRENCY = 10
MAX_DOWNLOAD_CONCURRENCY = 100
DEFAULT_MAX_RETRIES = 3


class Policy(StrEnum):
    """When a remote's blobs are downloaded."""

    IMMEDIATE = "immediate"
    ON_DEMAND = "on_demand"
    STREAMED = "streamed"


@dataclass(frozen=True, slots=True)
class Repository:
    """A named collection of content with numbered versions."""

    repository_id: str
    uid: str
    description: str
    retain_versions: int
    mirror: bool
    latest_version: int
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return f"repositories/{self.repository_id}"

    @property
    def latest_version_name(self) -> str:
        return version_name(self.repository_id, self.latest_version)


@dataclass(frozen=True, slots=True)
class Remote:
    """An upstream repository and everything needed to reach it. Holds secrets: never log."""

    remote_id: str
    url: str
    upstream_name: str
    uid: str = ""
    policy: Policy = Policy.IMMEDIATE
    download_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    sigstore: str = ""
    proxy_url: str = ""
    proxy_username: str = ""
    proxy_password: str = field(default="", repr=False)
    ssl_ca_certificate: str = ""
    ssl_client_certificate: str = ""
    ssl_client_key: str = field(default="", repr=False)
    ssl_validation: bool = True
    username: str = ""
    password: str = field(default="", repr=False)
    connect_timeout: float = 0.0
    sock_read_timeout: float = 0.0
    total_timeout: float = 0.0
    max_retries: int = DEFAULT_MAX_RETRIES
    headers: tuple[tuple[str, str], ...] = ()
    include_foreign_layers: bool = False
    rate_limit: float = 0.0
    token_realm_allowlist: tuple[str, ...] = ()
    signed_only: bool = False
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"remotes/{self.remote_id}"


# Content type names, as in Pulp's content summary.
BLOB = "container.blob"
MANIFEST = "container.manifest"
TAG = "container.tag"
SIGNATURE = "container.signature"
CONTENT_TYPES = (BLOB, MANIFEST, TAG, SIGNATURE)


@dataclass(frozen=True, slots=True)
class ContentSummary:
    """Counts per content type of what a version added, removed and holds."""

    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)


class VersionSource(StrEnum):
    """Where a version came from."""

    CREATED = "created"  # version 0, made with its repository
    SYNC = "sync"
    PUSH = "push"  # a manifest PUT or DELETE on the registry endpoint
    OPERATION = "operation"  # a content operation (add/remove, tag, copy, rollback)


@dataclass(frozen=True, slots=True)
class VersionOrigin:
    """Who made a version and how: recorded with it, shown by GetVersion."""

    source: VersionSource
    principal: str = ""  # the authenticated caller; empty when anonymous or unknown
    detail: str = ""  # e.g. "sync from remotes/hello (mirror)", "PUT manifests/latest"


@dataclass(frozen=True, slots=True)
class Version:
    """An immutable state of a repository."""

    repository_id: str
    number: int
    base_number: int | None
    create_time: datetime
    summary: ContentSummary
    origin: VersionOrigin = VersionOrigin(VersionSource.CREATED)

    @property
    def name(self) -> str:
        return version_name(self.repository_id, self.number)

    @property
    def base_name(self) -> str:
        return (
            "" if self.base_number is None else version_name(self.repository_id, self.base_number)
        )


@dataclass(frozen=True, slots=True)
class Distribution:
    """Publishes a repository's latest version, or one pinned version, at `base_path`."""

    distribution_id: str
    base_path: str
    repository_id: str
    version: int | None  # None follows the latest version
    description: str = ""
    public: bool = False  # anonymous pull; private (the default) needs a token
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"distributions/{self.distribution_id}"
