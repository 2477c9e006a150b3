"""Request builders shared by the sync and asyncio clients.

Each function turns friendly Python arguments (short ids, enum names, keyword fields) into
the request message of one RPC, so that both clients stay thin and the request shapes can
be unit-tested without a channel; :func:`follow_page_token` moves a List request on to the
next page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from google.protobuf import duration_pb2, field_mask_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from protos import mirror_pb2 as pb

from .names import distribution_name, remote_name, repository_name, version_name

__all__ = [
    "REMOTE_INPUT_FIELDS",
    "cleanup_orphans_request",
    "create_distribution_request",
    "create_remote_request",
    "create_repository_request",
    "diff_versions_request",
    "explicit_version_name",
    "follow_page_token",
    "list_content_request",
    "list_tasks_request",
    "parse_membership",
    "parse_policy",
    "parse_task_state",
    "start_sync_request",
    "sync_request",
    "update_distribution_request",
    "update_remote_request",
    "update_repository_request",
]

_REMOTE_OUTPUT_ONLY = frozenset(
    {
        "name",
        "uid",
        "password_set",
        "proxy_password_set",
        "ssl_client_key_set",
        "header_names",
        "create_time",
        "update_time",
    }
)

#: Remote fields a client may set on create and update (everything but output-only ones).
REMOTE_INPUT_FIELDS: tuple[str, ...] = tuple(
    field.name for field in pb.Remote.DESCRIPTOR.fields if field.name not in _REMOTE_OUTPUT_ONLY
)


def _parse_enum(enum_name: str, prefix: str, value: int | str) -> int:
    """Map ``value`` (a number, ``on_demand``, ``ON_DEMAND``, ``POLICY_ON_DEMAND``) to a number."""
    enum = pb.DESCRIPTOR.enum_types_by_name[enum_name]
    if isinstance(value, bool):
        raise TypeError(f"{enum_name} must be an enum number or name, not a bool")
    if isinstance(value, int):
        if value not in enum.values_by_number:
            raise ValueError(f"{value} is not a valid {enum_name}")
        return value
    key = value.strip().upper().replace("-", "_")
    for candidate in (key, prefix + key):
        if candidate in enum.values_by_name:
            return enum.values_by_name[candidate].number
    choices = ", ".join(v.name.removeprefix(prefix).lower() for v in enum.values if v.number != 0)
    raise ValueError(f"{value!r} is not a valid {enum_name}; choose one of {choices}")


def parse_policy(value: int | str) -> pb.Policy:
    """Return the ``Policy`` number for ``immediate``, ``on_demand``, ``streamed`` or a number."""
    return cast("pb.Policy", _parse_enum("Policy", "POLICY_", value))


def parse_task_state(value: int | str) -> pb.TaskState:
    """Return the ``TaskState`` number for ``queued``, ``running``, ... or a number."""
    return cast("pb.TaskState", _parse_enum("TaskState", "TASK_STATE_", value))


def parse_membership(value: int | str) -> pb.Membership:
    """Return the ``Membership`` number for ``present``, ``added``, ``removed`` or a number."""
    return cast("pb.Membership", _parse_enum("Membership", "MEMBERSHIP_", value))


def _set_field(message: Message, name: str, value: Any) -> None:
    """Assign ``value`` to ``message.<name>``, handling repeated, map and enum fields."""
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping, not {type(value).__name__}")
        target = getattr(message, name)
        target.clear()
        target.update({str(k): str(v) for k, v in value.items()})
    elif field.is_repeated:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError(f"{name} must be a list of strings, not {type(value).__name__}")
        target = getattr(message, name)
        del target[:]
        target.extend(value)
    elif field.enum_type is not None:
        setattr(message, name, _parse_enum(field.enum_type.name, _enum_prefix(field), value))
    else:
        setattr(message, name, value)


def _enum_prefix(field: FieldDescriptor) -> str:
    """Return the UPPER_SNAKE value prefix of an enum field's type (``POLICY_``)."""
    name = field.enum_type.name
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper() + "_"


def _check_remote_fields(fields: Mapping[str, Any]) -> None:
    """Reject unknown and output-only Remote field names with a ``TypeError``."""
    for name in fields:
        if name in _REMOTE_OUTPUT_ONLY:
            raise TypeError(f"Remote.{name} is output only and cannot be set")
        if name not in REMOTE_INPUT_FIELDS:
            raise TypeError(f"Remote has no field {name!r}")


def create_repository_request(
    repository_id: str, description: str = "", retain_versions: int = 0
) -> pb.CreateRepositoryRequest:
    """Build a CreateRepository request."""
    return pb.CreateRepositoryRequest(
        repository_id=repository_id,
        repository=pb.Repository(description=description, retain_versions=retain_versions),
    )


def update_repository_request(
    name: str,
    *,
    description: str | None = None,
    retain_versions: int | None = None,
    mirror: bool | None = None,
) -> pb.UpdateRepositoryRequest:
    """Build an UpdateRepository request whose mask names only the fields given."""
    repository = pb.Repository(name=repository_name(name))
    paths: list[str] = []
    if description is not None:
        repository.description = description
        paths.append("description")
    if retain_versions is not None:
        repository.retain_versions = retain_versions
        paths.append("retain_versions")
    if mirror is not None:
        repository.mirror = mirror
        paths.append("mirror")
    if not paths:
        raise ValueError("nothing to update: give description, retain_versions and/or mirror")
    return pb.UpdateRepositoryRequest(
        repository=repository, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


def create_remote_request(
    remote_id: str, url: str, upstream_name: str, **fields: Any
) -> pb.CreateRemoteRequest:
    """Build a CreateRemote request; ``fields`` are any input fields of ``Remote``.

    Keyword values of ``None`` are skipped (the server default applies).
    """
    _check_remote_fields(fields)
    remote = pb.Remote(url=url, upstream_name=upstream_name)
    for name, value in fields.items():
        if value is not None:
            _set_field(remote, name, value)
    return pb.CreateRemoteRequest(remote_id=remote_id, remote=remote)


def update_remote_request(name: str, **fields: Any) -> pb.UpdateRemoteRequest:
    """Build an UpdateRemote request whose mask names exactly the keyword fields given.

    A value of ``None`` puts the field in the mask but leaves it unset, which resets it to
    its default (e.g. ``download_concurrency=None`` goes back to the server default, and
    ``password=None`` removes the password).
    """
    if not fields:
        raise ValueError("nothing to update: give at least one Remote field")
    _check_remote_fields(fields)
    remote = pb.Remote(name=remote_name(name))
    for field, value in fields.items():
        if value is not None:
            _set_field(remote, field, value)
    return pb.UpdateRemoteRequest(
        remote=remote, update_mask=field_mask_pb2.FieldMask(paths=list(fields))
    )


def create_distribution_request(
    distribution_id: str,
    base_path: str,
    *,
    repository: str | None = None,
    version: str | None = None,
    description: str = "",
    public: bool = False,
) -> pb.CreateDistributionRequest:
    """Build a CreateDistribution request serving a repository (latest) or a pinned version."""
    if (repository is None) == (version is None):
        raise ValueError("give exactly one of repository or version")
    distribution = pb.Distribution(base_path=base_path, description=description, public=public)
    if repository is not None:
        distribution.repository = repository_name(repository)
    if version is not None:
        distribution.version = version_name(version)
    return pb.CreateDistributionRequest(distribution_id=distribution_id, distribution=distribution)


def update_distribution_request(
    name: str,
    *,
    base_path: str | None = None,
    repository: str | None = None,
    version: str | None = None,
    description: str | None = None,
    public: bool | None = None,
) -> pb.UpdateDistributionRequest:
    """Build an UpdateDistribution request whose mask names only the fields given.

    ``repository`` and ``version`` are alternatives: setting one also puts the other in the
    mask, unset, so that a distribution can switch between following a repository and
    serving a pinned version.
    """
    if repository is not None and version is not None:
        raise ValueError("give at most one of repository or version")
    distribution = pb.Distribution(name=distribution_name(name))
    paths: list[str] = []
    if base_path is not None:
        distribution.base_path = base_path
        paths.append("base_path")
    if repository is not None:
        distribution.repository = repository_name(repository)
        paths += ["repository", "version"]
    if version is not None:
        distribution.version = version_name(version)
        paths += ["repository", "version"]
    if description is not None:
        distribution.description = description
        paths.append("description")
    if public is not None:
        distribution.public = public
        paths.append("public")
    if not paths:
        raise ValueError(
            "nothing to update: give base_path, repository, version, description and/or public"
        )
    return pb.UpdateDistributionRequest(
        distribution=distribution, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


def list_content_request(
    version: str,
    number: int | str | None = None,
    *,
    content_type: str = "",
    membership: int | str = 0,
    manifest_digest: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> pb.ListContentRequest:
    """Build a ListContent request for a version (``number`` ``None`` means latest)."""
    return pb.ListContentRequest(
        parent=version_name(version, number),
        content_type=content_type,
        membership=parse_membership(membership),
        manifest_digest=manifest_digest,
        page_size=page_size,
        page_token=page_token,
    )


def diff_versions_request(
    base_version: str | int,
    target_version: str | int,
    *,
    repository: str | None = None,
    content_type: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> pb.DiffVersionsRequest:
    """Build a DiffVersions request.

    Without ``repository`` the versions are full (or ``r/versions/n``) names; with it they
    are numbers or ``latest`` within that repository.
    """
    if repository is None:
        base, target = version_name(str(base_version)), version_name(str(target_version))
    else:
        base = version_name(repository, base_version)
        target = version_name(repository, target_version)
    return pb.DiffVersionsRequest(
        base_version=base,
        target_version=target,
        content_type=content_type,
        page_size=page_size,
        page_token=page_token,
    )


def list_tasks_request(
    page_size: int = 0,
    page_token: str = "",
    *,
    state: int | str = 0,
    reserved_resource: str = "",
) -> pb.ListTasksRequest:
    """Build a ListTasks request, optionally filtered by state and reserved resource."""
    return pb.ListTasksRequest(
        page_size=page_size,
        page_token=page_token,
        state=parse_task_state(state),
        reserved_resource=reserved_resource,
    )


def start_sync_request(
    repository: str, remote: str, mirror: bool = False, request_id: str | None = None
) -> pb.StartSyncRequest:
    """Build a StartSync request."""
    return pb.StartSyncRequest(
        repository=repository_name(repository),
        remote=remote_name(remote),
        mirror=mirror,
        request_id=request_id or "",
    )


def sync_request(
    repository: str, remote: str, mirror: bool = False, request_id: str | None = None
) -> pb.SyncRequest:
    """Build a (streaming) Sync request."""
    return pb.SyncRequest(
        repository=repository_name(repository),
        remote=remote_name(remote),
        mirror=mirror,
        request_id=request_id or "",
    )


def _base(repository: str, base: int | str | None) -> str:
    return "" if base is None else version_name(repository, base)


def modify_content_request(
    repository: str,
    *,
    add: Sequence[str] = (),
    source: str | None = None,
    remove: Sequence[str] = (),
    base: int | str | None = None,
) -> pb.ModifyContentRequest:
    """Build a ModifyContent request; ``source`` is a version name (or a repository: latest)."""
    return pb.ModifyContentRequest(
        repository=repository_name(repository),
        base_version=_base(repository, base),
        add=list(add),
        source_version=version_name(source) if source else "",
        remove=list(remove),
    )


def tag_manifest_request(
    repository: str, tag: str, digest: str, base: int | str | None = None
) -> pb.TagManifestRequest:
    """Build a TagManifest request."""
    return pb.TagManifestRequest(
        repository=repository_name(repository),
        tag=tag,
        digest=digest,
        base_version=_base(repository, base),
    )


def untag_manifest_request(
    repository: str, tag: str, base: int | str | None = None
) -> pb.UntagManifestRequest:
    """Build an UntagManifest request."""
    return pb.UntagManifestRequest(
        repository=repository_name(repository), tag=tag, base_version=_base(repository, base)
    )


def copy_tags_request(
    source: str, destination: str, tags: Sequence[str] = (), base: int | str | None = None
) -> pb.CopyTagsRequest:
    """Build a CopyTags request; ``source`` is a version name (or a repository: latest)."""
    return pb.CopyTagsRequest(
        source_version=version_name(source),
        destination=repository_name(destination),
        tags=list(tags),
        base_version=_base(destination, base),
    )


def explicit_version_name(name: str, number: int | str | None) -> str:
    """Like :func:`~client.names.version_name` but without defaulting to ``latest``.

    For destructive calls: a bare repository without a number is an error.
    """
    if number is None and "/versions/" not in name:
        raise ValueError(f"{name!r} names no version; give a version number")
    return version_name(name, number)


def follow_page_token(request: Any, response: Any, seen: set[str]) -> bool:
    """Point a List request at the page after ``response``; ``False`` after the last page.

    ``seen`` holds the tokens followed so far: a server that repeats one would have the client
    loop forever, so that raises ``RuntimeError`` instead.
    """
    token = response.next_page_token
    if not token:
        return False
    if token in seen:
        raise RuntimeError(f"server repeated page token {token!r}")
    seen.add(token)
    request.page_token = token
    return True


# -- access -------------------------------------------------------------------------------

_ROLES = {
    "": pb.ROLE_UNSPECIFIED,
    "none": pb.ROLE_UNSPECIFIED,
    "viewer": pb.ROLE_VIEWER,
    "editor": pb.ROLE_EDITOR,
    "admin": pb.ROLE_ADMIN,
}


def role(value: int | str) -> int:
    """``viewer`` / ``editor`` / ``admin`` / ``none`` (or the enum value) -> ``pb.Role``."""
    if isinstance(value, int):
        return value
    key = value.strip().lower().removeprefix("role_")
    if key not in _ROLES:
        raise ValueError(f"unknown role {value!r}; choose viewer, editor, admin or none")
    return _ROLES[key]


def principal_name(value: str) -> str:
    """``alice`` -> ``principals/alice``."""
    value = value.strip()
    if not value:
        raise ValueError("an empty principal name")
    return value if value.startswith("principals/") else f"principals/{value}"


def update_principal_request(
    name: str, *, role_value: int | str | None = None, description: str | None = None
) -> pb.UpdatePrincipalRequest:
    """Only the given fields, with the matching mask."""
    principal = pb.Principal(name=principal_name(name))
    paths = []
    if role_value is not None:
        principal.role = role(role_value)  # type: ignore[assignment]
        paths.append("role")
    if description is not None:
        principal.description = description
        paths.append("description")
    if not paths:
        raise ValueError("nothing to update: give a role or a description")
    return pb.UpdatePrincipalRequest(
        principal=principal, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


def create_token_request(
    principal: str, description: str = "", expire_time: datetime | None = None
) -> pb.CreateTokenRequest:
    token = pb.Token(description=description)
    if expire_time is not None:
        token.expire_time.FromDatetime(expire_time)
    return pb.CreateTokenRequest(parent=principal_name(principal), token=token)


def _duration(seconds: float) -> duration_pb2.Duration:
    if not seconds >= 0:
        raise ValueError(f"a duration must be zero or more seconds, not {seconds!r}")
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def cleanup_orphans_request(
    orphan_protection_time: float | None,
    task_retention: float | None,
    request_id: str | None = None,
) -> pb.CleanupOrphansRequest:
    """A CleanupOrphans request; None leaves a duration to the server's setting."""
    request = pb.CleanupOrphansRequest(request_id=request_id or "")
    if orphan_protection_time is not None:
        request.orphan_protection_time.CopyFrom(_duration(orphan_protection_time))
    if task_retention is not None:
        request.task_retention.CopyFrom(_duration(task_retention))
    return request
