"""Logging for failures that repeat: one line per interval per kind, with a count.

An outage (database down, disk full) makes every loop and every call fail the same way; a
traceback per failure buried the one useful line under thousands (6,011 lines for a 12 s
database outage). Each kind of failure is logged once, then at most once per `interval`
with the number of repeats in between.
"""

from __future__ import annotations

import logging
import time


class ThrottledLog:
    """Rate-limits records by a caller-chosen key."""

    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, tuple[float, int]] = {}  # key -> (last logged, suppressed since)

    def log(self, key: str, level: int, message: str, *args: object, **kwargs: object) -> bool:
        """Log unless `key` was logged less than `interval` ago; True when it was logged."""
        now = time.monotonic()
        last, suppressed = self._last.get(key, (float("-inf"), 0))
        if now - last < self._interval:
            self._last[key] = (last, suppressed + 1)
            return False
        if suppressed:
            message = f"{message} ({suppressed} more since the last report)"
        self._last[key] = (now, 0)
        self._logger.log(level, message, *args, **kwargs)  # type: ignore[arg-type]
        return True
