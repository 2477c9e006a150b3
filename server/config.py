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

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mirror.db').resolve()}"


# Settings field -> (environment variable, help text). One table drives the flags, the
# variables and `mirror-server --help`, so no option can exist without its variable or its text.
_OPTIONS: dict[str, tuple[str, str]] = {
    "grpc_address": ("MIRROR_GRPC_ADDRESS", "host:port of the gRPC API"),
    "registry_address": (
        "MIRROR_REGISTRY_ADDRESS",
        "host:port of the OCI registry (pull) endpoint",
    ),
    "data_dir": ("MIRROR_DATA_DIR", "directory of the blob storage and the embedded SQLite file"),
    "database_url": (
        "MIRROR_DATABASE_URL",
        "SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db; empty: SQLite in the data dir",
    ),
    "workers": ("MIRROR_WORKERS", "tasks (syncs) this process runs at once"),
    "log_level": ("MIRROR_LOG_LEVEL", "Python logging level: DEBUG, INFO, WARNING, ERROR"),
}
_ENV = {field: env for field, (env, _help) in _OPTIONS.items()}

_DESCRIPTION = """\
Serve the mirror: the gRPC API (repositories, remotes, syncs, versions, content,
distributions, tasks; reflection and health on) and the OCI registry endpoint that serves
what was mirrored. Every option can equally be set by its environment variable; a flag wins
over its variable, which wins over the default. SIGINT or SIGTERM stops the server cleanly.
"""


def _epilog() -> str:
    rows = "\n".join(
        f"  {env:<26} --{field.replace('_', '-')}" for field, (env, _) in _OPTIONS.items()
    )
    return (
        f"environment variables:\n{rows}\n\n"
        "exit status: 0 after a clean stop, 2 for a bad option, 3 when an address is taken\n"
        "or cannot be listened on, 1 for any other start-up failure."
    )


def parse_settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Flags win over environment variables, which win over the defaults."""
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="mirror-server",
        description=_DESCRIPTION,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for field, (variable, text) in _OPTIONS.items():
        shown = getattr(defaults, field)
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            default=env.get(variable, str(shown)),
            metavar=field.split("_")[-1].upper(),
            help=f"{text} (env {variable}; default {str(shown) or 'empty'})",
        )
    args = parser.parse_args(argv)
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
    )
