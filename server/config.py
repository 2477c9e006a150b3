"""Settings of a server process, from command-line flags or, equally, environment variables."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

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
    limits: Limits = field(default_factory=Limits)
    """Connection, request and upstream bounds (see `Limits`)."""

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
    limit_fields = fields(Limits)
    for f in limit_fields:
        text = getattr(Limits(), f.name)
        text = ",".join(text) if isinstance(text, tuple) else str(text)
        parser.add_argument(
            "--" + f.name.replace("_", "-"), default=env.get(f"MIRROR_{f.name.upper()}", text)
        )
    args = parser.parse_args(argv)
    limits: dict[str, object] = {}
    for f in limit_fields:
        try:
            limits[f.name] = _limit_value(f.name, str(f.type), str(getattr(args, f.name)))
        except ValueError as exc:
            parser.error(f"--{f.name.replace('_', '-')}: {exc}")
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
        limits=Limits(**limits),  # type: ignore[arg-type]
    )
