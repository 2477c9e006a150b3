"""Settings of a server process, from command-line flags or, equally, environment variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path


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
    upload_lifetime: float = 86400.0
    """Seconds a blob upload may sit idle before it expires with its bytes
    (`MIRROR_UPLOAD_LIFETIME`); also how long a pushed blob waits for a manifest."""

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
    "upload_lifetime": "MIRROR_UPLOAD_LIFETIME",
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
    parser.add_argument("--upload-lifetime", default=default("upload_lifetime"))
    args = parser.parse_args(argv)
    try:
        args.upload_lifetime = float(args.upload_lifetime)
        if not 1 <= args.upload_lifetime <= 30 * 86400:
            raise ValueError
    except ValueError:
        parser.error(
            "--upload-lifetime (or MIRROR_UPLOAD_LIFETIME) must be seconds between 1 and "
            f"2592000 (30 days), got {args.upload_lifetime!r}"
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
        upload_lifetime=args.upload_lifetime,
    )
