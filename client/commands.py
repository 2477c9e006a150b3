"""Handlers of the ``mirrorctl`` commands.

Each handler takes the sync client, the parsed arguments and the :class:`~client.render.Output`
and returns the exit status; gRPC failures propagate as
:class:`~client.errors.MirrorClientError` for :func:`client.cli.main` to report.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from protos import mirror_pb2 as pb

from .names import (
    distribution_name,
    remote_name,
    repository_name,
    schedule_name,
    short_id,
    version_name,
)
from .options import remote_fields
from .progress import TaskEvent, follow_task
from .render import (
    Output,
    compact_counts,
    content_row,
    enum_label,
    format_timestamp,
    task_error_line,
    task_state,
)
from .sync_client import MirrorClient

if TYPE_CHECKING:
    from .transport import ResponseStream

__all__ = ["UsageError"]

_FINAL_STATES = (pb.TASK_STATE_COMPLETED, pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED)


class UsageError(Exception):
    """A command line that parses but makes no sense (exit status 2)."""


def _deleted(out: Output, name: str, response: Message) -> int:
    """Report a deletion: ``deleted NAME``, or the (empty) response as grpcurl prints it."""
    if out.json:
        out.message(response)
    else:
        out.line(f"deleted {name}")
    return 0


# -- repositories -------------------------------------------------------------------------


def _repository_row(r: pb.Repository) -> list[str]:
    """Table row of a repository."""
    retain = str(r.retain_versions) if r.retain_versions else "all"
    mirror = "yes" if r.mirror else "no"
    return [r.name, str(r.latest_version_number), retain, mirror, r.description]


def repository_create(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``repository create``."""
    repository = client.create_repository(args.name, args.description, args.retain_versions)
    out.resource(pb.CreateRepositoryResponse(repository=repository))
    return 0


def repository_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``repository list``."""
    headers = ["NAME", "LATEST", "RETAIN", "MIRROR", "DESCRIPTION"]
    out.resources(client.iter_repositories(), headers, _repository_row, pb.ListRepositoriesResponse)
    return 0


def repository_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``repository show``."""
    out.resource(pb.GetRepositoryResponse(repository=client.get_repository(args.name)))
    return 0


def repository_update(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``repository update``: only the options given are updated."""
    mirror = None if args.mirror is None else args.mirror == "true"
    if args.description is None and args.retain_versions is None and mirror is None:
        raise UsageError("nothing to update: give --description, --retain-versions and/or --mirror")
    repository = client.update_repository(
        args.name,
        description=args.description,
        retain_versions=args.retain_versions,
        mirror=mirror,
    )
    out.resource(pb.UpdateRepositoryResponse(repository=repository))
    return 0


def repository_delete(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``repository delete``."""
    client.delete_repository(args.name)
    return _deleted(out, repository_name(args.name), pb.DeleteRepositoryResponse())


# -- remotes ------------------------------------------------------------------------------


def _remote_row(r: pb.Remote) -> list[str]:
    """Table row of a remote."""
    tags = ",".join(r.include_tags) or "*"
    if r.exclude_tags:
        tags += " -" + ",-".join(r.exclude_tags)
    policy = enum_label(pb.Policy.DESCRIPTOR, r.policy)
    return [r.name, r.url, r.upstream_name, policy, tags]


def remote_create(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``remote create``."""
    fields = remote_fields(args)
    url, upstream = fields.pop("url"), fields.pop("upstream_name")
    out.resource(
        pb.CreateRemoteResponse(remote=client.create_remote(args.name, url, upstream, **fields))
    )
    return 0


def remote_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``remote list``."""
    headers = ["NAME", "URL", "UPSTREAM", "POLICY", "TAGS"]
    out.resources(client.iter_remotes(), headers, _remote_row, pb.ListRemotesResponse)
    return 0


def remote_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``remote show``."""
    out.resource(pb.GetRemoteResponse(remote=client.get_remote(args.name)))
    return 0


def remote_update(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``remote update``: the mask names exactly the options given."""
    fields = remote_fields(args)
    if not fields:
        raise UsageError("nothing to update: give at least one remote option")
    out.resource(pb.UpdateRemoteResponse(remote=client.update_remote(args.name, **fields)))
    return 0


def remote_delete(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``remote delete``."""
    client.delete_remote(args.name)
    return _deleted(out, remote_name(args.name), pb.DeleteRemoteResponse())


# -- versions -----------------------------------------------------------------------------


def _version_row(v: pb.Version) -> list[str]:
    """Table row of a version."""
    s = v.content_summary
    return [
        str(v.number),
        format_timestamp(v.create_time),
        short_id(v.base_version) if v.base_version else "-",
        compact_counts(s.added),
        compact_counts(s.removed),
        compact_counts(s.present),
    ]


def version_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``version list``."""
    headers = ["NUMBER", "CREATED", "BASE", "ADDED", "REMOVED", "PRESENT"]
    versions = client.iter_versions(args.repository)
    out.resources(versions, headers, _version_row, pb.ListVersionsResponse)
    return 0


def version_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``version show``: the version with its content summary."""
    out.resource(pb.GetVersionResponse(version=client.get_version(args.repository, args.number)))
    return 0


def version_delete(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``version delete``."""
    client.delete_version(args.repository, args.number)
    return _deleted(out, version_name(args.repository, args.number), pb.DeleteVersionResponse())


def version_rollback(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``version rollback``."""
    return _operation(out, client.rollback_repository(args.repository, args.number))


def _operation(out: Output, response: Any) -> int:
    """The version a content operation made (or the unchanged latest one, said on stderr)."""
    if not response.changed:
        print(f"nothing changed; latest is {response.version.name}", file=sys.stderr)
    # JSON: the response as grpcurl prints it; a table: the version and its summary.
    out.resource(response if out.json else response.version)
    return 0


# -- content ------------------------------------------------------------------------------


def content_copy(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``content copy``."""
    return _operation(out, client.copy_tags(args.source, args.destination, args.tag))


def content_tag(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``content tag``."""
    return _operation(out, client.tag_manifest(args.repository, args.tag, args.digest, args.base))


def content_untag(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``content untag``."""
    return _operation(out, client.untag_manifest(args.repository, args.tag, args.base))


def content_modify(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``content modify``."""
    if not args.add and not args.remove:
        raise UsageError("give --add and/or --remove")
    if args.add and not args.source:
        raise UsageError("--add needs --from (the repository or version to take it from)")
    response = client.modify_content(
        args.repository, add=args.add, source=args.source, remove=args.remove, base=args.base
    )
    return _operation(out, response)


def content_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``content list``."""
    items = client.iter_content(
        args.repository, args.version, content_type=args.type or "", membership=args.membership
    )
    out.resources(items, ["TYPE", "ID", "DETAILS"], content_row, pb.ListContentResponse)
    return 0


def content_diff(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``content diff``: every change, then the summary of added / removed per type."""
    changes: list[pb.ContentChange] = []
    summary = pb.ContentSummary()
    token, seen = "", set()
    while True:
        page = client.diff_versions(
            args.base,
            args.target,
            repository=args.repository,
            content_type=args.type or "",
            page_token=token,
        )
        if not token:
            summary.CopyFrom(page.summary)
        changes.extend(page.changes)
        token = page.next_page_token
        if not token or token in seen:
            break
        seen.add(token)
    if out.json:
        out.message(pb.DiffVersionsResponse(changes=changes, summary=summary))
        return 0
    signs = {pb.CHANGE_KIND_ADDED: "+", pb.CHANGE_KIND_REMOVED: "-"}
    rows = [[signs.get(c.kind, "?"), *content_row(c.content)] for c in changes]
    out.table(["CHANGE", "TYPE", "ID", "DETAILS"], rows)
    out.line()
    out.summary(summary, present=False)
    return 0


# -- distributions ------------------------------------------------------------------------


def _distribution_row(d: pb.Distribution) -> list[str]:
    """Table row of a distribution."""
    serves = d.version or (f"{d.repository} (latest)" if d.repository else "-")
    return [d.name, d.base_path, serves, d.registry_path]


def _version_option(value: list[str] | None) -> str | None:
    """``--version REPO NUMBER`` as a version name."""
    if value is None:
        return None
    repository, number = value
    if not number.isdigit():
        raise UsageError(f"--version needs a version number, not {number!r}")
    return version_name(repository, number)


def distribution_create(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``distribution create``."""
    distribution = client.create_distribution(
        args.name,
        args.base_path,
        repository=args.repository,
        version=_version_option(args.version),
        description=args.description,
        public=args.public,
    )
    out.resource(pb.CreateDistributionResponse(distribution=distribution))
    return 0


def distribution_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``distribution list``."""
    headers = ["NAME", "BASE PATH", "SERVES", "REGISTRY PATH"]
    distributions = client.iter_distributions()
    out.resources(distributions, headers, _distribution_row, pb.ListDistributionsResponse)
    return 0


def distribution_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``distribution show``."""
    out.resource(pb.GetDistributionResponse(distribution=client.get_distribution(args.name)))
    return 0


def distribution_update(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``distribution update``: only the options given are updated."""
    options = (args.base_path, args.repository, args.version, args.description, args.public)
    if all(option is None for option in options):
        raise UsageError(
            "nothing to update: give --base-path, --repository, --version, --description, "
            "--public or --private"
        )
    distribution = client.update_distribution(
        args.name,
        base_path=args.base_path,
        repository=args.repository,
        version=_version_option(args.version),
        description=args.description,
        public=args.public,
    )
    out.resource(pb.UpdateDistributionResponse(distribution=distribution))
    return 0


def distribution_delete(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``distribution delete``."""
    client.delete_distribution(args.name)
    return _deleted(out, distribution_name(args.name), pb.DeleteDistributionResponse())


# -- schedules ----------------------------------------------------------------------------


def _schedule_row(s: pb.Schedule) -> list[str]:
    """Table row of a schedule."""
    if s.cron:
        when = f"cron {s.cron}" + (f" ({s.time_zone})" if s.time_zone else "")
    else:
        when = f"every {s.interval.ToTimedelta()}"
    last = task_state_label(s.last_result) if s.last_task else "-"
    return [
        s.name,
        short_id(s.repository),
        short_id(s.remote),
        when,
        "yes" if s.enabled else "no",
        format_timestamp(s.last_run_time) or "-",
        last,
        format_timestamp(s.next_run_time) or "-",
    ]


def task_state_label(state: int) -> str:
    """A task state number as its short label."""
    return enum_label(pb.TaskState.DESCRIPTOR, state)


def schedule_create(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``schedule create``."""
    if (args.cron is None) == (args.interval is None):
        raise UsageError("give exactly one of --cron or --interval")
    schedule = client.create_schedule(
        args.name,
        args.repository,
        args.remote,
        cron=args.cron,
        interval=args.interval,
        time_zone=args.time_zone or "",
        mirror=args.mirror,
        enabled=not args.disabled,
    )
    out.resource(pb.CreateScheduleResponse(schedule=schedule))
    return 0


def schedule_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``schedule list``."""
    headers = ["NAME", "REPOSITORY", "REMOTE", "WHEN", "ENABLED", "LAST RUN", "RESULT", "NEXT RUN"]
    out.resources(client.iter_schedules(), headers, _schedule_row, pb.ListSchedulesResponse)
    return 0


def schedule_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``schedule show``."""
    out.resource(pb.GetScheduleResponse(schedule=client.get_schedule(args.name)))
    return 0


def schedule_update(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``schedule update``: only the options given are updated."""
    if args.cron is not None and args.interval is not None:
        raise UsageError("give at most one of --cron or --interval")
    fields = {
        "repository": args.repository,
        "remote": args.remote,
        "cron": args.cron,
        "interval": args.interval,
        "time_zone": args.time_zone,
        "mirror": args.mirror,
        "enabled": args.enabled,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        raise UsageError("nothing to update: give at least one schedule option")
    schedule = client.update_schedule(args.name, **given)
    out.resource(pb.UpdateScheduleResponse(schedule=schedule))
    return 0


def schedule_delete(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``schedule delete``."""
    client.delete_schedule(args.name)
    return _deleted(out, schedule_name(args.name), pb.DeleteScheduleResponse())


# -- tasks and syncs ----------------------------------------------------------------------


def _task_row(t: pb.Task) -> list[str]:
    """Table row of a task."""
    parameters = " ".join(f"{k}={t.parameters[k]}" for k in sorted(t.parameters))
    return [t.name, t.kind, task_state(t), format_timestamp(t.create_time), parameters]


def task_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``task list``."""
    reserved = repository_name(args.repository) if args.repository else ""
    tasks = client.iter_tasks(state=args.state or 0, reserved_resource=reserved)
    headers = ["NAME", "KIND", "STATE", "CREATED", "PARAMETERS"]
    out.resources(tasks, headers, _task_row, pb.ListTasksResponse)
    return 0


def task_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``task show``."""
    out.resource(pb.GetTaskResponse(task=client.get_task(args.id)))
    return 0


def task_cancel(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``task cancel``."""
    out.resource(pb.CancelTaskResponse(task=client.cancel_task(args.id)))
    return 0


def task_watch(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``task watch``: follow the task like ``sync`` does."""
    return _follow(client, client.watch_task(args.id), out)


def _warn_mirror_removals(client: MirrorClient, args: Namespace) -> None:
    """Before a ``--mirror`` sync: say that content may go, and how much is at stake."""
    repository = client.get_repository(args.repository)
    if not repository.latest_version_number:
        return
    present = client.get_version(repository.latest_version).content_summary.present
    tags = present.get("container.tag", 0)
    if tags:
        print(
            f"note: --mirror makes the new version of {repository.name} exactly what "
            f"{remote_name(args.remote)} selects upstream; of the {tags} tag(s) in "
            f"{repository.latest_version}, any the upstream no longer lists or the filters "
            "do not select will be removed",
            file=sys.stderr,
        )


def sync(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``sync``: stream the task's progress, or with ``--detach`` print the queued task.

    With ``--dry-run`` the task only plans; the plan is printed as a table at the end (and
    says itself what a mirror sync would remove).
    """
    dry_run = getattr(args, "dry_run", False)
    if args.mirror and not dry_run:
        _warn_mirror_removals(client, args)
    if args.detach:
        task = client.start_sync(
            args.repository, args.remote, args.mirror, args.request_id, dry_run=dry_run
        )
        out.resource(pb.StartSyncResponse(task=task))
        return 0
    stream = client.sync(args.repository, args.remote, args.mirror, args.request_id, dry_run)
    return _follow(client, stream, out)


def gc(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``gc``: garbage collection; prints what was freed."""
    task = client.cleanup_orphans(args.protection_time, args.task_retention)
    if args.detach:
        out.resource(task)
        return 0
    return _follow(client, client.watch_task(task.name), out)


def repair(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``repair``: re-hash a version's blobs and fetch damaged ones again."""
    task = client.repair_version(args.repository, args.number)
    if args.detach:
        out.resource(task)
        return 0
    return _follow(client, client.watch_task(task.name), out)


def _short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits, or ``-`` for none."""
    return digest[:19] if digest else "-"


def print_plan(out: Output, plan: pb.SyncPlan) -> None:
    """A dry run's plan: tag changes as a table, then what would be fetched and committed."""
    rows = [
        [sign, change.name, _short_digest(change.from_digest), _short_digest(change.to_digest)]
        for sign, changes in (
            ("+", plan.tags_added),
            ("~", plan.tags_moved),
            ("-", plan.tags_removed),
        )
        for change in changes
    ]
    if rows:
        out.table(["CHANGE", "TAG", "FROM", "TO"], rows)
    else:
        out.line("tags: no change")
    if plan.tags_truncated:
        out.line(f"... and {plan.tags_truncated} more tag change(s)")
    if plan.tags_removed:
        out.line(f"warning: {len(plan.tags_removed)} tag(s) would be removed (mirror mode)")
    requests = " ".join(f"{k}={plan.upstream_requests[k]}" for k in sorted(plan.upstream_requests))
    out.line()
    out.table(
        ["PLAN", "COUNT"],
        [
            ["tags unchanged", str(plan.tags_unchanged)],
            ["manifests to fetch", f"{plan.manifests_to_fetch} of {plan.manifests_total}"],
            ["blobs to fetch", str(plan.blobs_to_fetch)],
            ["bytes to fetch", str(plan.bytes_to_fetch)],
            ["blobs already stored", str(plan.blobs_stored)],
            ["upstream requests", requests or "-"],
        ],
    )
    out.line()
    if plan.creates_version:
        out.line("a sync would create a new version:")
        out.summary(plan.content_summary)
    else:
        out.line("a sync would create no new version")


class _Recorder:
    """Pass events through, remembering the last task seen (for the interrupt message)."""

    def __init__(self, events: Iterable[TaskEvent]) -> None:
        self.events = events
        self.task: pb.Task | None = None

    def __iter__(self) -> Iterator[TaskEvent]:
        for event in self.events:
            self.task = event.task
            yield event


def _created_version(task: pb.Task) -> str | None:
    """Return the version a task created, if any."""
    return next((name for name in task.created_resources if "/versions/" in name), None)


def _follow(client: MirrorClient, stream: ResponseStream[Any], out: Output) -> int:
    """Follow a task stream to its end, then report the outcome and the version created.

    With ``-o json`` every event is printed as it comes, one JSON object per line, exactly
    as grpcurl encodes the stream. Ctrl-C stops following (the task goes on on the server)
    and says so once; the exit status is then 130.
    """
    recorder = _Recorder(stream)
    try:
        with stream:
            if out.json:
                for event in recorder:
                    out.message(event, compact=True)
                task = recorder.task
            else:
                task = follow_task(recorder, out.console, live=out.tty)
    except KeyboardInterrupt:
        message = "interrupted"
        if recorder.task is not None:
            name = recorder.task.name
            message += (
                f": {name} goes on on the server "
                f"(mirrorctl task watch {short_id(name)} / task cancel {short_id(name)})"
            )
        print(message, file=sys.stderr)
        return 130
    if task is None:
        print("error: the task stream ended without any event", file=sys.stderr)
        return 1
    if task.HasField("sync_plan") and not out.json:
        out.line(f"dry run {task.name}: nothing was written")
        print_plan(out, task.sync_plan)
    elif task.state == pb.TASK_STATE_COMPLETED and not out.json:
        version_name_ = _created_version(task)
        if version_name_ is not None:
            version = client.get_version(version_name_)
            out.line(f"created {version.name}")
            out.summary(version.content_summary)
        elif task.kind == "sync":
            out.line(f"{task.name} completed; no new version was created")
        else:
            # Housekeeping tasks report their results in their stages' messages.
            out.line(f"{task.name} completed")
            for report in task.progress_reports:
                out.line(f"  {report.code}: {report.message}")
    if task.state in (pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED):
        for warning in task.warnings if task.kind != "sync" else ():
            print(f"warning: {warning}", file=sys.stderr)
        detail = task_error_line(task.error) if task.HasField("error") else "no error reported"
        print(f"error: {task.name} {task_state(task)}: {detail}", file=sys.stderr)
        return 1
    if task.state not in _FINAL_STATES:
        print(f"error: the stream ended while {task.name} was {task_state(task)}", file=sys.stderr)
        return 1
    return 0
