"""Tag filters: include/exclude lists of shell-style wildcards, and digest entries."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from server.domain.digests import Digest

WILDCARD_CHARS = frozenset("*?[")


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
        return any(fnmatchcase(tag, p) for p in self.exclude)

    def wants(self, tag: str) -> bool:
        if self.excludes(tag):
            return False
        patterns = self.include_tags
        if not self.include:
            return True
        return any(fnmatchcase(tag, p) for p in patterns)

    def unmatched_patterns(self, tags: list[str]) -> list[str]:
        """The wildcard include entries that match none of `tags` (literals are probed)."""
        return [
            p
            for p in self.include_tags
            if WILDCARD_CHARS & set(p) and not any(fnmatchcase(t, p) for t in tags)
        ]

    def select(self, tags: list[str]) -> list[str]:
        return [t for t in tags if self.wants(t)]
