"""Domain types of access control: no grpc, aiohttp or sqlalchemy here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    """What a principal may do, globally or on one repository. Ordered: each includes the
    ones before it."""

    NONE = ""
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.NONE: 0, Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}

GRANT_ROLES = (Role.VIEWER, Role.EDITOR)
"""Roles a per-repository grant may give (admin is global only)."""


class Action(StrEnum):
    """What a call does; `policy.may` maps each to the least role that allows it."""

    READ = "read"
    """Read resources and watch tasks (never secrets)."""
    WRITE = "write"
    """Create, update, delete; start and cancel syncs."""
    PULL = "pull"
    """Pull through the registry endpoint."""
    PUSH = "push"
    """Push through the registry endpoint (the push helper's hook)."""
    ADMIN = "admin"
    """Principals, tokens and grants."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: a named user or service account with a global role and per-repository
    grants (`{repository_id: role}`)."""

    name: str
    role: Role = Role.NONE
    grants: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    token_id: str = ""
    """The API token this call authenticated with ("" for mTLS, anonymous, registry JWT)."""
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def resource_name(self) -> str:
        return f"principals/{self.name}"

    @property
    def is_anonymous(self) -> bool:
        return self is ANONYMOUS or self.name == ""


ANONYMOUS = Principal(name="")
"""No credentials: may pull public distributions, nothing else."""

NO_AUTH = Principal(name="no-auth", role=Role.ADMIN)
"""Everyone, when the server runs with `--no-auth` (loopback experiments only)."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token's public facts; the secret is never kept."""

    principal: str
    token_id: str
    description: str = ""
    create_time: datetime | None = None
    expire_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"principals/{self.principal}/tokens/{self.token_id}"


@dataclass(frozen=True, slots=True)
class Grant:
    """A principal's role on one repository."""

    principal: str
    repository_id: str
    role: Role

    @property
    def name(self) -> str:
        return f"principals/{self.principal}/grants/{self.repository_id}"
