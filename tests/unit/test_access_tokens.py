"""The registry's bearer tokens: the memo of verified tokens never outlives what a fresh
verification would accept (expiry, tampering, a foreign key) and stays bounded."""

from __future__ import annotations

import time

import jwt
import pytest

from server.access import registry
from server.access.registry import Grant, RegistryTokens

PULL = [Grant("repository", "team/app", ("pull",))]


def test_a_memoized_token_expires_at_its_exp(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = RegistryTokens(b"k" * 32, lifetime=300)
    token = tokens.issue("alice", PULL)
    claims = tokens.verify(token)
    assert claims is not None and claims["sub"] == "alice"
    assert tokens.verify(token) is claims  # the second use is answered from the memo

    real = time.time
    monkeypatch.setattr(registry.time, "time", lambda: real() + 301)
    assert tokens.verify(token) is None
    monkeypatch.setattr(registry.time, "time", real)
    # Gone from the memo: a fresh decode decides again (and jwt checks exp with its own clock).
    assert token not in tokens._verified


def test_a_tampered_or_foreign_token_is_refused_beside_a_memoized_one() -> None:
    tokens = RegistryTokens(b"k" * 32, lifetime=300)
    token = tokens.issue("alice", PULL)
    assert tokens.verify(token) is not None
    header, payload, signature = token.split(".")
    assert tokens.verify(f"{header}.{payload}.{signature[:-2]}AA") is None
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["access"] = [{"type": "repository", "name": "team/other", "actions": ["push"]}]
    forged = jwt.encode(claims, b"x" * 32, algorithm="HS256")
    assert tokens.verify(forged) is None
    other_server = RegistryTokens(b"o" * 32, lifetime=300)
    assert other_server.verify(token) is None


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "VERIFIED_MEMO_SIZE", 8)
    tokens = RegistryTokens(b"k" * 32, lifetime=300)
    issued = [tokens.issue(f"user{i}", PULL) for i in range(20)]
    for token in issued:
        assert tokens.verify(token) is not None
    assert len(tokens._verified) == 8
    assert list(tokens._verified) == issued[-8:]  # the oldest went first
    assert tokens.verify(issued[0]) is not None  # still valid: verified again
