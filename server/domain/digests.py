"""Content digests (`algorithm:hex`), as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from server.domain.errors import InvalidArgument, Rule

# OCI image-spec descriptor.md: registered algorithms and their encodings.
_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A validated digest such as `sha256:<64 hex>`."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, value: str, field: str = "digest") -> Digest:
        algorithm, sep, encoded = value.partition(":")
        pattern = _ENCODED.get(algorithm)
        if not sep or pattern is None or not pattern.fullmatch(encoded):
            raise InvalidArgument(
                f"invalid digest {value!r}", field=field, reason=Rule.INVALID_DIGEST, digest=value
            )
        return cls(algorithm, encoded)

    @classmethod
    def is_valid(cls, value: str) -> bool:
        algorithm, sep, encoded = value.partition(":")
        pattern = _ENCODED.get(algorithm)
        return bool(sep and pattern and pattern.fullmatch(encoded))

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
