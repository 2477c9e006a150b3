"""Pure pieces of the sync client: challenges, registrable domains, Retry-After, rate limits."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from server.sync.auth import Challenge, basic_header, parse_challenge
from server.sync.hosts import MAX_BACKOFF, Hosts, RateLimiter, parse_retry_after
from server.sync.origins import registrable_domain

# --- WWW-Authenticate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:a/b:pull,push"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:a/b:pull,push",
                },
            ),
            id="docker-hub",
        ),
        pytest.param(
            'Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:o/r:pull"',
            Challenge(
                "bearer",
                {
                    "realm": "https://ghcr.io/token",
                    "service": "ghcr.io",
                    "scope": "repository:o/r:pull",
                },
            ),
            id="spaces-after-commas",
        ),
        pytest.param(
            'bearer Realm = "https://r/t?a=b&c=d" , SCOPE="x"',
            Challenge("bearer", {"realm": "https://r/t?a=b&c=d", "scope": "x"}),
            id="case-and-spacing",
        ),
        pytest.param(
            "Bearer realm=https://r/token,service=reg",
            Challenge("bearer", {"realm": "https://r/token", "service": "reg"}),
            id="unquoted-tokens",
        ),
        pytest.param(
            'Bearer realm="https://r/token",error="insufficient_scope",'
            'scope="repository:a:pull repository:b:pull"',
            Challenge(
                "bearer",
                {
                    "realm": "https://r/token",
                    "error": "insufficient_scope",
                    "scope": "repository:a:pull repository:b:pull",
                },
            ),
            id="error-and-multi-scope",
        ),
        pytest.param(
            'Basic realm="Registry Realm"',
            Challenge("basic", {"realm": "Registry Realm"}),
            id="basic",
        ),
        pytest.param('BASIC realm="x"', Challenge("basic", {"realm": "x"}), id="basic-upper"),
        pytest.param("Basic", Challenge("basic", {}), id="basic-bare"),
        pytest.param("  Bearer  ", Challenge("bearer", {}), id="bearer-bare"),
        pytest.param('Bearer realm=""', Challenge("bearer", {"realm": ""}), id="empty-quoted"),
    ],
)
def test_parse_challenge(header: str, expected: Challenge) -> None:
    assert parse_challenge(header) == expected


@pytest.mark.parametrize("header", [None, ""])
def test_parse_challenge_absent(header: str | None) -> None:
    assert parse_challenge(header) is None


def test_quoted_comma_does_not_split_the_value() -> None:
    challenge = parse_challenge('Bearer scope="repository:a/b:pull,push",realm="https://x/t"')
    assert challenge is not None
    assert challenge.params == {"scope": "repository:a/b:pull,push", "realm": "https://x/t"}


def test_basic_header() -> None:
    header = basic_header("user", "p:ss wörd")
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == "user:p:ss wörd"


# --- registrable domains -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("auth.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("a.b.c.example.com", "example.com"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("::1", "::1"),
        ("fe80::1:2", "fe80::1:2"),
    ],
)
def test_registrable_domain(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


def test_docker_hub_hosts_share_a_domain() -> None:
    assert registrable_domain("auth.docker.io") == registrable_domain("registry-1.docker.io")


@pytest.mark.parametrize(("a", "b"), [("10.0.0.1", "10.0.0.2"), ("1.2.3.4", "5.2.3.4")])
def test_ips_do_not_share_a_domain(a: str, b: str) -> None:
    assert registrable_domain(a) != registrable_domain(b)


def test_other_domains_differ() -> None:
    assert registrable_domain("auth.evil.io") != registrable_domain("registry-1.docker.io")


# --- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("30", 30.0), (" 120 ", 120.0), ("1.5", 1.5)],
)
def test_retry_after_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_negative_is_not_a_delay() -> None:
    # RFC 9110 delta-seconds are digits only; "-5" is not a valid value.
    assert parse_retry_after("-5") is None


def test_retry_after_http_date_in_future() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    parsed = parse_retry_after(format_datetime(when, usegmt=True))
    assert parsed is not None
    assert 100 <= parsed <= 121


def test_retry_after_http_date_in_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "30s", "0x10", "Wed, 99 Foo 2015", "1,5"]
)
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", ["inf", "Infinity", "1e400", "nan"])
def test_retry_after_non_numeric_floats_are_none(value: str) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_is_never_infinite_for_digits() -> None:
    assert math.isfinite(parse_retry_after("9" * 20) or 0.0)


# --- Hosts back-off ------------------------------------------------------------------------------


def _blocked_for(hosts: Hosts, host: str) -> float:
    return hosts._state(host).blocked_until - time.monotonic()


def test_back_off_caps_at_max_backoff() -> None:
    hosts = Hosts()
    hosts.back_off("h", 10_000.0)
    assert MAX_BACKOFF - 1 < _blocked_for(hosts, "h") <= MAX_BACKOFF


def test_back_off_infinite_is_capped() -> None:
    hosts = Hosts()
    hosts.back_off("h", math.inf)
    assert _blocked_for(hosts, "h") <= MAX_BACKOFF


def test_back_off_negative_is_no_wait() -> None:
    hosts = Hosts()
    hosts.back_off("h", -30.0)
    assert _blocked_for(hosts, "h") <= 0.0


def test_back_off_never_shortens_and_is_per_host() -> None:
    hosts = Hosts()
    hosts.back_off("h", 60.0)
    hosts.back_off("h", 1.0)
    assert _blocked_for(hosts, "h") > 50.0
    assert _blocked_for(hosts, "other") <= 0.0


async def test_wait_ready_returns_at_once_when_not_blocked() -> None:
    hosts = Hosts()
    start = time.monotonic()
    await hosts.wait_ready("h")
    assert time.monotonic() - start < 0.05


async def test_wait_ready_sleeps_for_the_back_off() -> None:
    hosts = Hosts()
    hosts.back_off("h", 0.05)
    start = time.monotonic()
    await hosts.wait_ready("h")
    assert time.monotonic() - start >= 0.04


# --- RateLimiter ---------------------------------------------------------------------------------


async def test_rate_limiter_spaces_sequential_acquires() -> None:
    limiter = RateLimiter(50)
    start = time.monotonic()
    for _ in range(5):
        await limiter.acquire()
    assert time.monotonic() - start >= 0.075


async def test_rate_limiter_spaces_concurrent_acquires() -> None:
    limiter = RateLimiter(50)
    start = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    assert time.monotonic() - start >= 0.075


async def test_rate_limiter_first_acquire_is_immediate() -> None:
    limiter = RateLimiter(1)
    start = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - start < 0.05


@pytest.mark.parametrize("per_second", [0, 0.0, -1])
async def test_rate_limiter_unlimited(per_second: float) -> None:
    limiter = RateLimiter(per_second)
    start = time.monotonic()
    for _ in range(100):
        await limiter.acquire()
    assert time.monotonic() - start < 0.05
