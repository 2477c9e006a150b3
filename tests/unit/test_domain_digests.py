"""Digests (server/domain/digests.py): parse, is_valid, of_bytes."""

from __future__ import annotations

import hashlib

import pytest

from server.domain.digests import Digest
from server.domain.errors import InvalidArgument

HEX64 = "0123456789abcdef" * 4
HEX128 = HEX64 * 2


@pytest.mark.parametrize(
    ("text", "algorithm", "hex_"),
    [
        (f"sha256:{HEX64}", "sha256", HEX64),
        (f"sha256:{'0' * 64}", "sha256", "0" * 64),
        (f"sha512:{HEX128}", "sha512", HEX128),
    ],
)
def test_parse_valid(text: str, algorithm: str, hex_: str) -> None:
    digest = Digest.parse(text)
    assert digest == Digest(algorithm, hex_)
    assert str(digest) == text
    assert Digest.is_valid(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        HEX64,  # no algorithm
        f":{HEX64}",
        f"sha256:{HEX64[:-1]}",  # 63
        f"sha256:{HEX64}0",  # 65
        f"sha256:{HEX128}",  # sha512 length under sha256
        f"sha512:{HEX64}",  # sha256 length under sha512
        f"sha512:{HEX128[:-1]}",
        f"sha256:{HEX64.upper()}",
        f"sha256:{HEX64[:-1]}A",
        f"sha256:{HEX64[:-1]}g",
        f"SHA256:{HEX64}",
        f"sha384:{'a' * 96}",
        f"md5:{'a' * 32}",
        f"sha1:{'a' * 40}",
        f"blake3:{HEX64}",
        f"sha256+b64u:{HEX64}",
        f" sha256:{HEX64}",
        f"sha256:{HEX64} ",
        f"sha256:{HEX64}\n",
        f"sha256::{HEX64[:-1]}",
    ],
)
def test_parse_invalid(text: str) -> None:
    assert not Digest.is_valid(text)
    with pytest.raises(InvalidArgument) as info:
        Digest.parse(text, "blob.digest")
    assert info.value.violations[0].field == "blob.digest"


def test_parse_default_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        Digest.parse("nope")
    assert info.value.violations[0].field == "digest"
    assert info.value.metadata == {"digest": "nope"}


@pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256)) * 10])
def test_of_bytes_sha256(data: bytes) -> None:
    digest = Digest.of_bytes(data)
    assert digest == Digest("sha256", hashlib.sha256(data).hexdigest())
    assert Digest.parse(str(digest)) == digest


def test_of_bytes_known_value() -> None:
    assert str(Digest.of_bytes(b"")) == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_of_bytes_sha512() -> None:
    digest = Digest.of_bytes(b"abc", "sha512")
    assert digest.algorithm == "sha512"
    assert digest.hex == hashlib.sha512(b"abc").hexdigest()
    assert Digest.is_valid(str(digest))


def test_hasher_is_fresh_and_matches_algorithm() -> None:
    digest = Digest.of_bytes(b"payload", "sha512")
    hasher = digest.hasher()
    hasher.update(b"payload")
    assert hasher.hexdigest() == digest.hex
    assert digest.hasher().hexdigest() == hashlib.sha512().hexdigest()


def test_digests_are_hashable_and_ordered() -> None:
    a, b = Digest("sha256", "0" * 64), Digest("sha256", "f" * 64)
    assert sorted([b, a]) == [a, b]
    assert len({a, Digest.parse(str(a))}) == 1
