"""Update masks (AIP-134/161): which mutable fields an Update call replaces."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from server.domain.errors import FieldViolation, InvalidArgument, Rule


def resolve_mask(
    mask: FieldMask,
    message: Message,
    *,
    mutable: tuple[str, ...],
    output_only: tuple[str, ...],
    field: str = "update_mask",
) -> list[str]:
    """The mutable field paths to apply.

    An empty mask means every populated field; `*` means every mutable field. Unknown paths
    and immutable ones are INVALID_ARGUMENT; output-only paths are ignored (AIP-161).
    """
    descriptor: Descriptor = message.DESCRIPTOR
    if not mask.paths:
        populated = [f.name for f, _ in message.ListFields()]
        return [p for p in populated if p in mutable]
    if list(mask.paths) == ["*"]:
        return list(mutable)
    bad: list[FieldViolation] = []
    paths: list[str] = []
    for path in mask.paths:
        if path in output_only:
            continue
        if path not in descriptor.fields_by_name:
            bad.append(FieldViolation(field, f"unknown field {path!r}", Rule.INVALID_FIELD_MASK))
        elif path not in mutable:
            bad.append(
                FieldViolation(field, f"field {path!r} cannot be updated", Rule.INVALID_FIELD_MASK)
            )
        elif path not in paths:
            paths.append(path)
    if bad:
        raise InvalidArgument.of(bad)
    return paths
