"""Settings of a server process, from command-line flags or, equally, environment variables."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from server.logs import LOG_FORMATS
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
    http_send_stall_timeout: float = 60.0
    """Seconds a registry client may accept no byte of a blob being sent before it is cut off."""
    http_sendfile_threads: int = 64
    """Threads sending filesystem blobs with sendfile at once; more downloads at a time take
    the slower chunked path rather than wait."""
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
    log_format: str = "text"
    """`text` or `json` lines (`MIRROR_LOG_FORMAT`)."""
    metrics_address: str = ""
    """Where `/metrics` (Prometheus) listens; empty turns it off (`MIRROR_METRICS_ADDRESS`)."""
    schedule_interval: float = 1.0
    """Seconds between two looks for due schedules."""
    retry_backoff: float | None = None
    """First retry delay in seconds (None: the engine default); tests shorten it."""
    upload_lifetime: float = 86400.0
    """Seconds a blob upload may sit idle before it expires with its bytes
    (`MIRROR_UPLOAD_LIFETIME`); also how long a pushed blob waits for a manifest."""
    limits: Limits = field(default_factory=Limits)
    """Connection, request and upstream bounds (see `Limits`)."""
    orphan_protection_time: float = 3600.0
    """Seconds garbage collection keeps unreferenced content after its last use
    (`MIRROR_ORPHAN_PROTECTION_TIME`, e.g. `3600`, `90m`, `1d`); what running tasks use is
    always kept. Like Pulp's `ORPHAN_PROTECTION_TIME`."""
    task_retention: float = 30 * 86400.0
    """Seconds finished task rows are kept before garbage collection deletes them
    (`MIRROR_TASK_RETENTION`, e.g. `30d`)."""
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
    "log_format": (
        "MIRROR_LOG_FORMAT",
        "text or json lines; json lines carry the task name of a task's records",
    ),
    "metrics_address": (
        "MIRROR_METRICS_ADDRESS",
        "host:port of the Prometheus /metrics endpoint; empty: not served",
    ),
    "upload_lifetime": (
        "MIRROR_UPLOAD_LIFETIME",
        "seconds a blob upload may sit idle before it expires (1 to 2592000)",
    ),
    "orphan_protection_time": (
        "MIRROR_ORPHAN_PROTECTION_TIME",
        "garbage collection keeps unreferenced content used within this (e.g. 90m, 1d)",
    ),
    "task_retention": (
        "MIRROR_TASK_RETENTION",
        "garbage collection deletes finished tasks older than this (e.g. 30d)",
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
    "tls_cert": ("MIRROR_TLS_CERT", "PEM certificate served on both ports; empty: plaintext"),
    "tls_key": ("MIRROR_TLS_KEY", "PEM private key of --tls-cert"),
    "tls_client_ca": (
        "MIRROR_TLS_CLIENT_CA",
        "PEM CA: gRPC requires client certificates it signed (mTLS; CN names the principal)",
    ),
    "secret_key_file": (
        "MIRROR_SECRET_KEY_FILE",
        "key encrypting remote secrets at rest; empty: <data-dir>/secret.key (generated)",
    ),
    "registry_token_seconds": (
        "MIRROR_REGISTRY_TOKEN_SECONDS",
        "lifetime of the registry's bearer tokens (10..86400)",
    ),
}
_CHOICES = {
    "log_format": LOG_FORMATS,
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
        value = getattr(defaults, name)
        shown = "" if value is None else str(value)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=env.get(variable, shown),
            metavar=name.split("_")[-1].upper(),
            help=f"{text} (env {variable}; default {shown or 'empty'})",
        )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        default=env.get("MIRROR_NO_AUTH", "") in ("1", "true", "yes"),
        help="no credentials, every caller is admin: local experiments on loopback only "
        "(env MIRROR_NO_AUTH=1)",
    )
    parser.add_argument(
        "--rotate-secret-key",
        action="store_true",
        help="generate a new secrets key, re-encrypt every stored secret with it and exit "
        "(run it with the servers stopped)",
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
    if args.metrics_address and not _is_address(args.metrics_address):
        parser.error(
            "--metrics-address (or MIRROR_METRICS_ADDRESS) must be host:port, "
            f"got {args.metrics_address!r}"
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
    durations = {}
    for name in ("orphan_protection_time", "task_retention"):
        try:
            durations[name] = parse_duration(str(getattr(args, name)))
        except ValueError:
            parser.error(
                f"--{name.replace('_', '-')} (or {_ENV[name]}) must be a duration such as "
                f"3600, 90m, 2h or 30d, got {getattr(args, name)!r}"
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
        upload_lifetime=upload_lifetime,
        limits=Limits(**limits),  # type: ignore[arg-type]
        **durations,
        storage_url=args.storage_url,
        storage_durability=args.storage_durability,
        s3_endpoint_url=args.s3_endpoint_url,
        s3_addressing=args.s3_addressing,
        s3_serve=args.s3_serve,
        s3_presign_seconds=int(seconds),
        no_auth=bool(args.no_auth),
        tls_cert=_optional_path(args.tls_cert),
        tls_key=_optional_path(args.tls_key),
        tls_client_ca=_optional_path(args.tls_client_ca),
        secret_key_file=_optional_path(args.secret_key_file),
        registry_token_seconds=int(args.registry_token_seconds),
        rotate_secret_key=bool(args.rotate_secret_key),
    )


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `2h`, `30d` -> seconds; ValueError for anything else."""
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:], 0)
    number = float(text[:-1] if unit else text)
    if not number >= 0 or number == float("inf"):  # also rejects NaN
        raise ValueError(text)
    return number * (unit or 1)


def _is_address(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and int(port) < 65536)
