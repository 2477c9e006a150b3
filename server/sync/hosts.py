"""Per-upstream-host backoff shared by every sync, and a per-sync request rate limit.

When a host says 429/503 with Retry-After, every sync talking to it waits (regclient's idea):
hammering a rate-limited registry from several syncs only extends the ban.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

MAX_BACKOFF = 300.0  # never believe a Retry-After longer than this


@dataclass
class _HostState:
    blocked_until: float = 0.0


class Hosts:
    """Backoff state by host, for the whole process."""

    def __init__(self) -> None:
        self._hosts: dict[str, _HostState] = {}

    def _state(self, host: str) -> _HostState:
        return self._hosts.setdefault(host, _HostState())

    async def wait_ready(self, host: str) -> None:
        """Sleep while the host asked us to back off."""
        delay = self._state(host).blocked_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def back_off(self, host: str, seconds: float) -> None:
        """Hold every request to `host` for `seconds` (capped)."""
        state = self._state(host)
        until = time.monotonic() + min(max(seconds, 0.0), MAX_BACKOFF)
        state.blocked_until = max(state.blocked_until, until)


class RateLimiter:
    """Spaces request starts to at most `per_second` (0 = unlimited)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,6})?", value):  # RFC 9110 delta-seconds (+ fractions)
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
