"""Tag filters (include/exclude lists of shell-style wildcards, and digest entries) and
platform filters (which children of an index a remote keeps)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from server.domain.digests import Digest
from server.domain.manifests import Descriptor

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


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """`os/architecture[/variant]` specs a remote keeps from indexes; empty keeps everything.

    A spec without a variant matches every variant of its architecture (`linux/arm64` takes
    `linux/arm64/v8`). A child without any platform (a nested index, say) is kept: it is not
    specific to one platform. Buildx attestation children say `unknown/unknown`, so a filter
    drops them unless it names that platform.
    """

    specs: tuple[str, ...] = ()

    def wants(self, child: Descriptor) -> bool:
        if not self.specs:
            return True
        if not (child.platform_os or child.platform_architecture):
            return True
        for spec in self.specs:
            os_, arch, *variant = spec.split("/")
            if (os_, arch) != (child.platform_os, child.platform_architecture):
                continue
            if not variant or variant[0] == child.platform_variant:
                return True
        return False
