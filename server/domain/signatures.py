"""Signature kinds the mirror carries, and reading the metadata of atomic signatures.

- cosign: signatures (and attestations, SBOMs) stored as OCI images tagged
  `sha256-<hex>.sig` / `.att` / `.sbom` beside the image they sign.
- OCI 1.1 referrers: manifests whose `subject` names the signed manifest, listed by the
  referrers API or, where a registry lacks it, by the fallback tag `sha256-<hex>`.
- atomic container signatures: OpenPGP-signed JSON documents, served by the docker
  extension API (`/extensions/v2/<name>/signatures/<digest>`) or a lookaside sigstore.

Signature bytes are kept exactly as fetched: they are what a verifier checks. Nothing here
verifies a signature; metadata (key id, creator, time) is read for display only.
"""

from __future__ import annotations

import bz2
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from server.domain import strictjson
from server.domain.digests import Digest

COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
MAX_INFLATED = 1024 * 1024  # an atomic signature's claims are a few hundred bytes
MAX_TEXT = 255  # name, key id and creator columns
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ARTIFACT_TYPES = (
    COSIGN_SIMPLESIGNING,
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.cncf.notary.signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
)


def cosign_tags(digest: Digest) -> tuple[str, ...]:
    """The tags cosign uses for artifacts about `digest`."""
    return tuple(f"{digest.algorithm}-{digest.hex}{suffix}" for suffix in COSIGN_SUFFIXES)


def referrers_fallback_tag(digest: Digest) -> str:
    """The OCI 1.1 referrers tag schema: an index of referrers tagged `<alg>-<hex>`."""
    return f"{digest.algorithm}-{digest.hex}"


_ARTIFACT_TAG = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.[a-z]+)?")


def subject_of_tag(tag: str) -> Digest | None:
    """The manifest a cosign or referrers-fallback tag is about, if `tag` is one."""
    match = _ARTIFACT_TAG.fullmatch(tag)
    if match is None or not Digest.is_valid(f"{match[1]}:{match[2]}"):
        return None
    return Digest(match[1], match[2])


@dataclass(frozen=True, slots=True)
class AtomicSignature:
    """One atomic container signature: raw bytes plus what could be read from them."""

    name: str
    data: bytes
    key_id: str = ""
    creator: str = ""
    timestamp: datetime | None = None

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.data)


def read_atomic_metadata(data: bytes) -> tuple[str, str, datetime | None]:
    """(key id, creator, timestamp) of an OpenPGP-signed atomic signature; blanks if unreadable.

    The document is an OpenPGP message (RFC 4880): usually a compressed-data packet holding a
    one-pass-signature packet (the key id), a literal-data packet (the JSON claims) and the
    signature packet.
    """
    key_id, literal = "", b""
    try:
        for tag, body in _packets(data):
            if tag == 8:  # compressed data: the packets are inside
                for inner_tag, inner in _packets(_decompress(body)):
                    key_id, literal = _note(inner_tag, inner, key_id, literal)
            else:
                key_id, literal = _note(tag, body, key_id, literal)
        claims = strictjson.loads(literal) if literal else {}
        optional = claims.get("optional") if isinstance(claims, dict) else None
        if not isinstance(optional, dict):
            return key_id, "", None
        creator = str(optional.get("creator", ""))[:MAX_TEXT]
        stamp = optional.get("timestamp")
        when = datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int | float) else None
        return key_id, creator, when
    except (ValueError, IndexError, zlib.error, OverflowError, OSError, EOFError):
        return key_id, "", None


def _note(tag: int, body: bytes, key_id: str, literal: bytes) -> tuple[str, bytes]:
    if tag == 4 and len(body) >= 13:  # one-pass signature: version, type, hash, pk, keyid(8)
        key_id = body[4:12].hex().upper()
    elif tag == 11 and len(body) >= 6:  # literal data: format, name length, name, date(4), data
        name_length = body[1]
        literal = body[2 + name_length + 4 :]
    return key_id, literal


def _decompress(body: bytes) -> bytes:
    """Inflate at most MAX_INFLATED bytes: a small signature must not expand into gigabytes."""
    algorithm, payload = body[0], body[1:]
    if algorithm == 0:
        return payload
    if algorithm in (1, 2):  # ZIP (raw deflate), ZLIB
        inflater = zlib.decompressobj(-15 if algorithm == 1 else 15)
        return inflater.decompress(payload, MAX_INFLATED)
    if algorithm == 3:  # BZip2
        return bz2.BZ2Decompressor().decompress(payload, MAX_INFLATED)
    raise ValueError(f"unsupported OpenPGP compression {algorithm}")


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """Split OpenPGP packets (old and new formats; partial lengths joined)."""
    packets, i = [], 0
    while i < len(data):
        header = data[i]
        if not header & 0x80:
            raise ValueError("not an OpenPGP packet")
        if header & 0x40:  # new format
            tag, i = header & 0x3F, i + 1
            body = b""
            while True:
                first = data[i]
                if first < 192:
                    length, i = first, i + 1
                elif first < 224:
                    length, i = ((first - 192) << 8) + data[i + 1] + 192, i + 2
                elif first == 255:
                    length, i = int.from_bytes(data[i + 1 : i + 5], "big"), i + 5
                else:  # partial body length
                    length, i = 1 << (first & 0x1F), i + 1
                    body += data[i : i + length]
                    i += length
                    continue
                body += data[i : i + length]
                i += length
                break
        else:  # old format
            tag, length_type, i = (header >> 2) & 0x0F, header & 0x03, i + 1
            if length_type == 3:  # indeterminate: the rest
                length = len(data) - i
            else:
                size = 1 << length_type
                length, i = int.from_bytes(data[i : i + size], "big"), i + size
            body = data[i : i + length]
            i += length
        packets.append((tag, body))
    return packets
