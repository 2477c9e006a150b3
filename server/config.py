"""Settings of a server process, from command-line flags or, equally, environment variables."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from server.storage import StorageConfig

# Where a public upstream must never lead the server (redirects, token realms, Link URLs):
# loopback, RFC 1918, link-local, carrier-grade NAT, unique-local, unspecified and the
# IPv4-mapped IPv6 range (checked after unmapping as well).
DEFAULT_PRIVATE_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds against abusive clients and lying upstreams (README "Limits and hostile input").

    Each field is a flag `--<field-with-dashes>` and a variable `MIRROR_<FIELD>`.
    """

    http_header_timeout: float = 10.0
    """Seconds a registry client has to finish a request's headers once it started sending."""
    http_keepalive_timeout: float = 60.0
    """Seconds a registry connection may sit idle (before its first request or between two)."""
    http_max_connections: int = 1000
    """Open registry connections at most; more are closed at once."""
    http_max_connections_per_address: int = 200
    """Open registry connections from one client address at most."""
    grpc_max_connections: int = 1000
    """Open gRPC connections at most (gRPC core refuses more)."""
    grpc_handshake_timeout: float = 10.0
    """Seconds a gRPC client has to finish the HTTP/2 handshake."""
    grpc_max_concurrent_streams: int = 100
    """Concurrent calls (HTTP/2 streams) on one gRPC connection."""
    grpc_max_concurrent_rpcs: int = 1000
    """Calls in progress on the whole gRPC server; more fail with RESOURCE_EXHAUSTED."""
    grpc_max_receive_bytes: int = 4 * 1024 * 1024
    """Largest gRPC request message."""
    grpc_max_send_bytes: int = 64 * 1024 * 1024
    """Largest gRPC response message."""
    grpc_keepalive_min_ping_interval: float = 60.0
    """Clients pinging more often than this (without calls) get GOAWAY after two strikes."""
    grpc_max_connection_idle: float = 900.0
    """Seconds an idle gRPC connection is kept."""
    accept_error_log_interval: float = 10.0
    """Accept failures (e.g. out of file descriptors) are logged once per this many seconds,
    with the count since the last line."""
    max_blob_bytes: int = 64 * 1024**3
    """Largest blob an upstream may declare (a layer descriptor's size); bigger fails the sync."""
    metadata_timeout: float = 120.0
    """Deadline in seconds of one metadata request (tag list page, manifest, token, referrers)
    when the remote sets no total_timeout."""
    max_tag_list_bytes: int = 64 * 1024 * 1024
    """Bytes of one remote's whole tag listing (all pages)."""
    max_tag_list_pages: int = 10_000
    """Pages of one tag listing."""
    max_manifests_per_tag: int = 1000
    """Manifests one tag may bring in (an index and its children, recursively)."""
    max_index_depth: int = 4
    """Nesting of indexes under a tag (an index of indexes is depth 2)."""
    allow_private_upstreams: bool = False
    """Let any upstream lead to private addresses. Without it, only a remote whose own URL
    is private may (an administrator chose that address); a public one may not redirect, hand
    a token realm or a Link to one."""
    private_networks: tuple[str, ...] = DEFAULT_PRIVATE_NETWORKS
    """What counts as private for the rule above (comma-separated CIDRs in flag/variable)."""


def _limit_value(name: str, kind: str, raw: str) -> object:
    """Parse one Limits value from its text; ValueError with a readable message."""
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{name} must be true or false, got {raw!r}")
    if kind == "tuple[str, ...]":
        networks = tuple(p.strip() for p in raw.split(",") if p.strip())
        for network in networks:
            ipaddress.ip_network(network, strict=False)
        return networks
    value = float(raw) if kind == "float" else int(raw)
    if value <= 0 or value != value:
        raise ValueError(f"{name} must be > 0, got {raw!r}")
    return value


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
    limits: Limits = field(default_factory=Limits)
    """Connection, request and upstream bounds (see `Limits`)."""
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
    "upload_lifetime": (
        "MIRROR_UPLOAD_LIFETIME",
        "seconds a blob upload may sit idle before it expires (1 to 2592000)",
    ),
    "storage_url": (
        "MIRROR_STORAGE_URL",
        "where blobs live: empty for files in the data dir, s3://bucket/prefix for S3",
    ),
    "storage_durability": (
        "MIRROR_STORAGE_DURABILITY",
        "filesystem: full (fsync file and directory before publishing) or none",
    ),
    "s3_endpoint_url": (
        "MIRROR_S3_ENDPOINT_URL",
        "URL of an S3-compatible server (MinIO, Ceph, ...); empty: AWS",
    ),
    "s3_addressing": ("MIRROR_S3_ADDRESSING", "S3 bucket addressing: auto, path or virtual"),
    "s3_serve": (
        "MIRROR_S3_SERVE",
        "registry GETs of S3 blobs: redirect (to a presigned URL) or stream (through the server)",
    ),
    "s3_presign_seconds": ("MIRROR_S3_PRESIGN_SECONDS", "lifetime of a presigned blob URL"),
}
_CHOICES = {
    "storage_durability": ("full", "none"),
    "s3_addressing": ("auto", "path", "virtual"),
    "s3_serve": ("redirect", "stream"),
}
_ENV = {field: env for field, (env, _help) in _OPTIONS.items()}

_DESCRIPTION = """\
Serve the mirror: the gRPC API (repositories, remotes, syncs, versions, content,
distributions, tasks; reflection and health on) and the OCI registry endpoint that serves
what was mirrored. Every option can equally be set by its environment variable; a flag wins
over its variable, which wins over the default. SIGINT or SIGTERM stops the server cleanly.
"""


def _limit_variable(name: str) -> str:
    return f"MIRROR_{name.upper()}"


def _epilog() -> str:
    rows = "\n".join(
        f"  {env:<26} --{field.replace('_', '-')}" for field, (env, _) in _OPTIONS.items()
    )
    limit_rows = "\n".join(
        f"  {_limit_variable(f.name):<40} --{f.name.replace('_', '-')}" for f in fields(Limits)
    )
    return (
        f"environment variables:\n{rows}\n\n"
        f'limits (README "Limits and hostile input" gives each default and why):\n'
        f"{limit_rows}\n\n"
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
    for name, (variable, text) in _OPTIONS.items():
        shown = getattr(defaults, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=env.get(variable, str(shown)),
            metavar=name.split("_")[-1].upper(),
            help=f"{text} (env {variable}; default {str(shown) or 'empty'})",
        )
    limit_fields = fields(Limits)
    for f in limit_fields:
        text = getattr(Limits(), f.name)
        text = ",".join(text) if isinstance(text, tuple) else str(text)
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            default=env.get(_limit_variable(f.name), text),
            metavar=f.name.split("_")[-1].upper(),
            help=f"(env {_limit_variable(f.name)}; default {text})",
        )
    args = parser.parse_args(argv)
    limits: dict[str, object] = {}
    for f in limit_fields:
        try:
            limits[f.name] = _limit_value(f.name, str(f.type), str(getattr(args, f.name)))
        except ValueError as exc:
            parser.error(f"--{f.name.replace('_', '-')}: {exc}")
    for name, choices in _CHOICES.items():
        if getattr(args, name) not in choices:
            flag = "--" + name.replace("_", "-")
            parser.error(
                f"{flag} (or {_ENV[name]}) must be one of {', '.join(choices)}, "
                f"got {getattr(args, name)!r}"
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
    try:
        upload_lifetime = float(args.upload_lifetime)
        if not 1 <= upload_lifetime <= 30 * 86400:
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
        upload_lifetime=upload_lifetime,
        limits=Limits(**limits),  # type: ignore[arg-type]
        storage_url=args.storage_url,
        storage_durability=args.storage_durability,
        s3_endpoint_url=args.s3_endpoint_url,
        s3_addressing=args.s3_addressing,
        s3_serve=args.s3_serve,
        s3_presign_seconds=int(seconds),
    )
