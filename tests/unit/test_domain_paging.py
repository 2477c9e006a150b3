"""Page sizes and opaque page tokens (server/domain/paging.py)."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import pytest

from server.domain.errors import InvalidArgument
from server.domain.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PageRequest,
    decode_page,
    encode_token,
    page_size,
)

FILTERS: dict[str, Any] = {"parent": "repositories/r", "filter": "kind=tag", "order_by": ""}


@pytest.mark.parametrize(
    ("requested", "size"),
    [
        (0, DEFAULT_PAGE_SIZE),
        (1, 1),
        (50, 50),
        (999, 999),
        (1000, 1000),
        (1001, 1000),
        (10**12, 1000),
    ],
)
def test_page_size(requested: int, size: int) -> None:
    assert page_size(requested) == size


def test_page_size_constants() -> None:
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 1000)


@pytest.mark.parametrize("requested", [-1, -50, -(2**31)])
def test_negative_page_size_rejected(requested: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        page_size(requested)
    assert info.value.violations[0].field == "page_size"


def test_decode_negative_size_rejected_even_with_token() -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_page(-1, encode_token(1, FILTERS), FILTERS)
    assert info.value.violations[0].field == "page_size"


def test_no_token_means_first_page() -> None:
    assert decode_page(0, "", FILTERS) == PageRequest(DEFAULT_PAGE_SIZE, None)


@pytest.mark.parametrize(
    "cursor",
    [0, 42, "tag-name", ["2024-01-01T00:00:00Z", 17], {"n": 3, "id": "x"}, None, "ünïcode"],
)
def test_token_round_trip(cursor: Any) -> None:
    token = encode_token(cursor, FILTERS)
    assert decode_page(10, token, FILTERS) == PageRequest(10, cursor)


def test_token_is_url_safe_and_unpadded() -> None:
    token = encode_token(["a/b+c", 1], FILTERS)
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")


def test_token_filters_key_order_does_not_matter() -> None:
    token = encode_token(5, {"a": 1, "b": 2})
    assert decode_page(0, token, {"b": 2, "a": 1}).cursor == 5


def test_page_size_may_change_between_pages() -> None:
    token = encode_token(5, FILTERS)
    assert decode_page(1001, token, FILTERS) == PageRequest(MAX_PAGE_SIZE, 5)


@pytest.mark.parametrize(
    "other",
    [
        {**FILTERS, "filter": "kind=blob"},
        {**FILTERS, "parent": "repositories/other"},
        {k: v for k, v in FILTERS.items() if k != "order_by"},
        {**FILTERS, "extra": True},
        {},
    ],
)
def test_token_with_other_filters_rejected(other: dict[str, Any]) -> None:
    token = encode_token(5, FILTERS)
    with pytest.raises(InvalidArgument) as info:
        decode_page(0, token, other)
    assert info.value.violations[0].field == "page_token"
    assert "other parameters" in info.value.message


def _flip(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def test_tampered_token_rejected_at_every_position() -> None:
    token = encode_token(["cursor", 12345], FILTERS)
    # The last character may only carry padding bits, so flipping it need not change the bytes.
    for index in range(len(token) - 1):
        with pytest.raises(InvalidArgument) as info:
            decode_page(0, _flip(token, index), FILTERS)
        assert info.value.violations[0].field == "page_token", index


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "!!!!",
        "not a token",
        base64.urlsafe_b64encode(b"no-dot").decode(),
        base64.urlsafe_b64encode(b'{"v":1}.abc').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe.\xff").decode(),
    ],
)
def test_garbage_token_rejected(token: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_page(0, token, FILTERS)
    assert info.value.violations[0].field == "page_token"


def test_truncated_token_rejected() -> None:
    token = encode_token(7, FILTERS)
    with pytest.raises(InvalidArgument) as info:
        decode_page(0, token[:-4], FILTERS)
    assert info.value.violations[0].field == "page_token"


def _forge(payload: dict[str, Any]) -> str:
    """A token with a correct checksum around any payload (the checksum is not keyed)."""
    from server.domain.paging import _check

    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw + b"." + _check(raw).encode()).decode().rstrip("=")


def test_other_token_version_rejected() -> None:
    token = _forge({"v": 2, "c": 1, "f": "0" * 16})
    with pytest.raises(InvalidArgument) as info:
        decode_page(0, token, FILTERS)
    assert info.value.violations[0].field == "page_token"


@pytest.mark.parametrize("missing", ["f", "c"])
def test_token_missing_keys_rejected(missing: str) -> None:
    from server.domain.paging import _fingerprint

    payload = {"v": 1, "c": 1, "f": _fingerprint(FILTERS)}
    del payload[missing]
    with pytest.raises(InvalidArgument) as info:
        decode_page(0, _forge(payload), FILTERS)
    assert info.value.violations[0].field == "page_token"
