"""Remote secrets encrypted at rest: passwords, proxy passwords, TLS client keys and header
values (authenticated encryption: `cryptography`'s Fernet, AES-128-CBC + HMAC-SHA256).

The key file holds one Fernet key per line, the first being the one that encrypts; the others
still decrypt (that is how rotation works without a window where a secret is unreadable).
It is `MIRROR_SECRET_KEY_FILE`, or `<data-dir>/secret.key` generated 0600 on first start.
Sealed values carry a version prefix; a value without it is plaintext written before this
existed, read as is and sealed on rotation.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from server.domain.errors import FailedPrecondition
from server.private_files import read_or_create, write_private

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"


class SecretBox:
    """Seals and opens secret strings with the keys of one key file."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("no secret key")
        self.keys = keys
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """The keys in `path`, generating a first key (0600) when it does not exist."""
        text = read_or_create(path, Fernet.generate_key() + b"\n").decode()
        keys = [line.strip().encode() for line in text.splitlines() if line.strip()]
        try:
            return cls(keys)
        except ValueError as exc:
            raise SystemExit(f"secret key file {path} holds no valid Fernet key: {exc}") from None

    def seal(self, plain: str) -> str:
        """The stored form of a secret ("" stays "": nothing to hide)."""
        if not plain:
            return ""
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret of a stored value (plaintext from before sealing passes through)."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise FailedPrecondition(
                "a stored secret cannot be decrypted with the configured key "
                "(MIRROR_SECRET_KEY_FILE); restore the key file, or re-enter the secret",
                reason="SECRET_KEY_MISMATCH",
            ) from None

    def reseal(self, stored: str) -> str:
        """`stored` encrypted with the first key (rotation)."""
        return self.seal(self.open(stored))


def rotation_keys(path: Path) -> tuple[SecretBox, bytes]:
    """Step 1 of rotation: a new key first in the file, old ones kept (so every value stays
    readable whatever happens next) -> (box of all keys, the new key)."""
    old = SecretBox.from_file(path)
    new = Fernet.generate_key()
    write_private(path, b"\n".join([new, *old.keys]) + b"\n")
    return SecretBox([new, *old.keys]), new


def finish_rotation(path: Path, new: bytes) -> None:
    """Step 3, after every value was resealed: only the new key remains."""
    write_private(path, new + b"\n")
