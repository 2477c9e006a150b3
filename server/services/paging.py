"""Keyset pagination shared by the List methods."""

from __future__ import annotations

from typing import Any

from server.domain.paging import PageRequest, decode_page, encode_token


def page_of(size: int, token: str, **filters: Any) -> PageRequest:
    """Decode `page_size`/`page_token` of a List request with the filters the token binds to."""
    return decode_page(size, token, filters)


def next_token(more: bool, cursor: Any, **filters: Any) -> str:
    """The token for the next page, or "" when the list has ended."""
    return encode_token(cursor, filters) if more else ""
