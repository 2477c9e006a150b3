"""Tag filters (server/domain/filters.py): wildcards, exclusion, digest entries, literal lists."""

from __future__ import annotations

import pytest

from server.domain.digests import Digest
from server.domain.filters import TagFilter

D1 = f"sha256:{'a' * 64}"
D2 = f"sha512:{'b' * 128}"
TAGS = ["latest", "1.0", "1.1", "1.10", "2.0-rc1", "2.0", "stable", "v1", "edge-alpine"]


@pytest.mark.parametrize(
    ("include", "exclude", "selected"),
    [
        pytest.param((), (), TAGS, id="empty-include-means-all"),
        pytest.param((), ("*-rc*",), [t for t in TAGS if t != "2.0-rc1"], id="exclude-only"),
        pytest.param(("latest",), (), ["latest"], id="literal"),
        pytest.param(("1.*",), (), ["1.0", "1.1", "1.10"], id="star"),
        pytest.param(("1.?",), (), ["1.0", "1.1"], id="question-mark"),
        pytest.param(("[12].0",), (), ["1.0", "2.0"], id="class"),
        pytest.param(("[!1l]*",), (), ["2.0-rc1", "2.0", "stable", "v1", "edge-alpine"], id="neg"),
        pytest.param(("*",), ("*",), [], id="exclude-everything"),
        pytest.param(("1.*",), ("1.1*",), ["1.0"], id="exclude-wins"),
        pytest.param(("latest",), ("latest",), [], id="exclude-wins-literal"),
        pytest.param(("nope",), (), [], id="no-match"),
        pytest.param(("LATEST",), (), [], id="case-sensitive"),
        pytest.param(("latest", "stable"), (), ["latest", "stable"], id="several"),
        pytest.param(("*alpine",), (), ["edge-alpine"], id="suffix"),
    ],
)
def test_select(include: tuple, exclude: tuple, selected: list[str]) -> None:
    tag_filter = TagFilter(include, exclude)
    assert tag_filter.select(TAGS) == selected
    assert [t for t in TAGS if tag_filter.wants(t)] == selected


def test_select_keeps_order_and_duplicates() -> None:
    assert TagFilter(("b", "a")).select(["a", "b", "a"]) == ["a", "b", "a"]


def test_digest_entries_are_separated() -> None:
    tag_filter = TagFilter(("latest", D1, "v*", D2))
    assert tag_filter.include_tags == ("latest", "v*")
    assert tag_filter.include_digests == (Digest.parse(D1), Digest.parse(D2))


def test_digest_entries_do_not_select_tags() -> None:
    tag_filter = TagFilter((D1,))
    assert tag_filter.include_tags == ()
    assert tag_filter.select(TAGS) == []


def test_digest_entries_next_to_tags() -> None:
    assert TagFilter((D1, "stable")).select(TAGS) == ["stable"]


def test_no_digests_by_default() -> None:
    assert TagFilter().include_digests == ()
    assert TagFilter(("latest",)).include_digests == ()


@pytest.mark.parametrize(
    ("include", "literal"),
    [
        ((), False),
        (("latest",), True),
        (("latest", "1.0"), True),
        ((D1,), True),
        (("latest", D1), True),
        (("1.*",), False),
        (("latest", "1.?"), False),
        (("[12]",), False),
        (("latest", D1, "v*"), False),
    ],
)
def test_is_literal(include: tuple, literal: bool) -> None:
    assert TagFilter(include).is_literal is literal


def test_exclude_wildcards_do_not_affect_is_literal() -> None:
    assert TagFilter(("latest",), ("*",)).is_literal
