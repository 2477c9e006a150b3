"""How a blob answer treats the client's `Range` header (RFC 9110 section 14).

aiohttp's `FileResponse` answers `bytes=-0` with the whole file (206) and multi-range or
malformed headers with 416. RFC 9110 says otherwise: a server MAY ignore a Range header it
does not support or cannot parse (14.2: "a server MAY ignore the Range header field"), so
multi-range and malformed values get the whole representation (200), while a syntactically
valid single range that selects nothing (a zero suffix, 14.1.1) is unsatisfiable (416).
"""

from __future__ import annotations

import re
from enum import StrEnum

# One byte range, exactly as aiohttp's `Request.http_range` parses it (the unit is
# case-insensitive, RFC 9110 14.1); anything else is not a range we serve.
_SINGLE = re.compile(r"bytes=(?:([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19}))", re.IGNORECASE)


class RangeKind(StrEnum):
    NONE = "none"  # no Range header: serve the whole blob
    IGNORE = "ignore"  # multi-range or malformed: serve the whole blob, 200
    UNSATISFIABLE = "unsatisfiable"  # a valid range that can select nothing: 416
    SINGLE = "single"  # one valid byte range: let FileResponse answer 206 (or 416 past the end)


def classify_range(header: str | None) -> RangeKind:
    """What to do with `header` (the raw `Range` value, or None)."""
    if header is None:
        return RangeKind.NONE
    match = _SINGLE.fullmatch(header)
    if match is None:
        return RangeKind.IGNORE  # other units, several ranges, garbage
    first, last, suffix = match.groups()
    if suffix is not None:
        return RangeKind.UNSATISFIABLE if int(suffix) == 0 else RangeKind.SINGLE
    if last and int(last) < int(first):
        return RangeKind.IGNORE  # an invalid range-spec makes the whole set invalid
    return RangeKind.SINGLE
