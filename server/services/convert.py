"""Domain <-> protobuf mapping; the only module besides servicers that touches `pb` types."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from protos import mirror_pb2 as pb
from server.domain.errors import InvalidArgument, Rule
from server.domain.resources import (
    DEFAULT_DOWNLOAD_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    ContentSummary,
    Policy,
    Remote,
    Repository,
    Version,
    VersionSource,
)
from server.domain.tasks import ProgressState, Task, TaskState

_POLICY_TO_PB = {
    Policy.IMMEDIATE: pb.POLICY_IMMEDIATE,
    Policy.ON_DEMAND: pb.POLICY_ON_DEMAND,
    Policy.STREAMED: pb.POLICY_STREAMED,
}
_POLICY_FROM_PB = {v: k for k, v in _POLICY_TO_PB.items()} | {
    pb.POLICY_UNSPECIFIED: Policy.IMMEDIATE
}
_TASK_STATE_TO_PB = {
    TaskState.QUEUED: pb.TASK_STATE_QUEUED,
    TaskState.RUNNING: pb.TASK_STATE_RUNNING,
    TaskState.COMPLETED: pb.TASK_STATE_COMPLETED,
    TaskState.FAILED: pb.TASK_STATE_FAILED,
    TaskState.CANCELED: pb.TASK_STATE_CANCELED,
}
_TASK_STATE_FROM_PB = {v: k for k, v in _TASK_STATE_TO_PB.items()}
_PROGRESS_STATE_TO_PB = {
    ProgressState.RUNNING: pb.PROGRESS_STATE_RUNNING,
    ProgressState.COMPLETED: pb.PROGRESS_STATE_COMPLETED,
    ProgressState.FAILED: pb.PROGRESS_STATE_FAILED,
    ProgressState.SKIPPED: pb.PROGRESS_STATE_SKIPPED,
}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def policy_from_pb(value: int, field: str = "remote.policy") -> Policy:
    try:
        return _POLICY_FROM_PB[value]
    except KeyError:
        raise InvalidArgument(
            f"unknown policy value {value}", field=field, reason=Rule.INVALID_ENUM_VALUE
        ) from None


def task_state_from_pb(value: int, field: str = "state") -> TaskState | None:
    if value == pb.TASK_STATE_UNSPECIFIED:
        return None
    try:
        return _TASK_STATE_FROM_PB[value]
    except KeyError:
        raise InvalidArgument(
            f"unknown task state value {value}", field=field, reason=Rule.INVALID_ENUM_VALUE
        ) from None


def repository_to_pb(repo: Repository) -> pb.Repository:
    return pb.Repository(
        name=repo.name,
        uid=repo.uid,
        description=repo.description,
        latest_version=repo.latest_version_name,
        latest_version_number=repo.latest_version,
        versions=repo.name,
        retain_versions=repo.retain_versions,
        mirror=repo.mirror,
        create_time=timestamp(repo.create_time),
        update_time=timestamp(repo.update_time),
    )


def remote_to_pb(remote: Remote) -> pb.Remote:
    """The remote as callers see it: secrets replaced by `*_set` flags, header values by
    `header_names`."""
    return pb.Remote(
        name=remote.name,
        uid=remote.uid,
        url=remote.url,
        upstream_name=remote.upstream_name,
        policy=_POLICY_TO_PB[remote.policy],
        download_concurrency=remote.download_concurrency,
        include_tags=list(remote.include_tags),
        exclude_tags=list(remote.exclude_tags),
        sigstore=remote.sigstore,
        proxy_url=remote.proxy_url,
        proxy_username=remote.proxy_username,
        proxy_password_set=bool(remote.proxy_password),
        ssl_ca_certificate=remote.ssl_ca_certificate,
        ssl_client_certificate=remote.ssl_client_certificate,
        ssl_client_key_set=bool(remote.ssl_client_key),
        ssl_validation=remote.ssl_validation,
        username=remote.username,
        password_set=bool(remote.password),
        connect_timeout=remote.connect_timeout,
        sock_read_timeout=remote.sock_read_timeout,
        total_timeout=remote.total_timeout,
        max_retries=remote.max_retries,
        header_names=sorted(name for name, _ in remote.headers),  # values are write-only
        include_foreign_layers=remote.include_foreign_layers,
        rate_limit=remote.rate_limit,
        token_realm_allowlist=list(remote.token_realm_allowlist),
        signed_only=remote.signed_only,
        create_time=timestamp(remote.create_time),
        update_time=timestamp(remote.update_time),
    )


def remote_from_pb(remote_id: str, msg: pb.Remote) -> Remote:
    """A domain remote from request fields; unset optional fields take their defaults."""
    return Remote(
        remote_id=remote_id,
        url=msg.url,
        upstream_name=msg.upstream_name,
        policy=policy_from_pb(msg.policy),
        download_concurrency=(
            msg.download_concurrency
            if msg.HasField("download_concurrency")
            else DEFAULT_DOWNLOAD_CONCURRENCY
        ),
        include_tags=tuple(msg.include_tags),
        exclude_tags=tuple(msg.exclude_tags),
        sigstore=msg.sigstore,
        proxy_url=msg.proxy_url,
        proxy_username=msg.proxy_username,
        proxy_password=msg.proxy_password,
        ssl_ca_certificate=msg.ssl_ca_certificate,
        ssl_client_certificate=msg.ssl_client_certificate,
        ssl_client_key=msg.ssl_client_key,
        ssl_validation=msg.ssl_validation if msg.HasField("ssl_validation") else True,
        username=msg.username,
        password=msg.password,
        connect_timeout=msg.connect_timeout,
        sock_read_timeout=msg.sock_read_timeout,
        total_timeout=msg.total_timeout,
        max_retries=msg.max_retries if msg.HasField("max_retries") else DEFAULT_MAX_RETRIES,
        headers=tuple(sorted(msg.headers.items())),
        include_foreign_layers=msg.include_foreign_layers,
        rate_limit=msg.rate_limit,
        token_realm_allowlist=tuple(msg.token_realm_allowlist),
        signed_only=msg.signed_only,
    )


def summary_to_pb(summary: ContentSummary) -> pb.ContentSummary:
    return pb.ContentSummary(added=summary.added, removed=summary.removed, present=summary.present)


def version_to_pb(version: Version) -> pb.Version:
    return pb.Version(
        name=version.name,
        number=version.number,
        base_version=version.base_name,
        create_time=timestamp(version.create_time),
        content_summary=summary_to_pb(version.summary),
        source=_VERSION_SOURCE_TO_PB[version.origin.source],
        principal=version.origin.principal,
        source_detail=version.origin.detail,
    )


_VERSION_SOURCE_TO_PB = {
    VersionSource.CREATED: pb.VERSION_SOURCE_CREATED,
    VersionSource.SYNC: pb.VERSION_SOURCE_SYNC,
    VersionSource.PUSH: pb.VERSION_SOURCE_PUSH,
    VersionSource.OPERATION: pb.VERSION_SOURCE_OPERATION,
}


def task_to_pb(task: Task) -> pb.Task:
    msg = pb.Task(
        name=task.name,
        kind=task.kind,
        state=_TASK_STATE_TO_PB[task.state],
        create_time=timestamp(task.create_time),
        start_time=timestamp(task.start_time),
        finish_time=timestamp(task.finish_time),
        progress_reports=[
            pb.ProgressReport(
                code=p.code,
                message=p.message,
                done=p.done,
                total=p.total,
                done_bytes=p.done_bytes,
                total_bytes=p.total_bytes,
                state=_PROGRESS_STATE_TO_PB[p.state],
                unit=p.unit,
            )
            for p in task.progress
        ],
        created_resources=list(task.created_resources),
        reserved_resources=list(task.reserved_resources),
        warnings=list(task.warnings),
        parameters=task.parameters,
    )
    if task.error is not None:
        msg.error.CopyFrom(
            pb.TaskError(
                code=task.error.code,
                reason=task.error.reason,
                message=task.error.message,
                metadata=task.error.metadata,
            )
        )
    return msg
