"""Settings of a server process, from command-line flags or, equally, environment variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from server.storage import StorageConfig


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a server process needs to start."""

    grpc_address: str = "127.0.0.1:50051"
    """Where the gRPC API listens (`MIRROR_GRPC_ADDRESS`)."""
    registry_address: str = "127.0.0.1:5050"
    """Where the OCI registry (pull) endpoint listens (`MIRROR_REGISTRY_ADDRESS`)."""
    data_dir: Path = Path(".mirror-data")
    """Blob storage and the embedded SQLite file (`MIRROR_DATA_DIR`)."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite in `data_dir` (`MIRROR_DATABASE_URL`)."""
    workers: int = 4
    """Tasks this process runs at once (`MIRROR_WORKERS`)."""
    log_level: str = "INFO"
    """Python logging level (`MIRROR_LOG_LEVEL`)."""
    retry_backoff: float | None = None
    """First retry delay in seconds (None: the engine default); tests shorten it."""
    storage_url: str = ""
    """Where blobs live: empty for files under `data_dir`, `s3://bucket/prefix` for
    S3-compatible object storage (`MIRROR_STORAGE_URL`)."""
    storage_durability: str = "full"
    """Filesystem: `full` (fsync before publishing) or `none` (`MIRROR_STORAGE_DURABILITY`)."""
    s3_endpoint_url: str = ""
    """S3-compatible endpoint; empty means AWS (`MIRROR_S3_ENDPOINT_URL`)."""
    s3_addressing: str = "auto"
    """`path`, `virtual` or `auto` bucket addressing (`MIRROR_S3_ADDRESSING`)."""
    s3_serve: str = "redirect"
    """Registry blob GETs from S3: `redirect` (presigned URL) or `stream` (`MIRROR_S3_SERVE`)."""
    s3_presign_seconds: int = 300
    """Lifetime of presigned blob URLs (`MIRROR_S3_PRESIGN_SECONDS`)."""

    @property
    def storage(self) -> StorageConfig:
        return StorageConfig(
            data_dir=self.data_dir,
            url=self.storage_url,
            durability=self.storage_durability,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_addressing=self.s3_addressing,
            s3_serve=self.s3_serve,
            s3_presign_seconds=self.s3_presign_seconds,
        )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mirror.db').resolve()}"


_ENV = {
    "grpc_address": "MIRROR_GRPC_ADDRESS",
    "registry_address": "MIRROR_REGISTRY_ADDRESS",
    "data_dir": "MIRROR_DATA_DIR",
    "database_url": "MIRROR_DATABASE_URL",
    "workers": "MIRROR_WORKERS",
    "log_level": "MIRROR_LOG_LEVEL",
    "storage_url": "MIRROR_STORAGE_URL",
    "storage_durability": "MIRROR_STORAGE_DURABILITY",
    "s3_endpoint_url": "MIRROR_S3_ENDPOINT_URL",
    "s3_addressing": "MIRROR_S3_ADDRESSING",
    "s3_serve": "MIRROR_S3_SERVE",
    "s3_presign_seconds": "MIRROR_S3_PRESIGN_SECONDS",
}

_CHOICES = {
    "storage_durability": ("full", "none"),
    "s3_addressing": ("auto", "path", "virtual"),
    "s3_serve": ("redirect", "stream"),
}


def parse_settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Flags win over environment variables, which win over the defaults."""
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="mirror-server", description=__doc__)

    def default(field: str) -> str:
        return env.get(_ENV[field], str(getattr(defaults, field)))

    parser.add_argument("--grpc-address", default=default("grpc_address"))
    parser.add_argument("--registry-address", default=default("registry_address"))
    parser.add_argument("--data-dir", default=default("data_dir"))
    parser.add_argument("--database-url", default=default("database_url"))
    parser.add_argument("--workers", default=default("workers"))
    parser.add_argument("--log-level", default=default("log_level"))
    parser.add_argument("--storage-url", default=default("storage_url"))
    parser.add_argument("--storage-durability", default=default("storage_durability"))
    parser.add_argument("--s3-endpoint-url", default=default("s3_endpoint_url"))
    parser.add_argument("--s3-addressing", default=default("s3_addressing"))
    parser.add_argument("--s3-serve", default=default("s3_serve"))
    parser.add_argument("--s3-presign-seconds", default=default("s3_presign_seconds"))
    args = parser.parse_args(argv)
    for field, choices in _CHOICES.items():
        if getattr(args, field) not in choices:
            flag = "--" + field.replace("_", "-")
            parser.error(
                f"{flag} (or {_ENV[field]}) must be one of {', '.join(choices)}, "
                f"got {getattr(args, field)!r}"
            )
    if args.storage_url and not args.storage_url.startswith(("s3://", "file://")):
        parser.error(
            f"--storage-url (or MIRROR_STORAGE_URL) must be s3://bucket[/prefix] or "
            f"file:///path, got {args.storage_url!r}"
        )
    seconds = str(args.s3_presign_seconds)
    if not seconds.isdigit() or not 1 <= int(seconds) <= 7 * 24 * 3600:
        parser.error(
            "--s3-presign-seconds (or MIRROR_S3_PRESIGN_SECONDS) must be 1..604800, "
            f"got {seconds!r}"
        )
    if not str(args.workers).isdigit() or int(args.workers) < 1:
        parser.error(
            f"--workers (or MIRROR_WORKERS) must be a whole number >= 1, got {args.workers!r}"
        )
    args.workers = int(args.workers)
    return Settings(
        grpc_address=args.grpc_address,
        registry_address=args.registry_address,
        data_dir=Path(args.data_dir),
        database_url=args.database_url,
        workers=args.workers,
        log_level=args.log_level.upper(),
        storage_url=args.storage_url,
        storage_durability=args.storage_durability,
        s3_endpoint_url=args.s3_endpoint_url,
        s3_addressing=args.s3_addressing,
        s3_serve=args.s3_serve,
        s3_presign_seconds=int(seconds),
    )
