"""The one policy: may this principal do this action on this repository?

Every path asks it: the gRPC interceptor (per RPC, see `rules.py`), the registry middleware
(pull, and push for the push endpoints), the token endpoint (which scopes to grant) and
`_catalog` (which names to list). `repository` is a repository id, or None for the service as
a whole (lists, remotes, creating a repository): only a global role counts there.
"""

from __future__ import annotations

from server.access.model import Action, Principal, Role

# The least role each action needs.
_NEEDS = {
    Action.READ: Role.VIEWER,
    Action.PULL: Role.VIEWER,
    Action.WRITE: Role.EDITOR,
    Action.PUSH: Role.EDITOR,
    Action.ADMIN: Role.ADMIN,
}


def may(
    principal: Principal, action: Action, repository: str | None, *, public: bool = False
) -> bool:
    """Whether `principal` may do `action` on `repository` (None: service-wide).

    `public` marks a pull from a public distribution: anyone may.
    """
    if action is Action.PULL and public:
        return True
    needed = _NEEDS[action]
    if principal.role.rank >= needed.rank:
        return True
    if repository is None or action is Action.ADMIN:
        return False
    granted = principal.grants.get(repository, Role.NONE)
    return granted.rank >= needed.rank
