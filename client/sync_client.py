"""The blocking client of the mirror service, :class:`MirrorClient` (``mirrorctl``'s).

GENERATED from ``client/client.py`` by ``scripts/unasync_client.py`` (``make sync-client``);
do not edit: change the asyncio client and regenerate. Every method is the blocking twin of
the :class:`~client.client.AsyncMirrorClient` method of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator, Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import grpc

from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc

from . import builders
from .errors import MirrorClientError
from .names import distribution_name, remote_name, repository_name, task_name, version_name
from .transport import DEFAULT_TARGET, Channel, ResponseStream, open_channel

__all__ = ["MirrorClient"]


class MirrorClient:
    """Client of every service in ``mirror.v1``; use it in a ``with`` block (or ``async with``).

    The asyncio flavour must be created inside a running event loop (``grpc.aio`` channels
    bind to the loop).

    Args:
        target: ``host:port`` of the server.
        credentials: TLS channel credentials; ``None`` uses an insecure channel.
        options: Extra gRPC channel options.
        timeout: Deadline in seconds for unary calls; ``None`` means none.
        token: API token sent as ``authorization: Bearer`` with every call; ``None`` sends
            none (:func:`client.auth.resolve_token` is where mirrorctl finds one).
        channel: A ready channel to use instead of creating one (it is then not closed by
            :meth:`close`); tests pass a ``grpc_testing`` channel to the blocking flavour.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
        timeout: float | None = None,
        token: str | None = None,
        channel: Channel | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._owns_channel = channel is None
        if channel is None:
            channel = open_channel(target, credentials, options, token)
        self.channel = channel
        self._repositories = pb_grpc.RepositoryServiceStub(channel)
        self._remotes = pb_grpc.RemoteServiceStub(channel)
        self._sync = pb_grpc.SyncServiceStub(channel)
        self._versions = pb_grpc.VersionServiceStub(channel)
        self._content = pb_grpc.ContentServiceStub(channel)
        self._distributions = pb_grpc.DistributionServiceStub(channel)
        self._tasks = pb_grpc.TaskServiceStub(channel)
        self._housekeeping = pb_grpc.HousekeepingServiceStub(channel)
        self._operations = pb_grpc.ContentOperationServiceStub(channel)
        self._access = pb_grpc.AccessServiceStub(channel)

    def close(self) -> None:
        """Close the channel (unless it was passed in); pending calls are cancelled."""
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Self:
        """Use the client in an ``async with`` (blocking: ``with``) block that closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the channel."""
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        """Invoke a unary method, translating gRPC errors."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise MirrorClientError.from_rpc_error(err) from None

    def _stream(self, method: Callable[..., Any], request: Any) -> ResponseStream[Any]:
        """Start a server-streaming method (no deadline: streams last as long as the task)."""
        return ResponseStream(method(request))

    def _pages(
        self, method: Callable[..., Any], request: Any, items: str
    ) -> Iterator[Any]:
        """Yield the ``items`` of every page, following ``next_page_token``."""
        seen: set[str] = set()
        while True:
            response = self._call(method, request)
            for item in getattr(response, items):
                yield item
            if not builders.follow_page_token(request, response, seen):
                return

    # -- repositories -----------------------------------------------------------------------

    def create_repository(
        self, repository_id: str, description: str = "", retain_versions: int = 0
    ) -> pb.Repository:
        """Create ``repositories/{repository_id}`` with an empty version 0."""
        request = builders.create_repository_request(repository_id, description, retain_versions)
        return (self._call(self._repositories.CreateRepository, request)).repository

    def get_repository(self, name: str) -> pb.Repository:
        """Return one repository."""
        request = pb.GetRepositoryRequest(name=repository_name(name))
        return (self._call(self._repositories.GetRepository, request)).repository

    def list_repositories(
        self, page_size: int = 0, page_token: str = ""
    ) -> pb.ListRepositoriesResponse:
        """Return one page of repositories, ordered by name."""
        request = pb.ListRepositoriesRequest(page_size=page_size, page_token=page_token)
        return self._call(self._repositories.ListRepositories, request)

    def iter_repositories(self, page_size: int = 0) -> Iterator[pb.Repository]:
        """Yield every repository, following page tokens."""
        request = pb.ListRepositoriesRequest(page_size=page_size)
        return self._pages(self._repositories.ListRepositories, request, "repositories")

    def update_repository(
        self,
        name: str,
        *,
        description: str | None = None,
        retain_versions: int | None = None,
        mirror: bool | None = None,
    ) -> pb.Repository:
        """Update the given fields only (the mask names exactly those); ``mirror=False``
        turns a mirror into a push repository."""
        request = builders.update_repository_request(
            name, description=description, retain_versions=retain_versions, mirror=mirror
        )
        return (self._call(self._repositories.UpdateRepository, request)).repository

    def delete_repository(self, name: str) -> None:
        """Delete a repository with its versions."""
        request = pb.DeleteRepositoryRequest(name=repository_name(name))
        self._call(self._repositories.DeleteRepository, request)

    # -- remotes ----------------------------------------------------------------------------

    def create_remote(
        self, remote_id: str, url: str, upstream_name: str, **fields: Any
    ) -> pb.Remote:
        """Create ``remotes/{remote_id}``; ``fields`` are any other input fields of Remote."""
        request = builders.create_remote_request(remote_id, url, upstream_name, **fields)
        return (self._call(self._remotes.CreateRemote, request)).remote

    def get_remote(self, name: str) -> pb.Remote:
        """Return one remote (secrets only as ``*_set`` flags)."""
        request = pb.GetRemoteRequest(name=remote_name(name))
        return (self._call(self._remotes.GetRemote, request)).remote

    def list_remotes(
        self, page_size: int = 0, page_token: str = ""
    ) -> pb.ListRemotesResponse:
        """Return one page of remotes, ordered by name."""
        request = pb.ListRemotesRequest(page_size=page_size, page_token=page_token)
        return self._call(self._remotes.ListRemotes, request)

    def iter_remotes(self, page_size: int = 0) -> Iterator[pb.Remote]:
        """Yield every remote, following page tokens."""
        request = pb.ListRemotesRequest(page_size=page_size)
        return self._pages(self._remotes.ListRemotes, request, "remotes")

    def update_remote(self, name: str, **fields: Any) -> pb.Remote:
        """Update exactly the keyword fields given; ``None`` resets a field to its default."""
        request = builders.update_remote_request(name, **fields)
        return (self._call(self._remotes.UpdateRemote, request)).remote

    def delete_remote(self, name: str) -> None:
        """Delete a remote."""
        request = pb.DeleteRemoteRequest(name=remote_name(name))
        self._call(self._remotes.DeleteRemote, request)

    # -- versions ---------------------------------------------------------------------------

    def get_version(self, name: str, number: int | str | None = None) -> pb.Version:
        """Return a version: a version name, or a repository and a number (default latest)."""
        request = pb.GetVersionRequest(name=version_name(name, number))
        return (self._call(self._versions.GetVersion, request)).version

    def list_versions(
        self, repository: str, page_size: int = 0, page_token: str = ""
    ) -> pb.ListVersionsResponse:
        """Return one page of a repository's versions, newest first."""
        request = pb.ListVersionsRequest(
            parent=repository_name(repository), page_size=page_size, page_token=page_token
        )
        return self._call(self._versions.ListVersions, request)

    def iter_versions(self, repository: str, page_size: int = 0) -> Iterator[pb.Version]:
        """Yield every version of a repository, newest first."""
        request = pb.ListVersionsRequest(parent=repository_name(repository), page_size=page_size)
        return self._pages(self._versions.ListVersions, request, "versions")

    def delete_version(self, name: str, number: int | str | None = None) -> None:
        """Delete a version: a version name, or a repository and an explicit number."""
        request = pb.DeleteVersionRequest(name=builders.explicit_version_name(name, number))
        self._call(self._versions.DeleteVersion, request)

    # -- content ----------------------------------------------------------------------------

    def list_content(
        self,
        version: str,
        number: int | str | None = None,
        *,
        content_type: str = "",
        membership: int | str = 0,
        manifest_digest: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> pb.ListContentResponse:
        """Return one page of a version's content (``number`` ``None`` means latest)."""
        request = builders.list_content_request(
            version,
            number,
            content_type=content_type,
            membership=membership,
            manifest_digest=manifest_digest,
            page_size=page_size,
            page_token=page_token,
        )
        return self._call(self._content.ListContent, request)

    def iter_content(
        self,
        version: str,
        number: int | str | None = None,
        *,
        content_type: str = "",
        membership: int | str = 0,
        manifest_digest: str = "",
        page_size: int = 0,
    ) -> Iterator[pb.Content]:
        """Yield all of a version's content that matches the filters."""
        request = builders.list_content_request(
            version,
            number,
            content_type=content_type,
            membership=membership,
            manifest_digest=manifest_digest,
            page_size=page_size,
        )
        return self._pages(self._content.ListContent, request, "content")

    def diff_versions(
        self,
        base_version: str | int,
        target_version: str | int,
        *,
        repository: str | None = None,
        content_type: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> pb.DiffVersionsResponse:
        """Return one page of changes between two versions, with the overall summary."""
        request = builders.diff_versions_request(
            base_version,
            target_version,
            repository=repository,
            content_type=content_type,
            page_size=page_size,
            page_token=page_token,
        )
        return self._call(self._content.DiffVersions, request)

    def iter_changes(
        self,
        base_version: str | int,
        target_version: str | int,
        *,
        repository: str | None = None,
        content_type: str = "",
        page_size: int = 0,
    ) -> Iterator[pb.ContentChange]:
        """Yield every change between two versions."""
        request = builders.diff_versions_request(
            base_version,
            target_version,
            repository=repository,
            content_type=content_type,
            page_size=page_size,
        )
        return self._pages(self._content.DiffVersions, request, "changes")

    # -- content operations (each returns the response: ``version`` and ``changed``) -------

    def modify_content(
        self,
        repository: str,
        *,
        add: Sequence[str] = (),
        source: str | None = None,
        remove: Sequence[str] = (),
        base: int | str | None = None,
    ) -> pb.ModifyContentResponse:
        """Add content named in ``source`` (a version) and remove content, in one version."""
        request = builders.modify_content_request(
            repository, add=add, source=source, remove=remove, base=base
        )
        return self._call(self._operations.ModifyContent, request)

    def tag_manifest(
        self, repository: str, tag: str, digest: str, base: int | str | None = None
    ) -> pb.TagManifestResponse:
        """Point ``tag`` at a manifest of the repository."""
        request = builders.tag_manifest_request(repository, tag, digest, base)
        return self._call(self._operations.TagManifest, request)

    def untag_manifest(
        self, repository: str, tag: str, base: int | str | None = None
    ) -> pb.UntagManifestResponse:
        """Remove a tag (its manifest stays)."""
        request = builders.untag_manifest_request(repository, tag, base)
        return self._call(self._operations.UntagManifest, request)

    def copy_tags(
        self,
        source: str,
        destination: str,
        tags: Sequence[str] = (),
        base: int | str | None = None,
    ) -> pb.CopyTagsResponse:
        """Copy tags (names or wildcards; all when empty) with their images from a version."""
        request = builders.copy_tags_request(source, destination, tags, base)
        return self._call(self._operations.CopyTags, request)

    def rollback_repository(
        self, repository: str, number: int | str
    ) -> pb.RollbackRepositoryResponse:
        """A new latest version with exactly the content of version ``number``."""
        request = pb.RollbackRepositoryRequest(version=version_name(repository, number))
        return self._call(self._operations.RollbackRepository, request)

    # -- distributions ----------------------------------------------------------------------

    def create_distribution(
        self,
        distribution_id: str,
        base_path: str,
        *,
        repository: str | None = None,
        version: str | None = None,
        description: str = "",
        public: bool = False,
    ) -> pb.Distribution:
        """Create a distribution of a repository (latest) or of one pinned version; a
        ``public`` one is pulled without credentials."""
        request = builders.create_distribution_request(
            distribution_id,
            base_path,
            repository=repository,
            version=version,
            description=description,
            public=public,
        )
        return (self._call(self._distributions.CreateDistribution, request)).distribution

    def get_distribution(self, name: str) -> pb.Distribution:
        """Return one distribution."""
        request = pb.GetDistributionRequest(name=distribution_name(name))
        return (self._call(self._distributions.GetDistribution, request)).distribution

    def list_distributions(
        self, page_size: int = 0, page_token: str = ""
    ) -> pb.ListDistributionsResponse:
        """Return one page of distributions, ordered by name."""
        request = pb.ListDistributionsRequest(page_size=page_size, page_token=page_token)
        return self._call(self._distributions.ListDistributions, request)

    def iter_distributions(self, page_size: int = 0) -> Iterator[pb.Distribution]:
        """Yield every distribution, following page tokens."""
        request = pb.ListDistributionsRequest(page_size=page_size)
        return self._pages(self._distributions.ListDistributions, request, "distributions")

    def update_distribution(
        self,
        name: str,
        *,
        base_path: str | None = None,
        repository: str | None = None,
        version: str | None = None,
        description: str | None = None,
        public: bool | None = None,
    ) -> pb.Distribution:
        """Update the given fields only; ``repository`` / ``version`` replace each other."""
        request = builders.update_distribution_request(
            name,
            base_path=base_path,
            repository=repository,
            version=version,
            description=description,
            public=public,
        )
        return (self._call(self._distributions.UpdateDistribution, request)).distribution

    def delete_distribution(self, name: str) -> None:
        """Delete a distribution."""
        request = pb.DeleteDistributionRequest(name=distribution_name(name))
        self._call(self._distributions.DeleteDistribution, request)

    # -- tasks ------------------------------------------------------------------------------

    def get_task(self, name: str) -> pb.Task:
        """Return one task (``tasks/<uuid>`` or a bare uuid)."""
        request = pb.GetTaskRequest(name=task_name(name))
        return (self._call(self._tasks.GetTask, request)).task

    def list_tasks(
        self,
        page_size: int = 0,
        page_token: str = "",
        *,
        state: int | str = 0,
        reserved_resource: str = "",
    ) -> pb.ListTasksResponse:
        """Return one page of tasks, newest first."""
        request = builders.list_tasks_request(
            page_size, page_token, state=state, reserved_resource=reserved_resource
        )
        return self._call(self._tasks.ListTasks, request)

    def iter_tasks(
        self, *, state: int | str = 0, reserved_resource: str = "", page_size: int = 0
    ) -> Iterator[pb.Task]:
        """Yield every task matching the filters, newest first."""
        request = builders.list_tasks_request(
            page_size, state=state, reserved_resource=reserved_resource
        )
        return self._pages(self._tasks.ListTasks, request, "tasks")

    def cancel_task(self, name: str) -> pb.Task:
        """Cancel a queued or running task and return it."""
        request = pb.CancelTaskRequest(name=task_name(name))
        return (self._call(self._tasks.CancelTask, request)).task

    def watch_task(self, name: str) -> ResponseStream[pb.WatchTaskResponse]:
        """Stream a task's events until it ends."""
        request = pb.WatchTaskRequest(name=task_name(name))
        return self._stream(self._tasks.WatchTask, request)

    # -- sync -------------------------------------------------------------------------------

    def start_sync(
        self, repository: str, remote: str, mirror: bool = False, request_id: str | None = None
    ) -> pb.Task:
        """Start a sync task and return it (queued) at once."""
        request = builders.start_sync_request(repository, remote, mirror, request_id)
        return (self._call(self._sync.StartSync, request)).task

    def sync(
        self, repository: str, remote: str, mirror: bool = False, request_id: str | None = None
    ) -> ResponseStream[pb.SyncResponse]:
        """Start a sync task and stream its events until it ends."""
        request = builders.sync_request(repository, remote, mirror, request_id)
        return self._stream(self._sync.Sync, request)

    # -- access -----------------------------------------------------------------------------

    def create_principal(
        self, principal_id: str, role: int | str = "", description: str = ""
    ) -> pb.Principal:
        """Create a principal (a user or service account) with a global role."""
        request = pb.CreatePrincipalRequest(
            principal_id=principal_id,
            principal=pb.Principal(role=builders.role(role), description=description),
        )
        return (self._call(self._access.CreatePrincipal, request)).principal

    def get_principal(self, name: str) -> pb.Principal:
        """Return one principal."""
        request = pb.GetPrincipalRequest(name=builders.principal_name(name))
        return (self._call(self._access.GetPrincipal, request)).principal

    def list_principals(
        self, page_size: int = 0, page_token: str = ""
    ) -> pb.ListPrincipalsResponse:
        """Return one page of principals."""
        request = pb.ListPrincipalsRequest(page_size=page_size, page_token=page_token)
        return self._call(self._access.ListPrincipals, request)

    def update_principal(
        self, name: str, *, role: int | str | None = None, description: str | None = None
    ) -> pb.Principal:
        """Change a principal's role and/or description."""
        request = builders.update_principal_request(name, role_value=role, description=description)
        return (self._call(self._access.UpdatePrincipal, request)).principal

    def delete_principal(self, name: str) -> None:
        """Delete a principal, its tokens and grants."""
        request = pb.DeletePrincipalRequest(name=builders.principal_name(name))
        self._call(self._access.DeletePrincipal, request)

    def create_token(
        self, principal: str, description: str = "", expire_time: datetime | None = None
    ) -> pb.CreateTokenResponse:
        """Create an API token; the response's ``secret`` is shown this once only."""
        request = builders.create_token_request(principal, description, expire_time)
        return self._call(self._access.CreateToken, request)

    def list_tokens(
        self, principal: str, page_size: int = 0, page_token: str = ""
    ) -> pb.ListTokensResponse:
        """Return one page of a principal's tokens (never their secrets)."""
        request = pb.ListTokensRequest(
            parent=builders.principal_name(principal), page_size=page_size, page_token=page_token
        )
        return self._call(self._access.ListTokens, request)

    def delete_token(self, name: str) -> None:
        """Revoke a token (``principals/<p>/tokens/<id>``) at once."""
        self._call(self._access.DeleteToken, pb.DeleteTokenRequest(name=name))

    def create_grant(self, principal: str, repository: str, role: int | str) -> pb.Grant:
        """Give a principal ``viewer`` or ``editor`` on one repository."""
        request = pb.CreateGrantRequest(
            parent=builders.principal_name(principal),
            grant=pb.Grant(repository=repository_name(repository), role=builders.role(role)),
        )
        return (self._call(self._access.CreateGrant, request)).grant

    def list_grants(self, principal: str) -> list[pb.Grant]:
        """Every grant of a principal."""
        request = pb.ListGrantsRequest(parent=builders.principal_name(principal))
        return list((self._call(self._access.ListGrants, request)).grants)

    def delete_grant(self, principal: str, repository: str) -> None:
        """Remove a principal's grant on a repository."""
        repo = repository_name(repository).removeprefix("repositories/")
        name = f"{builders.principal_name(principal)}/grants/{repo}"
        self._call(self._access.DeleteGrant, pb.DeleteGrantRequest(name=name))

    # -- housekeeping -----------------------------------------------------------------------

    def cleanup_orphans(
        self,
        orphan_protection_time: float | None = None,
        task_retention: float | None = None,
        request_id: str | None = None,
    ) -> pb.Task:
        """Start garbage collection and return its task (queued) at once; durations in
        seconds, None for the server's defaults."""
        request = builders.cleanup_orphans_request(
            orphan_protection_time, task_retention, request_id
        )
        return (self._call(self._housekeeping.CleanupOrphans, request)).task

    def repair_version(
        self, name: str, number: int | str | None = None, request_id: str | None = None
    ) -> pb.Task:
        """Start a repair of a version (a version name, or a repository and a number) and
        return its task (queued) at once."""
        request = pb.RepairVersionRequest(
            version=version_name(name, number), request_id=request_id or ""
        )
        return (self._call(self._housekeeping.RepairVersion, request)).task
