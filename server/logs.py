"""Logging set-up: text or JSON lines, with the running task's name on every record it causes.

The task runner sets `CURRENT_TASK` when a task starts; asyncio copies the context into every
task the sync spawns (TaskGroups, downloads), so a record logged anywhere below carries it
without passing names around. JSON lines have fixed keys (`time`, `level`, `logger`,
`message`, and `task`, `exception` when there is one) for log shippers to index.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

CURRENT_TASK: ContextVar[str] = ContextVar("mirror_current_task", default="")
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(task_suffix)s: %(message)s"


class TaskNameFilter(logging.Filter):
    """Adds `task` (`tasks/<uuid>` or "") and `task_suffix` (` [tasks/<uuid>]`) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = CURRENT_TASK.get()
        record.task = task
        record.task_suffix = f" [{task}]" if task else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if task := getattr(record, "task", ""):
            doc["task"] = task
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    """Send every record to stderr in `fmt` (`text` or `json`) at `level` and above."""
    handler = logging.StreamHandler()
    handler.addFilter(TaskNameFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
