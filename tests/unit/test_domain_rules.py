"""Remote validation rules (server/domain/rules.py): every rule and the field it names."""

from __future__ import annotations

import dataclasses
import math

import pytest

from server.domain.errors import InvalidArgument
from server.domain.resources import Remote
from server.domain.rules import (
    check_tag_pattern,
    is_oci_name,
    is_tag,
    remote_violations,
    validate_remote,
)

HEX64 = "ab" * 32
VALID = Remote(
    remote_id="hub",
    url="https://registry-1.docker.io",
    upstream_name="library/hello-world",
)


def fields_of(**changes: object) -> list[str]:
    """The violated fields of VALID with `changes` applied."""
    return [v.field for v in remote_violations(dataclasses.replace(VALID, **changes))]


def test_valid_remote_has_no_violations() -> None:
    assert remote_violations(VALID) == []
    assert validate_remote(VALID) is VALID


def test_fully_loaded_valid_remote() -> None:
    remote = dataclasses.replace(
        VALID,
        url="http://localhost:5000/",
        proxy_url="http://proxy.internal:3128",
        sigstore="https://sigstore.example.com/sigs",
        include_tags=("latest", "v1.*", "1.2.?", "[0-9]*", "[!a]x", f"sha256:{HEX64}"),
        exclude_tags=("*-rc*",),
        download_concurrency=100,
        max_retries=10,
        connect_timeout=1.5,
        sock_read_timeout=0.0,
        total_timeout=600.0,
        rate_limit=2.5,
        headers=(("X-Custom", "1"), ("User-Agent", "me")),
        ssl_client_certificate="-----BEGIN CERTIFICATE-----",
        ssl_client_key="-----BEGIN PRIVATE KEY-----",
        token_realm_allowlist=("auth.example.com", "10.0.0.1:8443"),
    )
    assert remote_violations(remote) == []


# --- URLs ---------------------------------------------------------------------------------------

BAD_URLS = [
    pytest.param("ftp://registry.example.com", id="ftp"),
    pytest.param("file:///etc/passwd", id="file"),
    pytest.param("registry.example.com", id="no-scheme"),
    pytest.param("//registry.example.com", id="scheme-relative"),
    pytest.param("https://", id="no-host"),
    pytest.param("https:///path", id="empty-host"),
    pytest.param("https://h:0", id="port-0"),
    pytest.param("https://h:65536", id="port-65536"),
    pytest.param("https://h:99999", id="port-99999"),
    pytest.param("https://h:abc", id="port-not-number"),
    pytest.param("https://h?x=1", id="query"),
    pytest.param("https://h#frag", id="fragment"),
    pytest.param("http://[::1", id="unclosed-ipv6"),
]
GOOD_URLS = [
    "https://registry-1.docker.io",
    "http://localhost:5000",
    "https://h:1",
    "https://h:65535",
    "https://[::1]:5000",
    "https://127.0.0.1/",
    "https://quay.io/prefix/",
]


def test_url_is_required() -> None:
    assert fields_of(url="") == ["remote.url"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_url_rejected(url: str) -> None:
    assert fields_of(url=url) == ["remote.url"]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_good_url_accepted(url: str) -> None:
    assert fields_of(url=url) == []


def test_ftp_violation_mentions_scheme() -> None:
    (violation,) = remote_violations(dataclasses.replace(VALID, url="ftp://h"))
    assert "scheme" in violation.description


@pytest.mark.parametrize("field", ["proxy_url", "sigstore"])
def test_optional_urls_may_be_empty(field: str) -> None:
    assert fields_of(**{field: ""}) == []


@pytest.mark.parametrize("field", ["proxy_url", "sigstore"])
@pytest.mark.parametrize("url", BAD_URLS)
def test_optional_urls_follow_url_rules(field: str, url: str) -> None:
    assert fields_of(**{field: url}) == [f"remote.{field}"]


# --- upstream_name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "library/hello-world",
        "a.b/c_d/e__f",
        "a",
        "hello-world",
        "a--b",
        "a---b",
        "a/b/c/d",
        "0/1",
        "a" * 255,
    ],
)
def test_upstream_name_accepted(name: str) -> None:
    assert is_oci_name(name)
    assert fields_of(upstream_name=name) == []


@pytest.mark.parametrize(
    "name",
    [
        "Library/x",
        "library/X",
        "a//b",
        "-a",
        "a-",
        "_a",
        "a_",
        ".a",
        "a.",
        "a..b",
        "a___b",
        "a._b",
        "/a",
        "a/",
        "a b",
        "a:latest",
        "a@sha256",
        "docker.io/library/x:1",
        "a" * 256,
    ],
)
def test_upstream_name_rejected(name: str) -> None:
    assert not is_oci_name(name)
    assert fields_of(upstream_name=name) == ["remote.upstream_name"]


def test_upstream_name_required() -> None:
    (violation,) = remote_violations(dataclasses.replace(VALID, upstream_name=""))
    assert violation.field == "remote.upstream_name"
    assert "required" in violation.description


# --- tag patterns -------------------------------------------------------------------------------

GOOD_PATTERNS = [
    "latest",
    "v1.2.3",
    "*",
    "v1.*",
    "1.?",
    "[0-9]*",
    "[!a]*",
    "_x",
    "a-b_c.d",
    "a" * 128,
    f"sha256:{HEX64}",
    f"sha512:{HEX64 * 2}",
]
BAD_PATTERNS = [
    "[",
    "a[b",
    "a]",
    "]a[",
    "[[a]]",
    "a b",
    " latest",
    "",
    "a" * 129,
    "a/b",
    "a:b",
    "sha256:zz",
    f"sha256:{HEX64.upper()}",
    f"sha256:{HEX64[:-1]}",
    f"sha512:{HEX64}",
    "tag\n",
]


@pytest.mark.parametrize("pattern", GOOD_PATTERNS)
def test_tag_pattern_accepted(pattern: str) -> None:
    assert check_tag_pattern(pattern) is None


@pytest.mark.parametrize("pattern", BAD_PATTERNS)
def test_tag_pattern_rejected(pattern: str) -> None:
    assert check_tag_pattern(pattern) is not None


@pytest.mark.parametrize("kind", ["include_tags", "exclude_tags"])
@pytest.mark.parametrize("pattern", BAD_PATTERNS)
def test_bad_pattern_names_its_index(kind: str, pattern: str) -> None:
    assert fields_of(**{kind: ("latest", pattern)}) == [f"remote.{kind}[1]"]


def test_every_bad_pattern_reported_with_its_index() -> None:
    assert fields_of(include_tags=("[", "ok", "a b"), exclude_tags=("sha256:zz",)) == [
        "remote.include_tags[0]",
        "remote.include_tags[2]",
        "remote.exclude_tags[0]",
    ]


@pytest.mark.parametrize(
    ("tag", "ok"),
    [("latest", True), ("_x", True), ("a" * 128, True), ("a" * 129, False), ("-a", False)],
)
def test_is_tag(tag: str, ok: bool) -> None:
    assert is_tag(tag) is ok


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"), [(0, False), (-1, False), (1, True), (100, True), (101, False)]
)
def test_download_concurrency_bounds(value: int, ok: bool) -> None:
    assert fields_of(download_concurrency=value) == ([] if ok else ["remote.download_concurrency"])


@pytest.mark.parametrize(("value", "ok"), [(-1, False), (0, True), (10, True), (11, False)])
def test_max_retries_bounds(value: int, ok: bool) -> None:
    assert fields_of(max_retries=value) == ([] if ok else ["remote.max_retries"])


@pytest.mark.parametrize(
    "field", ["connect_timeout", "sock_read_timeout", "total_timeout", "rate_limit"]
)
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0.0, True),
        (0.001, True),
        (3600.0, True),
        (-0.5, False),
        (-1.0, False),
        (math.nan, False),
        (math.inf, False),
        (-math.inf, False),
    ],
)
def test_timeouts_and_rate_limit(field: str, value: float, ok: bool) -> None:
    assert fields_of(**{field: value}) == ([] if ok else [f"remote.{field}"])


# --- headers, TLS, realms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "AUTHORIZATION",
        "Host",
        "host",
        "Content-Length",
        "Transfer-Encoding",
        "Accept-Encoding",
    ],
)
def test_reserved_headers_rejected(name: str) -> None:
    (violation,) = remote_violations(dataclasses.replace(VALID, headers=((name, "x"),)))
    assert violation.field == "remote.headers"
    assert "managed by the server" in violation.description


@pytest.mark.parametrize("name", ["", "Bad Header", "X:Y", "X-é", "X\r\nY"])
def test_invalid_header_names_rejected(name: str) -> None:
    assert fields_of(headers=((name, "x"),)) == ["remote.headers"]


@pytest.mark.parametrize("name", ["X-Custom", "User-Agent", "x_token", "X.Y", "Accept"])
def test_ordinary_headers_accepted(name: str) -> None:
    assert fields_of(headers=((name, "value"),)) == []


def test_each_bad_header_reported() -> None:
    assert fields_of(headers=(("Host", "a"), ("X-Ok", "b"), ("Authorization", "c"))) == [
        "remote.headers",
        "remote.headers",
    ]


@pytest.mark.parametrize(
    "value",
    ["a\r\nInjected: x", "a\nb", "a\rb", "nul\x00", "del\x7f", "\x1b[31m"],
)
def test_header_value_with_control_characters_rejected(value: str) -> None:
    # Regression: aiohttp refuses these at request time, so every sync of the remote failed.
    assert fields_of(headers=(("X-Custom", value),)) == ["remote.headers"]


@pytest.mark.parametrize("value", ["", "plain", "a\tb", "ünïcode", "x=1; y=2"])
def test_ordinary_header_values_accepted(value: str) -> None:
    assert fields_of(headers=(("X-Custom", value),)) == []


@pytest.mark.parametrize(
    ("cert", "key", "ok"),
    [("", "", True), ("CERT", "KEY", True), ("CERT", "", False), ("", "KEY", False)],
)
def test_client_certificate_and_key_go_together(cert: str, key: str, ok: bool) -> None:
    assert fields_of(ssl_client_certificate=cert, ssl_client_key=key) == (
        [] if ok else ["remote.ssl_client_key"]
    )


def test_token_realm_allowlist() -> None:
    assert fields_of(token_realm_allowlist=("auth.example.com", "", "a/b", "a b")) == [
        "remote.token_realm_allowlist[1]",
        "remote.token_realm_allowlist[2]",
        "remote.token_realm_allowlist[3]",
    ]


# --- validate_remote ----------------------------------------------------------------------------


def test_validate_remote_collects_every_violation() -> None:
    bad = dataclasses.replace(
        VALID,
        url="ftp://h",
        upstream_name="Library/x",
        include_tags=("[",),
        download_concurrency=0,
        max_retries=11,
        connect_timeout=-1.0,
        headers=(("Host", "x"),),
        ssl_client_certificate="CERT",
    )
    with pytest.raises(InvalidArgument) as info:
        validate_remote(bad)
    assert [v.field for v in info.value.violations] == [
        "remote.url",
        "remote.upstream_name",
        "remote.include_tags[0]",
        "remote.download_concurrency",
        "remote.max_retries",
        "remote.connect_timeout",
        "remote.headers",
        "remote.ssl_client_key",
    ]
    assert "remote.url:" in info.value.message
