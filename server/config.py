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
    no_auth: bool = False
    """Every caller is admin, no credentials (`MIRROR_NO_AUTH=1`); refused off loopback."""
    tls_cert: Path | None = None
    """PEM certificate (chain) served on both ports (`MIRROR_TLS_CERT`); None: plaintext."""
    tls_key: Path | None = None
    """PEM private key of `tls_cert` (`MIRROR_TLS_KEY`)."""
    tls_client_ca: Path | None = None
    """PEM CA bundle: gRPC then requires client certificates signed by it, and a
    certificate's common name authenticates as the principal of that name
    (`MIRROR_TLS_CLIENT_CA`)."""
    secret_key_file: Path | None = None
    """Key that encrypts remote secrets at rest (`MIRROR_SECRET_KEY_FILE`); None:
    `<data_dir>/secret.key`, generated on first start."""
    registry_token_seconds: int = 300
    """Lifetime of the bearer tokens `GET /token` issues (`MIRROR_REGISTRY_TOKEN_SECONDS`)."""
    rotate_secret_key: bool = False
    """Not a setting but a one-off command: re-encrypt stored secrets with a new key, exit."""

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def sqlite_path(self) -> Path:
        return (self.data_dir / "mirror.db").resolve()

    @property
    def effective_secret_key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def registry_key_file(self) -> Path:
        return self.data_dir / "registry-token.key"


_ENV = {
    "grpc_address": "MIRROR_GRPC_ADDRESS",
    "registry_address": "MIRROR_REGISTRY_ADDRESS",
    "data_dir": "MIRROR_DATA_DIR",
    "database_url": "MIRROR_DATABASE_URL",
    "workers": "MIRROR_WORKERS",
    "log_level": "MIRROR_LOG_LEVEL",
    "tls_cert": "MIRROR_TLS_CERT",
    "tls_key": "MIRROR_TLS_KEY",
    "tls_client_ca": "MIRROR_TLS_CLIENT_CA",
    "secret_key_file": "MIRROR_SECRET_KEY_FILE",
    "registry_token_seconds": "MIRROR_REGISTRY_TOKEN_SECONDS",
}


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def parse_settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Flags win over environment variables, which win over the defaults."""
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="mirror-server", description=__doc__)

    def default(field: str) -> str:
        value = getattr(defaults, field)
        return env.get(_ENV[field], "" if value is None else str(value))

    parser.add_argument("--grpc-address", default=default("grpc_address"))
    parser.add_argument("--registry-address", default=default("registry_address"))
    parser.add_argument("--data-dir", default=default("data_dir"))
    parser.add_argument("--database-url", default=default("database_url"))
    parser.add_argument("--workers", default=default("workers"))
    parser.add_argument("--log-level", default=default("log_level"))
    parser.add_argument(
        "--no-auth",
        action="store_true",
        default=env.get("MIRROR_NO_AUTH", "") in ("1", "true", "yes"),
        help="no credentials, every caller is admin: local experiments on loopback only",
    )
    parser.add_argument("--tls-cert", default=default("tls_cert"), metavar="PEM")
    parser.add_argument("--tls-key", default=default("tls_key"), metavar="PEM")
    parser.add_argument("--tls-client-ca", default=default("tls_client_ca"), metavar="PEM")
    parser.add_argument("--secret-key-file", default=default("secret_key_file"), metavar="FILE")
    parser.add_argument(
        "--registry-token-seconds", default=default("registry_token_seconds"), metavar="N"
    )
    parser.add_argument(
        "--rotate-secret-key",
        action="store_true",
        help="generate a new secrets key, re-encrypt every stored secret with it and exit "
        "(run it with the servers stopped)",
    )
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key (MIRROR_TLS_CERT, MIRROR_TLS_KEY) go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    if not str(args.registry_token_seconds).isdigit() or not (
        10 <= int(args.registry_token_seconds) <= 86400
    ):
        parser.error("--registry-token-seconds must be a whole number from 10 to 86400")
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
        no_auth=bool(args.no_auth),
        tls_cert=_optional_path(args.tls_cert),
        tls_key=_optional_path(args.tls_key),
        tls_client_ca=_optional_path(args.tls_client_ca),
        secret_key_file=_optional_path(args.secret_key_file),
        registry_token_seconds=int(args.registry_token_seconds),
        rotate_secret_key=bool(args.rotate_secret_key),
    )
