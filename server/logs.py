"""Logging set-up: text or JSON lines, with the running task's name on every record it causes.

The task runner sets `CURRENT_TASK` when a task starts; asyncio copies the context into every
task the sync spawns (TaskGroups, downloads), so a record logged anywhere below carries it
without passing names around. The name is stamped when the record is created (a record
factory), in the thread that logs: handlers run in a listener thread (`QueuedLogging`), where
the task's context is not. JSON lines have fixed keys (`time`, `level`, `logger`,
`message`, and `task`, `exception` when there is one) for log shippers to index.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CURRENT_TASK: ContextVar[str] = ContextVar("mirror_current_task", default="")
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(task_suffix)s: %(message)s"


def stamp(record: logging.LogRecord) -> logging.LogRecord:
    """Add `task` (`tasks/<uuid>` or "") and `task_suffix` (` [tasks/<uuid>]`) to a record."""
    task = CURRENT_TASK.get()
    record.task = task
    record.task_suffix = f" [{task}]" if task else ""
    return record


def install_record_factory() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "stamps_task", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return stamp(previous(*args, **kwargs))

    factory.stamps_task = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


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
    install_record_factory()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
