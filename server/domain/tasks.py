"""Tasks: durable records of long-running work, their states and progress."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class TaskState(StrEnum):
    """Lifecycle: queued -> running -> completed | failed | canceled."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED)


class ProgressState(StrEnum):
    """State of one stage of a task."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """Counters of one stage, identified by a stable dotted `code`."""

    code: str
    message: str
    done: int = 0
    total: int = 0
    done_bytes: int = 0
    total_bytes: int = 0
    state: ProgressState = ProgressState.RUNNING
    unit: str = ""
    """What `done`/`total` count (`tags`, `manifests`, `blobs`); bytes are always bytes."""


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task failed: a canonical gRPC code name, a reason, a message and metadata."""

    code: str
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Task:
    """A snapshot of a task row."""

    task_id: str
    kind: str
    state: TaskState
    create_time: datetime
    start_time: datetime | None = None
    finish_time: datetime | None = None
    progress: tuple[ProgressReport, ...] = ()
    error: TaskError | None = None
    created_resources: tuple[str, ...] = ()
    reserved_resources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    cancel_requested: bool = False

    @property
    def name(self) -> str:
        return f"tasks/{self.task_id}"

    def with_progress(self, report: ProgressReport) -> Task:
        """A copy with `report` replacing the stage of the same code (or appended)."""
        reports = [r for r in self.progress if r.code != report.code]
        index = next((i for i, r in enumerate(self.progress) if r.code == report.code), None)
        if index is None:
            reports.append(report)
        else:
            reports.insert(index, report)
        return replace(self, progress=tuple(reports))
