"""API token secrets: 256 random bits, shown once; the database keeps only their SHA-256.

The `mirror_` prefix lets secret scanners (and people) recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "mirror_"


def new_secret() -> str:
    """A fresh token secret."""
    return PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """What the database keeps. A fast hash is right for 256-bit random secrets: nobody can
    guess them, and a slow hash would slow every call."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_token(secret: str) -> bool:
    """A cheap shape check before any database lookup."""
    return secret.startswith(PREFIX) and 20 < len(secret) < 200
