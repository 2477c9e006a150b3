"""Live display of task events (``mirrorctl sync`` and ``mirrorctl task watch``).

On a terminal every stage (``ProgressReport`` code) gets a ``rich`` progress bar: items done
of a total in the stage's unit (``12/40 blobs``), and for downloads the bytes with a transfer
rate and an ETA (the bar itself then measures bytes). A stage whose total is not known yet
(the server states it once, and never changes it mid-stage) shows a running count.

Without a terminal (a pipe, a CI log) it prints plain lines, one per event that carries
something new: the task state, a warning, or the stages whose counters moved. Both return
the last task snapshot seen.
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
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from protos import mirror_pb2 as pb

from .render import enum_label, report_counts, task_state

__all__ = ["TaskEvent", "follow_task"]


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
    return _follow_lines(events, console)


def _warning(event: TaskEvent) -> str | None:
    """Return the warning text of a warning event, or ``None``."""
    if event.kind == pb.TASK_EVENT_KIND_WARNING and event.warning:
        return event.warning
    return None


# -- terminal -----------------------------------------------------------------------------


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


class _RateColumn(ProgressColumn):
    """Bytes per second on a download bar (``4.2 MB/s``), items per second elsewhere."""

    def render(self, task: Task) -> Text:
        """Render the rate rich measured over its recent samples."""
        if task.finished or task.speed is None:
            return Text("")
        if task.fields.get("in_bytes"):
            return Text(f"{decimal(int(task.speed))}/s", style="progress.data.speed")
        unit = task.fields.get("unit") or "items"
        return Text(f"{task.speed:.0f} {unit}/s", style="progress.data.speed")


def _follow_live(events: Iterable[TaskEvent], console: Console) -> pb.Task | None:
    """Follow events with one ``rich`` progress bar per stage."""
    task: pb.Task | None = None
    state = None
    bars: dict[str, TaskID] = {}
    progress = Progress(
        _StageColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        _RateColumn(),
        TimeRemainingColumn(),
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


def _update_bar(progress: Progress, bars: dict[str, TaskID], report: pb.ProgressReport) -> None:
    """Create or update the bar of one stage.

    A download bar measures bytes (so rich's rate and ETA are in bytes); other bars count
    items. A total the server has not stated yet leaves the bar indeterminate (pulsing).
    """
    in_bytes = report.total_bytes > 0
    total: float | None = (report.total_bytes if in_bytes else report.total) or None
    completed: float = report.done_bytes if in_bytes else report.done
    description = report.message or report.code
    counts = report_counts(report)
    if report.state == pb.PROGRESS_STATE_COMPLETED:
        total = completed = max(total or 0, completed, 1)
    elif report.state == pb.PROGRESS_STATE_SKIPPED:
        description, counts, total, completed = f"{description} (skipped)", "", 1, 0
    elif report.state == pb.PROGRESS_STATE_FAILED:
        description = f"[red]{description} (failed)[/]"
    if report.code not in bars:
        bars[report.code] = progress.add_task(
            description, total=total, counts="", state=0, in_bytes=in_bytes, unit=report.unit
        )
    bar = bars[report.code]
    progress.update(
        bar,
        description=description,
        total=total,
        completed=completed,
        counts=counts,
        state=report.state,
        in_bytes=in_bytes,
        unit=report.unit,
    )
    if report.state in _StageColumn._MARKS:
        progress.stop_task(bar)


# -- lines --------------------------------------------------------------------------------


def _stage_text(report: pb.ProgressReport, rate: float | None) -> str:
    """``sync.downloading_blobs 12/40 blobs, 3.1 MB/10.0 MB, 4.2 MB/s (running)``."""
    text = f"{report.code} {report_counts(report)}"
    if rate and report.state == pb.PROGRESS_STATE_RUNNING:
        text += f", {decimal(int(rate))}/s"
    return f"{text} ({enum_label(pb.ProgressState.DESCRIPTOR, report.state)})"


def _follow_lines(events: Iterable[TaskEvent], console: Console) -> pb.Task | None:
    """Follow events printing one plain line per event that carries news.

    A line is ``<task> <state>[: <stage> <counts> (<stage state>)[; ...]]``, or
    ``warning: <text>``; an event that changes nothing prints nothing. The download rate
    is measured between two lines of that stage.
    """
    task: pb.Task | None = None
    state = None
    seen: dict[str, tuple[int, ...]] = {}
    bytes_seen: dict[str, tuple[int, float]] = {}  # code -> (done_bytes, monotonic time)

    def emit(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    for event in events:
        task = event.task
        if warning := _warning(event):
            emit(f"warning: {warning}")
        changed: list[str] = []
        now = time.monotonic()
        for report in task.progress_reports:
            counters = (report.state, report.done, report.total, report.done_bytes)
            if seen.get(report.code) == counters:
                continue
            seen[report.code] = counters
            rate = None
            if report.code in bytes_seen:
                before, then = bytes_seen[report.code]
                if now > then and report.done_bytes > before:
                    rate = (report.done_bytes - before) / (now - then)
            if report.done_bytes:
                bytes_seen[report.code] = (report.done_bytes, now)
            changed.append(_stage_text(report, rate))
        if task.state != state or changed:
            state = task.state
            line = f"{task.name} {task_state(task)}"
            emit(f"{line}: {'; '.join(changed)}" if changed else line)
    return task
