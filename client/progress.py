"""Live display of task events (``mirrorctl sync`` and ``mirrorctl task watch``).

On a terminal every ``ProgressReport`` code gets a ``rich`` progress bar with items done /
total and bytes; elsewhere plain lines are printed, throttled per stage. Warnings and state
changes are printed as they come. Both return the last task snapshot seen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import ClassVar, Protocol

from rich.console import Console, RenderableType
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from protos import mirror_pb2 as pb

from .render import progress_line, task_state

__all__ = ["TaskEvent", "follow_task"]

_PLAIN_INTERVAL = 1.0  # seconds between two plain progress lines of one stage


class TaskEvent(Protocol):
    """The shape shared by ``SyncResponse`` and ``WatchTaskResponse``."""

    kind: int
    task: pb.Task
    warning: str


def follow_task(events: Iterable[TaskEvent], console: Console, *, live: bool) -> pb.Task | None:
    """Consume task events until the stream ends and return the last task snapshot.

    Args:
        events: ``SyncResponse`` or ``WatchTaskResponse`` messages.
        console: Where to print.
        live: Draw ``rich`` progress bars (on a terminal) instead of plain lines.
    """
    if live:
        return _follow_live(events, console)
    return _follow_plain(events, console)


def _warning(event: TaskEvent) -> str | None:
    """Return the warning text of a warning event, or ``None``."""
    if event.kind == pb.TASK_EVENT_KIND_WARNING and event.warning:
        return event.warning
    return None


def _follow_live(events: Iterable[TaskEvent], console: Console) -> pb.Task | None:
    """Follow events with one ``rich`` progress bar per progress-report code."""
    task: pb.Task | None = None
    state = None
    bars: dict[str, TaskID] = {}
    progress = Progress(
        _StageColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        for event in events:
            task = event.task
            if task.state != state:
                state = task.state
                progress.console.print(f"{task.name}: {task_state(task)}")
            if warning := _warning(event):
                progress.console.print(f"[yellow]warning:[/] {warning}", markup=True)
            for report in task.progress_reports:
                _update_bar(progress, bars, report)
    return task


class _StageColumn(SpinnerColumn):
    """A spinner while a stage runs, then a mark for how it ended."""

    _MARKS: ClassVar[dict[int, Text]] = {
        pb.PROGRESS_STATE_COMPLETED: Text("✓", style="green"),
        pb.PROGRESS_STATE_FAILED: Text("✗", style="red"),
        pb.PROGRESS_STATE_SKIPPED: Text("-", style="dim"),
    }

    def render(self, task: Task) -> RenderableType:
        """Render the mark of a finished stage, or the spinner."""
        mark = self._MARKS.get(task.fields.get("state", 0))
        return mark if mark is not None else super().render(task)


def _update_bar(progress: Progress, bars: dict[str, TaskID], report: pb.ProgressReport) -> None:
    """Create or update the bar of one progress report."""
    count = f"{report.done}/{report.total or '?'}"
    size = ""
    if report.done_bytes or report.total_bytes:
        total_bytes = decimal(report.total_bytes) if report.total_bytes else "?"
        size = f"{decimal(report.done_bytes)}/{total_bytes}"
    description = report.message or report.code
    total: float | None = report.total or None
    completed: float = report.done
    if report.state == pb.PROGRESS_STATE_COMPLETED:
        total = completed = max(report.total, report.done, 1)
    elif report.state == pb.PROGRESS_STATE_SKIPPED:
        description, count, total, completed = f"{description} (skipped)", "", 1, 0
    elif report.state == pb.PROGRESS_STATE_FAILED:
        description = f"[red]{description} (failed)[/]"
        total = report.total or max(report.done, 1)
    if report.code not in bars:
        bars[report.code] = progress.add_task(description, total=total, count="", size="", state=0)
    bar = bars[report.code]
    progress.update(
        bar,
        description=description,
        total=total,
        completed=completed,
        count=count,
        size=size,
        state=report.state,
    )
    if report.state in _StageColumn._MARKS:
        progress.stop_task(bar)


def _follow_plain(events: Iterable[TaskEvent], console: Console) -> pb.Task | None:
    """Follow events printing plain lines: state changes, warnings, throttled progress."""
    task: pb.Task | None = None
    state = None
    last: dict[str, tuple[tuple[int, ...], float]] = {}  # code -> (counters, time printed)
    for event in events:
        task = event.task
        if task.state != state:
            state = task.state
            console.print(f"{task.name}: {task_state(task)}", markup=False, highlight=False)
        if warning := _warning(event):
            console.print(f"warning: {warning}", markup=False, highlight=False)
        now = time.monotonic()
        for report in task.progress_reports:
            counters = (report.state, report.done, report.total, report.done_bytes)
            previous = last.get(report.code)
            if previous is not None and (
                previous[0] == counters
                or (previous[0][0] == report.state and now - previous[1] < _PLAIN_INTERVAL)
            ):
                continue
            last[report.code] = (counters, now)
            console.print(progress_line(report), markup=False, highlight=False)
    return task
