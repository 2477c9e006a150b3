"""SQLAlchemy 2.0 rows (`*Row`). They never leave `server/store/`.

Content rows (blobs, manifests, tags, signatures) are global and deduplicated by digest (tags
by name + manifest). A repository's versions are expressed by `RepositoryContentRow`: content is
in version N when `version_added <= N` and (`version_removed` is NULL or `> N`), so a new version
writes only what changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def last_used_column() -> Any:
    """When a task last wrote or relied on a content unit (NULL: before anyone recorded it).

    Garbage collection keeps unreferenced units used since its protection cutoff, so what a
    running sync has saved or found but not yet committed survives."""
    return mapped_column(UTCDateTime, nullable=True)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)


class RemoteRow(Base):
    __tablename__ = "remotes"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    url: Mapped[str] = mapped_column(Text)
    upstream_name: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(16))
    download_concurrency: Mapped[int] = mapped_column(Integer)
    include_tags: Mapped[list[str]] = mapped_column(JSON)
    exclude_tags: Mapped[list[str]] = mapped_column(JSON)
    sigstore: Mapped[str] = mapped_column(Text, default="")
    proxy_url: Mapped[str] = mapped_column(Text, default="")
    proxy_username: Mapped[str] = mapped_column(Text, default="")
    proxy_password: Mapped[str] = mapped_column(Text, default="")
    ssl_ca_certificate: Mapped[str] = mapped_column(Text, default="")
    ssl_client_certificate: Mapped[str] = mapped_column(Text, default="")
    ssl_client_key: Mapped[str] = mapped_column(Text, default="")
    ssl_validation: Mapped[bool] = mapped_column(Boolean, default=True)
    username: Mapped[str] = mapped_column(Text, default="")
    password: Mapped[str] = mapped_column(Text, default="")
    connect_timeout: Mapped[float] = mapped_column(Float, default=0.0)
    sock_read_timeout: Mapped[float] = mapped_column(Float, default=0.0)
    total_timeout: Mapped[float] = mapped_column(Float, default=0.0)
    max_retries: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    include_foreign_layers: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_limit: Mapped[float] = mapped_column(Float, default=0.0)
    token_realm_allowlist: Mapped[list[str]] = mapped_column(JSON)
    signed_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # `os/architecture[/variant]` specs kept from indexes; empty keeps every platform.
    platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Deleted by the user but still the source of content of some version (see
    # `RepositoryContentRow.remote_id`): hidden from the API, kept for pull-through.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)


class RepositoryRow(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    retain_versions: Mapped[int] = mapped_column(Integer, default=0)
    is_mirror: Mapped[bool] = mapped_column(Boolean, default=False)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    # The remote of the last sync: where ON_DEMAND / STREAMED layers are fetched from.
    remote_id: Mapped[int | None] = mapped_column(
        ForeignKey("remotes.id", ondelete="SET NULL"), nullable=True
    )
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)


class VersionRow(Base):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("repository_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    base_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    # {"added": {type: n}, "removed": {...}, "present": {...}}
    summary: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON)
    # Where the version came from (domain VersionSource), who made it and how.
    source: Mapped[str] = mapped_column(String(16), default="created")
    principal: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class BlobRow(Base):
    __tablename__ = "blobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(140), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(255))
    last_used: Mapped[datetime | None] = last_used_column()


class ManifestRow(Base):
    __tablename__ = "manifests"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(140), unique=True)
    media_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    # The exact bytes as fetched: served unchanged, never re-serialised.
    data: Mapped[bytes] = mapped_column(LargeBinary)
    config_digest: Mapped[str] = mapped_column(String(140), default="")
    artifact_type: Mapped[str] = mapped_column(String(255), default="")
    subject_digest: Mapped[str] = mapped_column(String(140), default="", index=True)
    last_used: Mapped[datetime | None] = last_used_column()


class ManifestBlobRow(Base):
    __tablename__ = "manifest_blobs"

    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    )
    blob_id: Mapped[int] = mapped_column(
        ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # The descriptor as this manifest declares it: what a repository serves for a blob comes
    # from its own manifests, never from the global blob row another upstream wrote first.
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(255), nullable=True)


class ManifestChildRow(Base):
    __tablename__ = "manifest_children"

    index_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    )
    child_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    os: Mapped[str] = mapped_column(String(64), default="")
    architecture: Mapped[str] = mapped_column(String(64), default="")
    variant: Mapped[str] = mapped_column(String(64), default="")


class TagRow(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("name", "manifest_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), index=True
    )
    last_used: Mapped[datetime | None] = last_used_column()


class SignatureRow(Base):
    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(140), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(255), default="")
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    creator: Mapped[str] = mapped_column(String(255), default="")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    last_used: Mapped[datetime | None] = last_used_column()


class RepositoryContentRow(Base):
    __tablename__ = "repository_content"
    __table_args__ = (
        Index("ix_repository_content_lookup", "repository_id", "content_type", "content_id"),
        Index("ix_repository_content_added", "repository_id", "version_added"),
        Index("ix_repository_content_removed", "repository_id", "version_removed"),
        # Garbage collection asks "does any repository hold this unit?".
        Index("ix_repository_content_unit", "content_type", "content_id"),
        Index("ix_repository_content_remote", "remote_id"),
        # At most one open membership of a content unit per repository.
        Index(
            "uq_repository_content_open",
            "repository_id",
            "content_type",
            "content_id",
            unique=True,
            sqlite_where=text("version_removed IS NULL"),
            postgresql_where=text("version_removed IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    content_type: Mapped[str] = mapped_column(String(32))
    content_id: Mapped[int] = mapped_column(Integer)
    version_added: Mapped[int] = mapped_column(Integer)
    version_removed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The remote a sync brought this content from (None: not from a sync). Layers not yet
    # stored are pulled through this remote, whatever the repository points at later; a
    # remote still named here is only marked deleted (`RemoteRow.deleted`), not removed.
    remote_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # One running task per reserved resource, across every server process: the real guard
        # of "only one task writes a repository at a time".
        Index(
            "uq_tasks_running_resource",
            "resource",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        Index("ix_tasks_state_created", "state", "id"),
        UniqueConstraint("kind", "request_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    resource: Mapped[str] = mapped_column(String(160), index=True)
    parameters: Mapped[dict[str, str]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    progress: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_resources: Mapped[list[str]] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str] = mapped_column(String(64), default="")
    # Refreshed by the worker while the task runs; a stale one means the worker died.
    heartbeat_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What a task reports besides created resources, e.g. a dry-run sync's plan.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ProcessRow(Base):
    """A running server process (its task runner's worker id), refreshed by its watchdog:
    who else shares this database right now."""

    __tablename__ = "server_processes"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_time: Mapped[datetime] = mapped_column(UTCDateTime)


class DistributionRow(Base):
    __tablename__ = "distributions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    base_path: Mapped[str] = mapped_column(String(255), unique=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="RESTRICT"))
    version_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)
    # Anonymous pull allowed; private (False) is the default.
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class PrincipalRow(Base):
    """A user or service account; `role` is "" (grants only), viewer, editor or admin."""

    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept (the secret is 256 random bits,
    so a fast hash is enough; a slow one would only slow every call)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    expire_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GrantRow(Base):
    """A principal's role (viewer or editor) on one repository."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("principal_id", "repository_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))


class UploadRow(Base):
    """A blob upload in progress on the registry endpoint (OCI "upload session").

    Its bytes sit in the blob store's upload area under `uid`; `size` is what was received so
    far. Invisible to pulls until completed with a digest; expired after `update_time` plus the
    configured lifetime (removed with its bytes)."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    principal: Mapped[str] = mapped_column(String(255), default="")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StagedBlobRow(Base):
    """A blob pushed (uploaded or mounted) into a repository and not yet referenced by one of
    its versions: what a manifest PUT into that repository may reference besides the latest
    version's blobs. Blobs are global, so without this link anyone could reference a layer of
    another repository by its digest. Keyed by digest: the blob row (with its media type) is
    made when a manifest names it. Expires with the upload lifetime."""

    __tablename__ = "staged_blobs"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ScheduleRow(Base):
    """A recurring sync. `next_run_time` is also the compare-and-set token of a run: the
    process whose UPDATE still sees the old value starts the sync, every other one skips it."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "enabled", "next_run_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    remote_id: Mapped[int] = mapped_column(ForeignKey("remotes.id", ondelete="CASCADE"))
    mirror: Mapped[bool] = mapped_column(Boolean, default=False)
    cron: Mapped[str] = mapped_column(String(255), default="")
    interval_seconds: Mapped[int] = mapped_column(Integer, default=0)
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_run_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_task_uid: Mapped[str] = mapped_column(String(36), default="")
    skipped_runs: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)


class ServingGenerationRow(Base):
    """One row (id 1) whose `value` triggers bump whenever what distributions serve changes:
    the registry endpoint's in-memory cache is valid while it reads the same value
    (migration 0008 has the triggers; server/registry/cache.py the reader)."""

    __tablename__ = "serving_generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
