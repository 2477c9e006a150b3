"""Where an upstream may lead the server (server/sync/origins.py, the realm rule of auth.py)
and the registry's accept-failure reporting (server/registry/connections.py)."""

from __future__ import annotations

import errno
import logging

import pytest

from server.config import Limits
from server.domain.errors import UpstreamAuthError
from server.domain.resources import Remote
from server.registry.connections import ConnectionGuard
from server.sync.auth import Authorizer
from server.sync.origins import NetworkPolicy, Origin, registrable_domain


def _authorizer(url: str, allowlist: tuple[str, ...] = ()) -> Authorizer:
    remote = Remote(remote_id="r", url=url, upstream_name="app", token_realm_allowlist=allowlist)
    policy = NetworkPolicy.for_remote(url, Limits())
    return Authorizer(None, remote, url, policy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("registry", "realm"),
    [
        ("https://registry-1.docker.io", "https://auth.docker.io/token"),
        ("https://registry-1.docker.io", "https://auth.docker.io./token"),  # trailing dot
        ("https://REGISTRY-1.docker.io.", "https://auth.Docker.io/token"),
        ("https://myreg.azurecr.io", "https://myreg.azurecr.io/oauth2/token"),
        ("https://registry.example.co.uk", "https://auth.example.co.uk/token"),
        ("https://quay.io", "https://quay.io/v2/auth"),
    ],
)
def test_realms_of_the_same_registrable_domain_are_trusted(registry: str, realm: str) -> None:
    _authorizer(registry)._check_realm(realm)


@pytest.mark.parametrize(
    ("registry", "realm"),
    [
        ("https://registry.example.co.uk", "https://evil.co.uk/token"),  # public suffix co.uk
        ("https://myreg.azurecr.io", "https://attacker.azurecr.io/oauth2/token"),  # tenants
        ("https://registry-1.docker.io", "https://docker.io.evil.com/token"),
        ("https://registry-1.docker.io", "http://auth.docker.io/token"),  # https -> http
        ("https://registry-1.docker.io", "https://127.0.0.1/token"),  # private, public remote
        ("https://registry-1.docker.io", "https://localhost./token"),
        ("https://registry-1.docker.io", "https://[::ffff:10.0.0.1]/token"),  # mapped private
    ],
)
def test_foreign_or_private_realms_are_refused(registry: str, realm: str) -> None:
    with pytest.raises(UpstreamAuthError) as caught:
        _authorizer(registry)._check_realm(realm)
    assert caught.value.reason == "UPSTREAM_REALM_REFUSED"


def test_allow_listed_realm_host_is_trusted_with_or_without_a_trailing_dot() -> None:
    _authorizer("https://registry.example.com", ("auth.other.net.",))._check_realm(
        "https://auth.other.net/token"
    )


@pytest.mark.parametrize(
    ("url", "other", "same"),
    [
        ("https://reg.io", "https://reg.io:443/v2/", True),
        ("https://reg.io", "http://reg.io/v2/", False),  # the http page gets no credentials
        ("https://reg.io", "https://reg.io:8443/v2/", False),
        ("https://reg.io", "https://REG.io./v2/", True),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5001/", False),
        ("https://reg.io", "http://[", False),  # unparsable: matches nothing
    ],
)
def test_credentials_go_only_to_the_same_origin(url: str, other: str, same: bool) -> None:
    assert _authorizer(url).may_receive_credentials(other) is same
    assert (Origin.of(url) == Origin.of(other)) is same


@pytest.mark.parametrize(
    ("remote", "target", "refused"),
    [
        ("https://registry-1.docker.io", "127.0.0.1", True),
        ("https://registry-1.docker.io", "169.254.169.254", True),  # cloud metadata
        ("https://registry-1.docker.io", "10.1.2.3", True),
        ("https://registry-1.docker.io", "fe80::1", True),
        ("https://registry-1.docker.io", "localhost", True),
        ("https://registry-1.docker.io", "8.8.8.8", False),
        ("https://registry-1.docker.io", "auth.docker.io", False),  # names: at resolution
        ("http://127.0.0.1:5000", "127.0.0.1", False),  # an administrator chose a private one
        ("http://localhost:5000", "10.0.0.1", False),
    ],
)
def test_private_addresses_only_for_private_remotes(
    remote: str, target: str, refused: bool
) -> None:
    assert NetworkPolicy.for_remote(remote, Limits()).refuses_host(target) is refused
    allowed = NetworkPolicy.for_remote(remote, Limits(allow_private_upstreams=True))
    assert not allowed.refuses_host(target)


def test_registrable_domains_follow_the_public_suffix_list() -> None:
    assert registrable_domain("evil.co.uk") != registrable_domain("registry.example.co.uk")
    assert registrable_domain("a.b.example.co.uk.") == "example.co.uk"
    assert registrable_domain("attacker.azurecr.io") != registrable_domain("myreg.azurecr.io")


def test_accept_failures_are_counted_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = ConnectionGuard(Limits(accept_error_log_interval=3600))
    failure = OSError(errno.EMFILE, "Too many open files")
    with caplog.at_level(logging.ERROR, logger="mirror.registry"):
        for _ in range(10_000):
            guard.accept_failed(failure)
    assert guard.accept_errors == 10_000
    lines = [r for r in caplog.records if "accepting registry connections failed" in r.message]
    assert len(lines) == 1


def test_caps_per_address_and_total() -> None:
    guard = ConnectionGuard(Limits(http_max_connections=5, http_max_connections_per_address=2))
    assert [guard.admit("a") for _ in range(3)] == [True, True, False]
    assert [guard.admit("b") for _ in range(2)] == [True, True]
    assert guard.admit("c") is True
    assert guard.admit("d") is False  # total of 5 reached
    guard.release("a")
    assert guard.admit("d") is True
    assert guard.refused == 2
