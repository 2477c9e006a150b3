"""The pure core of day-to-day operation: platform filters, dry-run previews, schedule
timings, and the settings and log format that switch metrics and JSON logs on."""

from __future__ import annotations

import argparse
import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from client import builders
from client.options import duration
from server import logs
from server.config import parse_settings
from server.domain.digests import Digest
from server.domain.filters import PlatformFilter
from server.domain.manifests import Descriptor
from server.domain.plan import NaturalContent, preview_sync, summary_of_plan
from server.domain.resources import Remote
from server.domain.rules import remote_violations
from server.domain.schedules import Timing, timing_violations
from server.metrics import http_method_label

DIGEST = Digest.parse("sha256:" + "a" * 64)


def child(os_: str, arch: str, variant: str = "") -> Descriptor:
    return Descriptor(
        DIGEST, 1, "application/vnd.oci.image.manifest.v1+json", (), os_, arch, variant
    )


@pytest.mark.parametrize(
    ("specs", "platform", "kept"),
    [
        ((), ("linux", "amd64"), True),
        (("linux/amd64",), ("linux", "amd64"), True),
        (("linux/amd64",), ("linux", "arm64", "v8"), False),
        (("linux/arm64",), ("linux", "arm64", "v8"), True),  # no variant: every variant
        (("linux/arm64/v8",), ("linux", "arm64", "v8"), True),
        (("linux/arm/v7",), ("linux", "arm", "v6"), False),
        (("linux/amd64",), ("unknown", "unknown"), False),  # buildx attestations
        (("linux/amd64",), ("", ""), True),  # no platform: not platform-specific
        (("windows/amd64", "linux/s390x"), ("linux", "s390x"), True),
    ],
)
def test_platform_filter(specs: tuple[str, ...], platform: tuple[str, ...], kept: bool) -> None:
    assert PlatformFilter(specs).wants(child(*platform)) is kept


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("linux/amd64", True),
        ("linux/arm64/v8", True),
        ("linux", False),
        ("Linux/AMD64", False),
        ("linux/arm64/v8/extra", False),
        ("linux//v8", False),
        ("linux/amd 64", False),
    ],
)
def test_platform_specs_are_validated(spec: str, ok: bool) -> None:
    remote = Remote("r", "https://registry.example.com", "lib/app", platforms=(spec,))
    bad = [v.field for v in remote_violations(remote)]
    assert bad == ([] if ok else ["remote.platforms[0]"])


def test_too_many_platforms() -> None:
    remote = Remote("r", "https://r.example.com", "lib/app", platforms=("linux/amd64",) * 33)
    assert [v.field for v in remote_violations(remote)] == ["remote.platforms"]


PRESENT = NaturalContent(
    tags={"keep": "sha256:k", "move": "sha256:m1", "gone": "sha256:g"},
    manifests=frozenset({"sha256:k", "sha256:m1", "sha256:g"}),
    blobs=frozenset({"sha256:b1", "sha256:b2"}),
)
UPSTREAM = NaturalContent(
    tags={"keep": "sha256:k", "move": "sha256:m2", "new": "sha256:n"},
    manifests=frozenset({"sha256:k", "sha256:m2", "sha256:n"}),
    blobs=frozenset({"sha256:b1", "sha256:b3"}),
)


def test_mirror_preview_lists_what_disappears() -> None:
    plan, changes, unchanged = preview_sync(PRESENT, UPSTREAM, mirror=True)
    assert [(c.name, c.to_digest) for c in changes["added"]] == [("new", "sha256:n")]
    assert [(c.name, c.from_digest, c.to_digest) for c in changes["moved"]] == [
        ("move", "sha256:m1", "sha256:m2")
    ]
    assert [(c.name, c.from_digest) for c in changes["removed"]] == [("gone", "sha256:g")]
    assert unchanged == 1
    summary = summary_of_plan(PRESENT.keys()[0], plan)
    assert summary.present == {"container.tag": 3, "container.manifest": 3, "container.blob": 2}
    assert summary.removed == {"container.tag": 2, "container.manifest": 2, "container.blob": 1}
    assert summary.added == {"container.tag": 2, "container.manifest": 2, "container.blob": 1}


def test_additive_preview_keeps_what_upstream_lost() -> None:
    plan, changes, unchanged = preview_sync(PRESENT, UPSTREAM, mirror=False)
    assert changes["removed"] == []
    assert [c.name for c in changes["moved"]] == ["move"]
    assert unchanged == 2  # keep, and gone (kept by an additive sync)
    summary = summary_of_plan(PRESENT.keys()[0], plan)
    assert summary.removed == {"container.tag": 1}  # only the moved tag's old row
    assert plan.changed


def test_unchanged_preview_creates_no_version() -> None:
    plan, changes, unchanged = preview_sync(PRESENT, PRESENT, mirror=True)
    assert not plan.changed and unchanged == 3
    assert changes == {"added": [], "moved": [], "removed": []}


def test_cron_in_a_time_zone_across_daylight_saving() -> None:
    noon = Timing(cron="0 12 * * *", time_zone="Europe/Paris")
    # Noon in Paris is 11:00 UTC in winter (CET) and 10:00 UTC in summer (CEST, from 29 March).
    saturday = noon.next_after(datetime(2026, 3, 28, 9, 0, tzinfo=UTC))
    assert saturday == datetime(2026, 3, 28, 11, 0, tzinfo=UTC)
    sunday = noon.next_after(saturday)
    assert sunday == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert noon.next_after(sunday) == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    assert Timing(cron="0 12 * * *").next_after(sunday) == datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


def test_interval_runs_from_now_so_missed_runs_run_once() -> None:
    timing = Timing(interval=timedelta(minutes=5))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert timing.next_after(now) == now + timedelta(minutes=5)


def test_timing_needs_exactly_one_rhythm() -> None:
    assert [v.field for v in timing_violations(Timing())] == ["schedule.cron"]
    both = Timing(cron="* * * * *", interval=timedelta(minutes=1))
    assert [v.field for v in timing_violations(both)] == ["schedule.cron"]
    assert timing_violations(Timing(cron="*/15 * * * *", time_zone="Europe/Paris")) == []


def test_metrics_and_json_logs_are_off_by_default() -> None:
    settings = parse_settings([], env={})
    assert settings.metrics_address == "" and settings.log_format == "text"
    on = parse_settings([], env={"MIRROR_METRICS_ADDRESS": "127.0.0.1:9100"})
    assert on.metrics_address == "127.0.0.1:9100"
    flag = parse_settings(["--metrics-address", "0.0.0.0:9200", "--log-format", "json"], env={})
    assert (flag.metrics_address, flag.log_format) == ("0.0.0.0:9200", "json")
    for bad in (["--metrics-address", "9100"], ["--log-format", "xml"]):
        with pytest.raises(SystemExit):
            parse_settings(bad, env={})


def test_method_labels_are_bounded() -> None:
    assert http_method_label("GET") == "GET"
    assert http_method_label("BREW") == http_method_label("X" * 1000) == "OTHER"


def test_json_log_lines_carry_the_task() -> None:
    stream = io.StringIO()
    logs.install_record_factory()  # stamps records where they are made, not where written
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = logs.CURRENT_TASK.set("tasks/1234")
        logger.warning("inside %s", "a sync")
        logs.CURRENT_TASK.reset(token)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["task"] == "tasks/1234" and inside["message"] == "inside a sync"
    assert inside["level"] == "WARNING" and inside["logger"] == "test.json"
    assert "task" not in outside


def test_schedule_update_request_masks_exactly_what_is_given() -> None:
    request = builders.update_schedule_request("nightly", interval=90)
    assert request.schedule.name == "schedules/nightly"
    # A new rhythm replaces the other one: both paths are in the mask.
    assert list(request.update_mask.paths) == ["cron", "interval"]
    assert request.schedule.interval.seconds == 90 and request.schedule.cron == ""
    enabled = builders.update_schedule_request("nightly", enabled=False)
    assert list(enabled.update_mask.paths) == ["enabled"] and enabled.schedule.HasField("enabled")
    with pytest.raises(ValueError):
        builders.update_schedule_request("nightly")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("6h", 21600.0)]
)
def test_cli_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "1w"])
def test_bad_cli_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)
