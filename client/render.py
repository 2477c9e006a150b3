"""Human and JSON rendering of mirror resources for ``mirrorctl``.

Lists become compact tables (``rich`` tables on a terminal, plain aligned columns
otherwise), single resources ``key: value`` lines, and ``--output json`` one JSON document
per command built with ``MessageToDict`` (proto field names, zero values kept). Secrets are
never printed: the server does not return them, and the ``*_set`` flags become
``password: (set)``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any, TextIO

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from rich import box
from rich.console import Console
from rich.filesize import decimal as filesize
from rich.table import Table

from protos import mirror_pb2 as pb

__all__ = [
    "Output",
    "content_row",
    "describe",
    "enum_label",
    "format_timestamp",
    "summary_rows",
    "to_dict",
]

# Write-only secrets and the flag the server returns instead of each.
_SECRET_FLAGS = {
    "password_set": "password",
    "proxy_password_set": "proxy_password",
    "ssl_client_key_set": "ssl_client_key",
}
_SECRETS = frozenset(_SECRET_FLAGS.values())
_PEM_FIELDS = frozenset({"ssl_ca_certificate", "ssl_client_certificate"})
_CONTENT_TYPES = ("container.blob", "container.manifest", "container.tag", "container.signature")


def to_dict(message: Message) -> dict[str, Any]:
    """Return the JSON form of a message, with proto field names."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def format_timestamp(ts: timestamp_pb2.Timestamp) -> str:
    """Return an ISO-8601 UTC time to the second, or ``""`` for an unset timestamp."""
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def enum_label(field_or_enum: FieldDescriptor | Any, number: int) -> str:
    """Return an enum value's short lower-case label: ``POLICY_ON_DEMAND`` -> ``on_demand``."""
    enum = getattr(field_or_enum, "enum_type", None) or field_or_enum
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    prefix = enum.values[0].name.removesuffix("UNSPECIFIED")
    return value.name.removeprefix(prefix).lower()


def task_state(task: pb.Task) -> str:
    """Return a task's state label, e.g. ``running``."""
    return enum_label(pb.TaskState.DESCRIPTOR, task.state)


def _scalar(field: FieldDescriptor, value: Any) -> str:
    """Format one scalar field value."""
    if field.enum_type is not None:
        return enum_label(field, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_map(field: FieldDescriptor) -> bool:
    """Whether a field is a proto map."""
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def task_error_line(error: pb.TaskError) -> str:
    """Return ``CODE REASON: message [k=v ...]`` for a task error."""
    head = " ".join(part for part in (error.code, error.reason) if part)
    line = f"{head}: {' '.join(error.message.split())}" if head else error.message
    if error.metadata:
        line += " [" + " ".join(f"{k}={error.metadata[k]}" for k in sorted(error.metadata)) + "]"
    return line


def progress_line(report: pb.ProgressReport) -> str:
    """Return ``code: done/total items, bytes (state)`` for one progress report."""
    total = str(report.total) if report.total else "?"
    line = f"{report.code}: {report.done}/{total}"
    if report.done_bytes or report.total_bytes:
        total_bytes = filesize(report.total_bytes) if report.total_bytes else "?"
        line += f", {filesize(report.done_bytes)}/{total_bytes}"
    return f"{line} ({enum_label(pb.ProgressState.DESCRIPTOR, report.state)})"


def describe(message: Message) -> list[tuple[str, str | list[str]]]:
    """Return the ``(key, value)`` pairs shown for a single resource.

    Empty fields are left out, secrets never appear, PEM bundles are summarised and a
    ``ContentSummary`` is left to :func:`summary_rows`.
    """
    pairs: list[tuple[str, str | list[str]]] = []
    for field in message.DESCRIPTOR.fields:
        name, value = field.name, getattr(message, field.name)
        if name in _SECRETS:
            continue
        if name in _SECRET_FLAGS:
            if value:
                pairs.append((_SECRET_FLAGS[name], "(set)"))
            continue
        if field.has_presence and field.message_type is None and not message.HasField(name):
            continue
        if _is_map(field):
            if value:
                pairs.append((name, ", ".join(f"{k}={value[k]}" for k in sorted(value))))
        elif field.is_repeated:
            if field.message_type is pb.ProgressReport.DESCRIPTOR:
                lines = [progress_line(report) for report in value]
            else:
                lines = [str(item) for item in value]
            if lines:
                pairs.append((name, lines))
        elif field.message_type is timestamp_pb2.Timestamp.DESCRIPTOR:
            if text := format_timestamp(value):
                pairs.append((name, text))
        elif field.message_type is pb.TaskError.DESCRIPTOR:
            if message.HasField(name):
                pairs.append((name, task_error_line(value)))
        elif field.message_type is not None:
            continue  # content summaries are rendered as a table
        elif name in _PEM_FIELDS:
            if value:
                pairs.append((name, f"(PEM, {len(value.encode())} bytes)"))
        elif value or field.has_presence or field.enum_type is not None:
            pairs.append((name, _scalar(field, value)))
        elif name in {"number", "latest_version_number"}:
            pairs.append((name, "0"))
    return pairs


def summary_rows(summary: pb.ContentSummary) -> list[list[str]]:
    """Return rows ``type, added, removed, present`` over every type seen in the summary."""
    types = sorted(
        set(summary.added) | set(summary.removed) | set(summary.present),
        key=lambda t: (_CONTENT_TYPES.index(t) if t in _CONTENT_TYPES else 99, t),
    )
    return [
        [
            t,
            str(summary.added.get(t, 0)),
            str(summary.removed.get(t, 0)),
            str(summary.present.get(t, 0)),
        ]
        for t in types
    ]


def compact_counts(counts: Any) -> str:
    """Return ``tag=3 manifest=5`` for a per-type count map."""
    items = sorted(
        counts.items(),
        key=lambda kv: (_CONTENT_TYPES.index(kv[0]) if kv[0] in _CONTENT_TYPES else 99, kv[0]),
    )
    return " ".join(f"{t.removeprefix('container.')}={n}" for t, n in items if n) or "-"


def content_row(content: pb.Content) -> list[str]:
    """Return ``type, id, details`` for one content unit."""
    kind = content.WhichOneof("content")
    if kind == "blob":
        b = content.blob
        stored = "" if b.stored else ", not stored"
        return ["container.blob", b.digest, f"{filesize(b.size)}, {b.media_type}{stored}"]
    if kind == "manifest":
        m = content.manifest
        refs = f"{len(m.manifests)} manifests" if m.manifests else f"{len(m.blobs)} blobs"
        return ["container.manifest", m.digest, f"{m.media_type}, {filesize(m.size)}, {refs}"]
    if kind == "tag":
        return ["container.tag", content.tag.name, f"-> {content.tag.manifest_digest}"]
    if kind == "signature":
        s = content.signature
        return ["container.signature", s.name, f"{s.type} of {s.manifest_digest}"]
    return ["?", "", ""]


class Output:
    """Where and how ``mirrorctl`` prints: ``table`` (human) or ``json``.

    Args:
        fmt: ``table`` or ``json``.
        stream: The output stream (stdout by default).
    """

    def __init__(self, fmt: str = "table", stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.json = fmt == "json"
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.console = Console(file=self.stream, highlight=False, soft_wrap=False)

    def line(self, text: str = "") -> None:
        """Print one plain line."""
        print(text, file=self.stream)

    def document(self, doc: Any) -> None:
        """Print one JSON document."""
        print(json.dumps(doc, indent=2, sort_keys=False), file=self.stream)

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """Print a table: ``rich`` on a terminal, aligned plain text otherwise."""
        rows = [list(row) for row in rows]
        if self.tty:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for header in headers:
                table.add_column(header, overflow="fold")
            for row in rows:
                table.add_row(*row)
            self.console.print(table)
            return
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        for row in [list(headers), *rows]:
            self.line("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    def resource(self, message: Message) -> None:
        """Print one resource: JSON, or ``key: value`` lines (plus its content summary)."""
        if self.json:
            self.document(to_dict(message))
            return
        self.pairs(describe(message))
        summary = getattr(message, "content_summary", None)
        if isinstance(summary, pb.ContentSummary):
            self.summary(summary)

    def pairs(self, pairs: Sequence[tuple[str, str | list[str]]]) -> None:
        """Print ``key: value`` lines; list values go on indented lines below their key."""
        for key, value in pairs:
            if isinstance(value, list):
                self.line(f"{key}:")
                for item in value:
                    self.line(f"  - {item}")
            else:
                self.line(f"{key}: {value}")

    def summary(self, summary: pb.ContentSummary, *, present: bool = True) -> None:
        """Print a content summary as a table of added / removed (/ present) per type."""
        rows = summary_rows(summary)
        if not rows:
            self.line("content: (none)")
            return
        if present:
            self.table(["TYPE", "ADDED", "REMOVED", "PRESENT"], rows)
        else:
            self.table(["TYPE", "ADDED", "REMOVED"], [row[:3] for row in rows])

    def resources(
        self,
        messages: Iterable[Message],
        headers: Sequence[str],
        row: Any,
    ) -> None:
        """Print a list: a JSON array, or a table with ``row(message)`` per message."""
        items = list(messages)
        if self.json:
            self.document([to_dict(m) for m in items])
        else:
            self.table(headers, [row(m) for m in items])
