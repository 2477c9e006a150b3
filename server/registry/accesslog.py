"""One access-log line per registry request, cheap on the event loop.

aiohttp's default `AccessLogger` interprets its format string for every request and builds an
`extra` dict; at thousands of requests a second that is a visible share of the loop's time.
This logger writes the same line (`%a "%r" %s %b %Tfs "%{User-Agent}i"`) with one lazy
`%`-format: the record carries the values and the text is built where the record is written,
which `server.__main__` puts in a listener thread (see `QueuedLogging`), so neither formatting
nor the write to stderr runs on the loop.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

_LINE = '%s "%s %s HTTP/%d.%d" %d %d %.6fs "%s"'


class RegistryAccessLogger(AbstractAccessLogger):
    """`remote "METHOD path HTTP/x.y" status body-bytes seconds "user agent"`."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        self.logger.info(
            _LINE,
            request.remote or "-",
            request.method,
            request.path_qs,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )


class _Handoff(logging.handlers.QueueHandler):
    """Hands records to the listener thread unformatted: they are only ever read in this
    process (no pickling), so the formatting can happen on the listener's side too. Records
    with an exception are prepared as usual (the traceback is rendered now, while it exists)."""

    def prepare(self, record: logging.LogRecord) -> Any:
        return super().prepare(record) if record.exc_info else record


class QueuedLogging:
    """Root handlers moved behind a queue and a listener thread for the life of the block."""

    def __init__(self) -> None:
        self._listener: logging.handlers.QueueListener | None = None
        self._moved: list[logging.Handler] = []

    def __enter__(self) -> QueuedLogging:
        root = logging.getLogger()
        self._moved = list(root.handlers)
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        for handler in self._moved:
            root.removeHandler(handler)
        root.addHandler(_Handoff(records))
        self._listener = logging.handlers.QueueListener(
            records, *self._moved, respect_handler_level=True
        )
        self._listener.start()
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        if self._listener is not None:
            self._listener.stop()  # writes what is still queued
        for handler in list(root.handlers):
            if isinstance(handler, _Handoff):
                root.removeHandler(handler)
        for handler in self._moved:
            root.addHandler(handler)
