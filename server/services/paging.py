"""Keyset pagination shared by the List methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.domain.errors import InvalidArgument, Rule
from server.domain.paging import PageRequest, decode_page, encode_token


def is_name(cursor: Any) -> bool:
    return isinstance(cursor, str)


def is_number(cursor: Any) -> bool:
    return isinstance(cursor, int) and not isinstance(cursor, bool)


def is_content_key(cursor: Any) -> bool:
    """(content type, row id), as ListContent pages."""
    return (
        isinstance(cursor, list)
        and len(cursor) == 2
        and isinstance(cursor[0], str)
        and is_number(cursor[1])
    )


def is_change_key(cursor: Any) -> bool:
    """(change kind, content type, row id), as DiffVersions pages."""
    return (
        isinstance(cursor, list)
        and len(cursor) == 3
        and is_number(cursor[0])
        and (is_content_key(cursor[1:]))
    )


def page_of(size: int, token: str, *, cursor: Callable[[Any], bool], **filters: Any) -> PageRequest:
    """Decode `page_size`/`page_token` of a List request with the filters the token binds to.

    The token's checksum only catches damage; a hand-made token must still carry a cursor of
    the method's shape, or it is INVALID_ARGUMENT rather than a database error.
    """
    page = decode_page(size, token, filters)
    if page.cursor is not None and not cursor(page.cursor):
        raise InvalidArgument(
            "page_token is malformed", field="page_token", reason=Rule.INVALID_PAGE_TOKEN
        )
    return page


def next_token(more: bool, cursor: Any, **filters: Any) -> str:
    """The token for the next page, or "" when the list has ended."""
    return encode_token(cursor, filters) if more else ""
