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
    orphan_protection_time: float = 3600.0
    """Seconds garbage collection keeps unreferenced content after its last use
    (`MIRROR_ORPHAN_PROTECTION_TIME`, e.g. `3600`, `90m`, `1d`); what running tasks use is
    always kept. Like Pulp's `ORPHAN_PROTECTION_TIME`."""
    task_retention: float = 30 * 86400.0
    """Seconds finished task rows are kept before garbage collection deletes them
    (`MIRROR_TASK_RETENTION`, e.g. `30d`)."""

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
    "orphan_protection_time": "MIRROR_ORPHAN_PROTECTION_TIME",
    "task_retention": "MIRROR_TASK_RETENTION",
}

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `2h`, `30d` -> seconds; ValueError for anything else."""
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:], 0)
    number = float(text[:-1] if unit else text)
    if not number >= 0 or number == float("inf"):  # also rejects NaN
        raise ValueError(text)
    return number * (unit or 1)


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
        "--orphan-protection-time",
        default=env.get(_ENV["orphan_protection_time"], "1h"),
        help="keep unreferenced content this long after its last use (e.g. 90m, 1d)",
    )
    parser.add_argument(
        "--task-retention",
        default=env.get(_ENV["task_retention"], "30d"),
        help="delete finished tasks older than this when garbage collection runs",
    )
    args = parser.parse_args(argv)
    durations = {}
    for field in ("orphan_protection_time", "task_retention"):
        try:
            durations[field] = parse_duration(getattr(args, field))
        except ValueError:
            parser.error(
                f"--{field.replace('_', '-')} (or {_ENV[field]}) must be a duration such as "
                f"3600, 90m, 2h or 30d, got {getattr(args, field)!r}"
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
        **durations,
    )
