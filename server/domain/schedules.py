"""Schedules: recurring syncs of a repository from a remote, and when they run next.

A schedule has a five-field cron expression read in an IANA time zone (parsed by `croniter`,
daylight-saving changes included) or a fixed interval. Its next run is always computed from
*now* when it fires: after downtime a schedule that missed ten runs runs once, then resumes
its rhythm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from server.domain.errors import FieldViolation, InvalidArgument, Rule
from server.domain.tasks import TaskState

MIN_INTERVAL = timedelta(seconds=2)
MAX_INTERVAL = timedelta(days=366)
MAX_CRON_LENGTH = 255
# IANA names (`Europe/Paris`, `Etc/GMT+5`): no dots, so no path tricks reach zoneinfo.
_TIME_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule runs: a cron expression in a time zone, or an interval."""

    cron: str = ""
    interval: timedelta | None = None
    time_zone: str = ""

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone or "UTC")

    def next_after(self, now: datetime) -> datetime:
        """The first run time strictly after `now` (aware, UTC)."""
        if self.interval is not None:
            return now + self.interval
        local = now.astimezone(self.zone())
        found = croniter(self.cron, local).get_next(datetime)
        return found.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A recurring sync and what its runs did."""

    schedule_id: str
    repository_id: str
    remote_id: str
    timing: Timing
    mirror: bool = False
    enabled: bool = True
    uid: str = ""
    next_run_time: datetime | None = None
    last_run_time: datetime | None = None
    last_task_id: str = ""
    last_result: TaskState | None = None
    skipped_runs: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"schedules/{self.schedule_id}"


def timing_violations(timing: Timing, prefix: str = "schedule") -> list[FieldViolation]:
    """Every rule a timing breaks; empty when it is valid."""
    bad: list[FieldViolation] = []
    if not timing.cron and timing.interval is None:
        return [
            FieldViolation(f"{prefix}.cron", "set one of cron or interval", Rule.REQUIRED_FIELD)
        ]
    if timing.cron and timing.interval is not None:
        return [
            FieldViolation(
                f"{prefix}.cron", "set cron or interval, not both", Rule.INCOMPATIBLE_FIELDS
            )
        ]
    if timing.time_zone:
        try:
            if not _TIME_ZONE.fullmatch(timing.time_zone):
                raise ValueError(timing.time_zone)
            timing.zone()
        except (ZoneInfoNotFoundError, ValueError):
            bad.append(
                FieldViolation(
                    f"{prefix}.time_zone",
                    f"{timing.time_zone[:64]!r} is not an IANA time zone, e.g. Europe/Paris",
                )
            )
    if timing.interval is not None:
        if not MIN_INTERVAL <= timing.interval <= MAX_INTERVAL:
            bad.append(
                FieldViolation(
                    f"{prefix}.interval",
                    f"must be between {int(MIN_INTERVAL.total_seconds())} seconds and "
                    f"{MAX_INTERVAL.days} days, got {timing.interval.total_seconds():g}s",
                    Rule.OUT_OF_RANGE,
                )
            )
        return bad
    cron = timing.cron
    if len(cron) > MAX_CRON_LENGTH or len(cron.split()) != 5 or not croniter.is_valid(cron):
        bad.append(
            FieldViolation(
                f"{prefix}.cron",
                f"{cron[:80]!r} is not a five-field cron expression, e.g. '*/15 * * * *'",
            )
        )
    elif not bad:
        try:
            timing.next_after(datetime.now(UTC))
        except CroniterBadDateError:
            bad.append(FieldViolation(f"{prefix}.cron", f"{cron!r} never fires"))
    return bad


def validate_timing(timing: Timing, prefix: str = "schedule") -> Timing:
    """Return `timing` or raise InvalidArgument listing every violation."""
    if bad := timing_violations(timing, prefix):
        raise InvalidArgument.of(bad)
    return timing
