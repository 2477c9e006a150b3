"""First start: principal `admin` and its token in `<data-dir>/admin-token` (0600).

Only on an empty principals table, so a deleted or re-keyed admin is never re-created behind
the operators' back. `mirrorctl` reads the file from `./.mirror-data/admin-token` by default,
which keeps the README's sessions free of token handling.
"""

from __future__ import annotations

import logging
from pathlib import Path

from server.access.model import Role
from server.access.store import AccessStore
from server.domain.errors import AlreadyExists
from server.private_files import write_private

log = logging.getLogger(__name__)

ADMIN = "admin"


async def bootstrap_admin(store: AccessStore, token_file: Path) -> bool:
    """Create `admin` and write its token when no principal exists; whether it did."""
    if await store.count_principals():
        return False
    try:
        await store.create_principal(ADMIN, Role.ADMIN, "created at first start")
    except AlreadyExists:  # another process sharing the database was first
        return False
    _token, secret = await store.create_token(ADMIN, "bootstrap token (admin-token file)", None)
    write_private(token_file, (secret + "\n").encode())
    log.warning(
        "created principal %r; its API token is in %s (mode 0600). mirrorctl picks it up "
        "from ./.mirror-data/admin-token, or set MIRROR_TOKEN_FILE",
        ADMIN,
        token_file,
    )
    return True
