"""Tag filters: include/exclude lists of shell-style wildcards, and digest entries.

Each list is compiled once into one regular expression (`fnmatch.translate` per pattern,
joined as alternatives) and cached: filtering 100k tags against hundreds of patterns is one
regex match per tag, not one `fnmatchcase` per (tag, pattern) pair. The number and length of
patterns are capped at validation (`rules.MAX_TAG_PATTERNS`, `rules.MAX_TAG_PATTERN_LENGTH`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fnmatch import translate

from server.domain.digests import Digest

WILDCARD_CHARS = frozenset("*?[")


@functools.lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching any of `patterns` (None for an empty list)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class TagFilter:
    """Which upstream tags (and digests) a remote asks for. Exclusion wins."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def include_tags(self) -> tuple[str, ...]:
        return tuple(p for p in self.include if not Digest.is_valid(p))

    @property
    def include_digests(self) -> tuple[Digest, ...]:
        return tuple(Digest.parse(p) for p in self.include if Digest.is_valid(p))

    @property
    def is_literal(self) -> bool:
        """Every include is a plain tag or a digest: no need to list upstream tags."""
        return bool(self.include) and not any(WILDCARD_CHARS & set(p) for p in self.include_tags)

    def excludes(self, tag: str) -> bool:
        pattern = _compiled(tuple(self.exclude))
        return pattern is not None and pattern.match(tag) is not None

    def wants(self, tag: str) -> bool:
        return self.select([tag]) == [tag]

    def unmatched_patterns(self, tags: list[str]) -> list[str]:
        """The wildcard include entries that match none of `tags` (literals are probed).

        Only tags the combined include expression matches can match one entry, so each entry
        is tried on those alone (one pass over the whole list, not one per entry)."""
        include = _compiled(self.include_tags)
        if include is None:
            return []
        matched = [t for t in tags if include.match(t) is not None]
        unmatched = []
        for p in self.include_tags:
            pattern = _compiled((p,))
            if WILDCARD_CHARS & set(p) and pattern is not None:
                if not any(pattern.match(t) for t in matched):
                    unmatched.append(p)
        return unmatched

    def select(self, tags: list[str]) -> list[str]:
        """The wanted tags, in order. CPU-bound on big lists: callers on the event loop run
        it in a thread (`asyncio.to_thread`)."""
        exclude = _compiled(tuple(self.exclude))
        include = _compiled(self.include_tags)
        if self.include and include is None:
            return []  # digests only: no tag is wanted
        return [
            t
            for t in tags
            if (exclude is None or exclude.match(t) is None)
            and (include is None or include.match(t) is not None)
        ]
