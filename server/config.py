"""Settings of a server process, from command-line flags or, equally, environment variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from server.logs import LOG_FORMATS


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
    log_format: str = "text"
    """`text` or `json` lines (`MIRROR_LOG_FORMAT`)."""
    metrics_address: str = ""
    """Where `/metrics` (Prometheus) listens; empty turns it off (`MIRROR_METRICS_ADDRESS`)."""
    schedule_interval: float = 1.0
    """Seconds between two looks for due schedules."""
    retry_backoff: float | None = None
    """First retry delay in seconds (None: the engine default); tests shorten it."""

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
    "log_format": "MIRROR_LOG_FORMAT",
    "metrics_address": "MIRROR_METRICS_ADDRESS",
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
    parser.add_argument(
        "--log-format",
        default=default("log_format"),
        help="text or json lines (MIRROR_LOG_FORMAT); json lines carry the task name",
    )
    parser.add_argument(
        "--metrics-address",
        default=default("metrics_address"),
        help="host:port of the Prometheus /metrics endpoint (MIRROR_METRICS_ADDRESS); "
        "off unless set",
    )
    args = parser.parse_args(argv)
    if not str(args.workers).isdigit() or int(args.workers) < 1:
        parser.error(
            f"--workers (or MIRROR_WORKERS) must be a whole number >= 1, got {args.workers!r}"
        )
    args.workers = int(args.workers)
    if args.log_format not in LOG_FORMATS:
        parser.error(
            f"--log-format (or MIRROR_LOG_FORMAT) must be text or json, got {args.log_format!r}"
        )
    if args.metrics_address and not _is_address(args.metrics_address):
        parser.error(
            "--metrics-address (or MIRROR_METRICS_ADDRESS) must be host:port, "
            f"got {args.metrics_address!r}"
        )
    return Settings(
        grpc_address=args.grpc_address,
        registry_address=args.registry_address,
        data_dir=Path(args.data_dir),
        database_url=args.database_url,
        workers=args.workers,
        log_level=args.log_level.upper(),
        log_format=args.log_format,
        metrics_address=args.metrics_address,
    )


def _is_address(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and int(port) < 65536)
