"""The pure pieces of housekeeping and outage handling: durations, worker liveness, which
driver errors mean "database unreachable", and the rate-limited log."""

from __future__ import annotations

import errno
import logging
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import exc as sa_errors

from client.options import duration
from server.config import parse_duration, parse_settings
from server.store.availability import is_unreachable
from server.tasks.liveness import is_dead_here, new_worker_id
from server.throttled_log import ThrottledLog


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("30d", 2592000),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "soon", "1w", "nan", "inf", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_settings_take_durations_from_flags_and_variables() -> None:
    settings = parse_settings(["--task-retention", "7d"], {"MIRROR_ORPHAN_PROTECTION_TIME": "15m"})
    assert (settings.orphan_protection_time, settings.task_retention) == (900, 7 * 86400)
    assert parse_settings([], {}).orphan_protection_time == 3600
    with pytest.raises(SystemExit):
        parse_settings(["--orphan-protection-time", "later"], {})


def test_a_dead_process_on_this_host_is_known_dead() -> None:
    me = new_worker_id()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, _pid, namespace, suffix = me.rsplit(":", 3)
    dead = f"{host}:{child.pid}:{namespace}:{suffix}"
    assert is_dead_here(dead, me)
    assert not is_dead_here(me, me)
    # This process under another runner's id (two runners in one test process) is alive.
    assert not is_dead_here(f"{host}:{_pid}:{namespace}:otherone", me)
    # Another host or PID namespace: only its heartbeat can tell.
    assert not is_dead_here(f"elsewhere:{child.pid}:{namespace}:{suffix}", me)
    assert not is_dead_here(f"{host}:{child.pid}:1:{suffix}", me)
    assert not is_dead_here("old-style-id", me)


def test_which_errors_mean_the_database_is_unreachable() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
    assert is_unreachable(refused)
    wrapped = sa_errors.OperationalError("SELECT 1", {}, refused)
    assert is_unreachable(wrapped)
    assert is_unreachable(sqlite3.OperationalError("unable to open database file"))
    assert is_unreachable(OSError(errno.EHOSTUNREACH, "No route to host"))
    # A statement's own failure, or a full disk, is not an outage of the database.
    assert not is_unreachable(sqlite3.OperationalError("no such table: blobs"))
    assert not is_unreachable(sa_errors.IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_unreachable(OSError(errno.ENOSPC, "No space left on device"))


def test_throttled_log_reports_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.throttled")
    throttled = ThrottledLog(logger, interval=3600)
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        assert throttled.log("db", logging.WARNING, "down: %s", "refused")
        for _ in range(500):
            assert not throttled.log("db", logging.WARNING, "down: %s", "refused")
        assert throttled.log("other", logging.WARNING, "another kind")
    assert [r.getMessage() for r in caplog.records] == ["down: refused", "another kind"]
    throttled = ThrottledLog(logger, interval=0)
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        caplog.clear()
        throttled.log("db", logging.WARNING, "first")
        throttled.log("db", logging.WARNING, "second")
    assert [r.getMessage() for r in caplog.records] == ["first", "second"]
