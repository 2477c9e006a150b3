"""Principals with tokens for the access tests, made through the real AccessService."""

from __future__ import annotations

from client import AsyncMirrorClient


async def principal_with_token(
    admin: AsyncMirrorClient,
    name: str,
    role: str = "",
    grants: dict[str, str] | None = None,
) -> str:
    """Create principal `name` with a global `role` and `{repository: role}` grants; return
    the secret of a new token of it."""
    await admin.create_principal(name, role)
    for repository, grant_role in (grants or {}).items():
        await admin.create_grant(name, repository, grant_role)
    return (await admin.create_token(name, "test token")).secret
