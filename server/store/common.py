"""Helpers shared by the store modules: unique-key violations and paging."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from server.domain.errors import FailedPrecondition, MirrorError

T = TypeVar("T")


@contextlib.contextmanager
def integrity_as(error: MirrorError) -> Iterator[None]:
    """Translate a unique-constraint violation into `error` (e.g. AlreadyExists); any other
    integrity violation (a row referenced or removed concurrently) is FAILED_PRECONDITION."""
    try:
        yield
    except IntegrityError as exc:
        if "unique" in str(exc.orig).lower():
            raise error from exc
        raise FailedPrecondition(
            "a resource this request depends on changed concurrently; retry",
            reason="CONCURRENT_CHANGE",
        ) from exc


def split_page(rows: list[T], size: int) -> tuple[list[T], bool]:
    """Rows fetched with `limit(size + 1)` -> (the page, whether more exist)."""
    return rows[:size], len(rows) > size
