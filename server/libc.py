"""C library functions the standard library does not expose, through ctypes.

`function(name)` is the function of that name in the process's C library on Linux, or None
where there is none (another OS, a C library without it): callers treat None as "skip this
optimisation". Looked up once per name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any


@functools.cache
def function(name: str) -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        return getattr(ctypes.CDLL(path, use_errno=True), name)
    except (OSError, AttributeError):
        return None
