"""Human and JSON rendering of mirror resources for ``mirrorctl``.

Lists become compact tables (``rich`` tables on a terminal, plain aligned columns
otherwise), single resources ``key: value`` lines, and ``--output json`` the RPC's response
message in the canonical proto3 JSON mapping that grpcurl and ``buf curl`` print (lists
gathered over every page into one List response; streams one event per line). Secrets are
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
    """Return the canonical proto3 JSON form of a message, as :func:`to_json` prints it."""
    return json_format.MessageToDict(message)


def to_json(message: Message, *, compact: bool = False) -> str:
    """The canonical proto3 JSON mapping, byte for byte what grpcurl and ``buf curl`` print.

    lowerCamelCase names, enums by name, 64-bit integers as strings, timestamps in RFC 3339,
    fields at their default value left out; two-space indent, or one line when `compact`.
    """
    return json_format.MessageToJson(message, indent=None if compact else 2)


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


def report_counts(report: pb.ProgressReport) -> str:
    """``12/40 blobs, 3.1 MB/10.0 MB``; ``12 manifests`` while the total is not known."""
    unit = f" {report.unit}" if report.unit else ""
    count = f"{report.done}/{report.total}{unit}" if report.total else f"{report.done}{unit}"
    if report.done_bytes or report.total_bytes:
        size = filesize(report.done_bytes)
        if report.total_bytes:
            size += f"/{filesize(report.total_bytes)}"
        count += f", {size}"
    return count


def progress_line(report: pb.ProgressReport) -> str:
    """Return ``code: 12/40 blobs, 3.1 MB/10.0 MB (state)`` for one progress report."""
    state = enum_label(pb.ProgressState.DESCRIPTOR, report.state)
    return f"{report.code}: {report_counts(report)} ({state})"


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

    def message(self, message: Message, *, compact: bool = False) -> None:
        """Print a message as canonical proto3 JSON (see :func:`to_json`)."""
        print(to_json(message, compact=compact), file=self.stream, flush=compact)

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

    def resource(self, response: Message) -> None:
        """Print a one-resource response: JSON as is, or its resource as ``key: value`` lines
        (plus the content summary of a version)."""
        if self.json:
            self.message(response)
            return
        fields = response.ListFields()
        message = fields[0][1] if len(fields) == 1 else response
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
        response: type[Message],
    ) -> None:
        """Print a list: one ``response`` (a List response) holding every item of every page
        as JSON, or a table with ``row(message)`` per message."""
        items = list(messages)
        if self.json:
            field = next(f for f in response.DESCRIPTOR.fields if f.is_repeated)
            whole = response()
            getattr(whole, field.name).extend(items)
            self.message(whole)
        else:
            self.table(headers, [row(m) for m in items])
