"""Which action each RPC needs, and on which repository (None: the service as a whole).

The interceptor looks the called method up here; a method missing from the table is refused
(PERMISSION_DENIED for everyone but admins), so a new RPC cannot slip through unguarded.
Health and reflection need no credentials at all (`OPEN_PREFIXES`).

Lists of global collections (repositories, remotes, distributions, all tasks) need a global
role: a principal with grants only names its repositories directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.access.model import Action
from server.access.store import AccessStore

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Scope = Callable[[Any, AccessStore], Awaitable[str | None]]


def repository_of(name: str) -> str | None:
    """`repositories/{r}` or `repositories/{r}/...` -> r; anything else -> None."""
    parts = name.split("/")
    if len(parts) >= 2 and parts[0] == "repositories" and parts[1]:
        return parts[1]
    return None


def _field(*path: str) -> Scope:
    async def scope(request: Any, store: AccessStore) -> str | None:
        value = request
        for part in path:
            value = getattr(value, part)
        return repository_of(value)

    return scope


async def _global(request: Any, store: AccessStore) -> str | None:
    return None


async def _distribution(request: Any, store: AccessStore) -> str | None:
    fields = request.DESCRIPTOR.fields_by_name
    name = request.distribution.name if "distribution" in fields else request.name
    target = await store.distribution_target(name.removeprefix("distributions/"))
    return None if target is None else target[0]


async def _distribution_update(request: Any, store: AccessStore) -> str | None:
    """Both the repository served now and the one it would serve must be writable: the
    interceptor checks the first; this returns the second only when it is the same."""
    current = await _distribution(request, store)
    wanted = repository_of(request.distribution.repository or request.distribution.version)
    paths = set(request.update_mask.paths)
    if paths & {"repository", "version"} and wanted != current:
        return None  # moving a distribution between repositories needs a global editor
    return current


async def _distribution_create(request: Any, store: AccessStore) -> str | None:
    return repository_of(request.distribution.repository or request.distribution.version)


async def _task(request: Any, store: AccessStore) -> str | None:
    return await store.task_repository(request.name.removeprefix("tasks/"))


@dataclass(frozen=True, slots=True)
class Rule:
    """`action` on the repository `scope` names; a call that also reads another repository
    (a copy's source) names it with `reads`, which needs READ there."""

    action: Action
    scope: Scope = _global
    reads: Scope | None = None
    escalate: Callable[[Any], bool] | None = None
    """When true for a request, the call needs ADMIN instead of `action`."""

    def action_for(self, request: Any) -> Action:
        if self.escalate is not None and self.escalate(request):
            return Action.ADMIN
        return self.action


def _changes_mirror_mode(request: Any) -> bool:
    """UpdateRepository of `mirror`: turning a mirror into a push repository (or back) is
    an admin's deliberate act (issue 13's rule)."""
    return "mirror" in request.update_mask.paths


_R = "/mirror.v1.RepositoryService/"
_M = "/mirror.v1.RemoteService/"
_S = "/mirror.v1.SyncService/"
_V = "/mirror.v1.VersionService/"
_C = "/mirror.v1.ContentService/"
_D = "/mirror.v1.DistributionService/"
_T = "/mirror.v1.TaskService/"
_A = "/mirror.v1.AccessService/"
_O = "/mirror.v1.ContentOperationService/"
_H = "/mirror.v1.HousekeepingService/"

RULES: dict[str, Rule] = {
    _R + "CreateRepository": Rule(Action.WRITE),
    _R + "GetRepository": Rule(Action.READ, _field("name")),
    _R + "ListRepositories": Rule(Action.READ),
    _R + "UpdateRepository": Rule(
        Action.WRITE, _field("repository", "name"), escalate=_changes_mirror_mode
    ),
    _R + "DeleteRepository": Rule(Action.WRITE, _field("name")),
    _M + "CreateRemote": Rule(Action.WRITE),
    _M + "GetRemote": Rule(Action.READ),
    _M + "ListRemotes": Rule(Action.READ),
    _M + "UpdateRemote": Rule(Action.WRITE),
    _M + "DeleteRemote": Rule(Action.WRITE),
    _S + "StartSync": Rule(Action.WRITE, _field("repository")),
    _S + "Sync": Rule(Action.WRITE, _field("repository")),
    _V + "GetVersion": Rule(Action.READ, _field("name")),
    _V + "ListVersions": Rule(Action.READ, _field("parent")),
    _V + "DeleteVersion": Rule(Action.WRITE, _field("name")),
    _C + "ListContent": Rule(Action.READ, _field("parent")),
    _C + "DiffVersions": Rule(Action.READ, _field("base_version")),
    _O + "ModifyContent": Rule(Action.WRITE, _field("repository"), _field("source_version")),
    _O + "TagManifest": Rule(Action.WRITE, _field("repository")),
    _O + "UntagManifest": Rule(Action.WRITE, _field("repository")),
    _O + "CopyTags": Rule(Action.WRITE, _field("destination"), _field("source_version")),
    _O + "RollbackRepository": Rule(Action.WRITE, _field("version")),
    # Garbage collection acts on the whole store: an operator's (admin's) call.
    _H + "CleanupOrphans": Rule(Action.ADMIN),
    _H + "RepairVersion": Rule(Action.WRITE, _field("version")),
    _D + "CreateDistribution": Rule(Action.WRITE, _distribution_create),
    _D + "GetDistribution": Rule(Action.READ, _distribution),
    _D + "ListDistributions": Rule(Action.READ),
    _D + "UpdateDistribution": Rule(Action.WRITE, _distribution_update),
    _D + "DeleteDistribution": Rule(Action.WRITE, _distribution),
    _T + "GetTask": Rule(Action.READ, _task),
    _T + "ListTasks": Rule(Action.READ, _field("reserved_resource")),
    _T + "CancelTask": Rule(Action.WRITE, _task),
    _T + "WatchTask": Rule(Action.READ, _task),
    **{
        _A + m: Rule(Action.ADMIN)
        for m in (
            "CreatePrincipal",
            "GetPrincipal",
            "ListPrincipals",
            "UpdatePrincipal",
            "DeletePrincipal",
            "CreateToken",
            "ListTokens",
            "DeleteToken",
            "CreateGrant",
            "ListGrants",
            "DeleteGrant",
        )
    },
}

UNKNOWN = Rule(Action.ADMIN)
"""A method missing from RULES: only an admin may call it."""


def is_open(method: str) -> bool:
    return method.startswith(OPEN_PREFIXES)


def is_mutating(method: str) -> bool:
    """Whether the audit log records the call (WRITE and ADMIN actions that change state)."""
    rule = RULES.get(method, UNKNOWN)
    verb = method.rsplit("/", 1)[-1]
    return rule.action is Action.WRITE or (
        rule.action is Action.ADMIN and not verb.startswith(("Get", "List"))
    )
