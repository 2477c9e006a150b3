"""Schedule rows <-> domain `Schedule`, and firing due schedules exactly once.

Firing is a compare-and-set on `next_run_time`: every process looks for due schedules, and
the one whose UPDATE still finds the `next_run_time` it read moves it forward and queues the
sync in the same transaction. The others' UPDATEs match no row, so a run is queued once
however many processes share the database; a crash between the two writes loses nothing,
because there is no between.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update

from server.domain.errors import AlreadyExists, NotFound
from server.domain.schedules import Schedule, Timing
from server.domain.syncs import SYNC_KIND, SyncParameters
from server.domain.tasks import TaskState
from server.store.common import integrity_as, split_page
from server.store.db import Database
from server.store.repositories import not_found as repository_not_found
from server.store.schema import RemoteRow, RepositoryRow, ScheduleRow, TaskRow, utcnow
from server.store.tasks import new_task_row

log = logging.getLogger(__name__)

DUE_BATCH = 20


def not_found(schedule_id: str) -> NotFound:
    return NotFound(
        f"schedule {schedule_id!r} not found",
        reason="SCHEDULE_NOT_FOUND",
        schedule=f"schedules/{schedule_id}",
    )


def _remote_not_found(remote_id: str) -> NotFound:
    return NotFound(
        f"remote {remote_id!r} not found", reason="REMOTE_NOT_FOUND", remote=f"remotes/{remote_id}"
    )


def _timing(row: ScheduleRow) -> Timing:
    interval = timedelta(seconds=row.interval_seconds) if row.interval_seconds else None
    return Timing(cron=row.cron, interval=interval, time_zone=row.time_zone)


def _to_domain(row: ScheduleRow, repository: str, remote: str, last: str | None) -> Schedule:
    return Schedule(
        schedule_id=row.name,
        uid=row.uid,
        repository_id=repository,
        remote_id=remote,
        timing=_timing(row),
        mirror=row.mirror,
        enabled=row.enabled,
        next_run_time=row.next_run_time,
        last_run_time=row.last_run_time,
        last_task_id=row.last_task_uid,
        last_result=TaskState(last) if last else None,
        skipped_runs=row.skipped_runs,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def _joined():  # type: ignore[no-untyped-def]
    """Schedules with their repository and remote names and the state of their last task."""
    return (
        select(ScheduleRow, RepositoryRow.name, RemoteRow.name, TaskRow.state)
        .join(RepositoryRow, RepositoryRow.id == ScheduleRow.repository_id)
        .join(RemoteRow, RemoteRow.id == ScheduleRow.remote_id)
        .outerjoin(TaskRow, TaskRow.uid == ScheduleRow.last_task_uid)
    )


class ScheduleStore:
    """Create, read, update, delete and fire schedules."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _pks(self, session, repository_id: str, remote_id: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        repo = await session.scalar(
            select(RepositoryRow.id).where(RepositoryRow.name == repository_id)
        )
        if repo is None:
            raise repository_not_found(repository_id)
        remote = await session.scalar(select(RemoteRow.id).where(RemoteRow.name == remote_id))
        if remote is None:
            raise _remote_not_found(remote_id)
        return repo, remote

    @staticmethod
    def _write(row: ScheduleRow, schedule: Schedule, now: datetime) -> None:
        timing = schedule.timing
        row.mirror = schedule.mirror
        row.cron = timing.cron
        row.interval_seconds = int(timing.interval.total_seconds()) if timing.interval else 0
        row.time_zone = timing.time_zone
        row.enabled = schedule.enabled
        row.next_run_time = timing.next_after(now) if schedule.enabled else None
        row.update_time = now

    async def create(self, schedule: Schedule) -> Schedule:
        now = utcnow()
        exists = AlreadyExists(
            f"schedule {schedule.schedule_id!r} already exists",
            reason="SCHEDULE_EXISTS",
            schedule=schedule.name,
        )
        with integrity_as(exists):
            async with self._db.session() as session, session.begin():
                repo, remote = await self._pks(session, schedule.repository_id, schedule.remote_id)
                row = ScheduleRow(
                    uid=str(uuid.uuid4()),
                    name=schedule.schedule_id,
                    repository_id=repo,
                    remote_id=remote,
                    last_task_uid="",
                    skipped_runs=0,
                    create_time=now,
                )
                self._write(row, schedule, now)
                session.add(row)
        return await self.get(schedule.schedule_id)

    async def get(self, schedule_id: str) -> Schedule:
        async with self._db.session() as session:
            found = (
                await session.execute(_joined().where(ScheduleRow.name == schedule_id))
            ).first()
        if found is None:
            raise not_found(schedule_id)
        return _to_domain(*found)

    async def list(self, size: int, after: str | None) -> tuple[list[Schedule], bool]:
        query = _joined().order_by(ScheduleRow.name).limit(size + 1)
        if after is not None:
            query = query.where(ScheduleRow.name > after)
        async with self._db.session() as session:
            rows = list((await session.execute(query)).all())
        page, more = split_page(rows, size)
        return [_to_domain(*r) for r in page], more

    async def replace(self, schedule: Schedule, *, retime: bool) -> Schedule:
        """Store `schedule` (merged and validated); `retime` recomputes the next run."""
        async with self._db.session() as session, session.begin():
            row = await session.scalar(
                select(ScheduleRow)
                .where(ScheduleRow.name == schedule.schedule_id)
                .with_for_update()
            )
            if row is None:
                raise not_found(schedule.schedule_id)
            row.repository_id, row.remote_id = await self._pks(
                session, schedule.repository_id, schedule.remote_id
            )
            previous_next = row.next_run_time
            self._write(row, schedule, utcnow())
            if not retime and schedule.enabled and previous_next is not None:
                row.next_run_time = previous_next
        return await self.get(schedule.schedule_id)

    async def delete(self, schedule_id: str) -> None:
        async with self._db.session() as session, session.begin():
            row = await session.scalar(select(ScheduleRow).where(ScheduleRow.name == schedule_id))
            if row is None:
                raise not_found(schedule_id)
            await session.delete(row)

    async def wait_available(self) -> None:
        """Return once the database answers again (at once when it does)."""
        await self._db.availability.wait_up()

    async def fire_due(self, now: datetime) -> list[str]:
        """Queue a sync for every due schedule this process wins -> the new task names."""
        async with self._db.session() as session:
            due = (
                await session.execute(
                    _joined()
                    .where(ScheduleRow.enabled.is_(True), ScheduleRow.next_run_time <= now)
                    .order_by(ScheduleRow.next_run_time)
                    .limit(DUE_BATCH)
                )
            ).all()
        queued = []
        for row, repository, remote, last in due:
            schedule = _to_domain(row, repository, remote, last)
            task = await self._fire(schedule, now)
            if task:
                queued.append(task)
        return queued

    async def _fire(self, schedule: Schedule, now: datetime) -> str | None:
        try:
            following = schedule.timing.next_after(now)
        except Exception:  # a time zone removed from the system since creation, say
            log.exception("%s cannot compute its next run; disabling it", schedule.name)
            following = None
        async with self._db.session() as session, session.begin():
            won = await session.execute(
                update(ScheduleRow)
                .where(
                    ScheduleRow.name == schedule.schedule_id,
                    ScheduleRow.enabled.is_(True),
                    ScheduleRow.next_run_time == schedule.next_run_time,
                )
                .values(
                    next_run_time=following,
                    enabled=following is not None,
                    last_run_time=now,
                )
            )
            if won.rowcount != 1:
                return None  # another process fired it, or it was changed meanwhile
            if schedule.last_result is TaskState.QUEUED:
                # The previous run still waits (behind a long sync): one queued run is enough.
                await session.execute(
                    update(ScheduleRow)
                    .where(ScheduleRow.name == schedule.schedule_id)
                    .values(skipped_runs=ScheduleRow.skipped_runs + 1)
                )
                log.info("%s: previous run still queued; this run is skipped", schedule.name)
                return None
            assert schedule.next_run_time is not None
            params = SyncParameters(
                schedule.repository_id,
                schedule.remote_id,
                schedule.mirror,
                schedule=schedule.name,
                scheduled_time=schedule.next_run_time.isoformat(),
            )
            task = new_task_row(SYNC_KIND, params.resource, params.to_parameters())
            session.add(task)
            await session.execute(
                update(ScheduleRow)
                .where(ScheduleRow.name == schedule.schedule_id)
                .values(last_task_uid=task.uid)
            )
        log.info("%s queued tasks/%s", schedule.name, task.uid)
        return f"tasks/{task.uid}"


def merge(current: Schedule, update_: Schedule, paths: list[str]) -> Schedule:
    """`current` with the fields named in `paths` taken from `update_`."""
    timing = current.timing
    if "cron" in paths or "interval" in paths:
        # The two are alternatives: setting one clears the other.
        timing = replace(timing, cron=update_.timing.cron, interval=update_.timing.interval)
    if "time_zone" in paths:
        timing = replace(timing, time_zone=update_.timing.time_zone)
    fields = {p: getattr(update_, _FIELD[p]) for p in paths if p in _FIELD}
    return replace(current, timing=timing, **fields)


# Mask path -> domain field, for the fields that are not part of the timing.
_FIELD = {
    "repository": "repository_id",
    "remote": "remote_id",
    "mirror": "mirror",
    "enabled": "enabled",
}
