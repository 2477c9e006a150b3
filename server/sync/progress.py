"""Sync stages as progress reports, with stable codes (Pulp style)."""

from __future__ import annotations

from dataclasses import replace

from server.domain.tasks import ProgressReport, ProgressState
from server.tasks.context import TaskContext

LISTING_TAGS = "sync.listing_tags"
RESOLVING_TAGS = "sync.resolving_tags"
FETCHING_MANIFESTS = "sync.fetching_manifests"
DOWNLOADING_BLOBS = "sync.downloading_blobs"
SAVING = "sync.saving"


class Stage:
    """Counters of one stage; every change is reported (the context coalesces).

    `unit` says what `done`/`total` count. A total is set once, when it is known, and never
    grows while the stage runs (clients draw rates and ETAs from it); a stage whose size is
    only known at its end leaves it 0 until `finish`, which then sets it to `done`.
    """

    def __init__(
        self,
        context: TaskContext,
        code: str,
        message: str,
        total: int = 0,
        total_bytes: int = 0,
        *,
        unit: str,
    ) -> None:
        self._context = context
        self.report = ProgressReport(
            code=code, message=message, total=total, total_bytes=total_bytes, unit=unit
        )

    async def start(self) -> Stage:
        await self._context.report(self.report, force=True)
        return self

    async def set(self, **changes: object) -> None:
        self.report = replace(self.report, **changes)  # type: ignore[arg-type]
        await self._context.report(self.report)

    async def advance(self, done: int = 1, done_bytes: int = 0) -> None:
        await self.set(done=self.report.done + done, done_bytes=self.report.done_bytes + done_bytes)

    def add_bytes(self, count: int) -> None:
        """Byte counts from inside a download loop; published with the next report."""
        self.report = replace(self.report, done_bytes=self.report.done_bytes + count)

    async def finish(self, state: ProgressState = ProgressState.COMPLETED) -> None:
        total = self.report.total
        if state is ProgressState.COMPLETED:
            total = max(total, self.report.done)
        self.report = replace(self.report, state=state, total=total)
        await self._context.report(self.report, force=True)
