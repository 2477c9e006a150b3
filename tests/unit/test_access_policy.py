"""The one policy (`server/access/policy.py`) and the registry's scope grammar, as tables."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from server.access.model import ANONYMOUS, Action, Principal, Role
from server.access.policy import may
from server.access.registry import Grant, _allows
from server.access.rules import RULES, repository_of
from server.domain.credentials import origin

ADMIN = Principal("root", Role.ADMIN)
EDITOR = Principal("ed", Role.EDITOR)
VIEWER = Principal("vi", Role.VIEWER)
REPO_EDITOR = Principal("re", grants=MappingProxyType({"a": Role.EDITOR}))
REPO_VIEWER = Principal("rv", grants=MappingProxyType({"a": Role.VIEWER}))
NOBODY = Principal("no")

# (principal, action, repository, public) -> may?
TABLE = [
    (ADMIN, Action.ADMIN, None, False, True),
    (EDITOR, Action.ADMIN, None, False, False),
    (EDITOR, Action.WRITE, None, False, True),
    (EDITOR, Action.PUSH, "a", False, True),
    (VIEWER, Action.WRITE, "a", False, False),
    (VIEWER, Action.PUSH, "a", False, False),
    (VIEWER, Action.PULL, "a", False, True),
    (REPO_EDITOR, Action.WRITE, "a", False, True),
    (REPO_EDITOR, Action.PUSH, "a", False, True),
    (REPO_EDITOR, Action.WRITE, "b", False, False),
    (REPO_EDITOR, Action.WRITE, None, False, False),  # creating a repository is global
    (REPO_EDITOR, Action.READ, None, False, False),  # lists of everything are global
    (REPO_EDITOR, Action.ADMIN, "a", False, False),
    (REPO_VIEWER, Action.PULL, "a", False, True),
    (REPO_VIEWER, Action.PUSH, "a", False, False),
    (REPO_VIEWER, Action.PULL, "b", False, False),
    (NOBODY, Action.READ, "a", False, False),
    (ANONYMOUS, Action.PULL, "a", False, False),
    (ANONYMOUS, Action.PULL, "a", True, True),  # public distribution
    (ANONYMOUS, Action.PUSH, "a", True, False),  # public is pull only
]


@pytest.mark.parametrize(("principal", "action", "repository", "public", "allowed"), TABLE)
def test_policy(
    principal: Principal, action: Action, repository: str | None, public: bool, allowed: bool
) -> None:
    assert may(principal, action, repository, public=public) is allowed


def test_scope_grammar_and_claims() -> None:
    assert Grant.parse("repository:team/app:pull,push") == Grant(
        "repository", "team/app", ("pull", "push")
    )
    assert Grant.parse("registry:catalog:*") == Grant("registry", "catalog", ("*",))
    assert Grant.parse("nonsense") is None
    claims = {"access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]}
    assert _allows(claims, "team/app", "pull")
    assert not _allows(claims, "team/app", "push")
    assert not _allows(claims, "team/other", "pull")
    assert not _allows({"access": "garbage"}, "team/app", "pull")


def test_rules_name_the_repository() -> None:
    assert repository_of("repositories/a/versions/3") == "a"
    assert repository_of("remotes/a") is None
    assert repository_of("") is None
    assert all(method.startswith("/mirror.v1.") for method in RULES)


def test_origin_is_scheme_host_port() -> None:
    assert origin("https://Registry.Example.com/v2") == ("https", "registry.example.com", 443)
    assert origin("https://registry.example.com:443") == origin("https://registry.example.com.")
    assert origin("http://h:8080") != origin("http://h:8081")
    assert origin("http://h") != origin("https://h")
