"""Generate the blocking client (client/sync_client.py) from the asyncio one (client/client.py).

The asyncio client is the one source of truth for the RPC wrappers; this script derives the
blocking twin with `unasync` (the token rewriter httpcore uses for the same job): `async`
and `await` are dropped, `__aenter__`/`__anext__`/`AsyncIterator`/... become their blocking
names, and the names below map the asyncio transport onto the blocking one
(client/transport.py holds both). The module docstring is replaced by one that says where
the file comes from.

    python scripts/unasync_client.py          # rewrite client/sync_client.py
    python scripts/unasync_client.py --check  # exit 1 when the committed file has drifted

`make sync-client` runs the first, `make lint` the second, and so does a unit test.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

import tokenize_rt
import unasync

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "client" / "client.py"
TARGET = ROOT / "client" / "sync_client.py"

# asyncio name -> blocking name, beyond unasync's own table.
REPLACEMENTS = {
    "AsyncMirrorClient": "MirrorClient",
    "AsyncResponseStream": "ResponseStream",
    "AioChannel": "Channel",
    "open_aio_channel": "open_channel",
}

HEADER = '''"""The blocking client of the mirror service, :class:`MirrorClient` (``mirrorctl``'s).

GENERATED from ``client/client.py`` by ``scripts/unasync_client.py`` (``make sync-client``);
do not edit: change the asyncio client and regenerate. Every method is the blocking twin of
the :class:`~client.client.AsyncMirrorClient` method of the same name.
"""
'''


def generate(source: str) -> str:
    """The blocking module for the asyncio module `source`."""
    rule = unasync.Rule("client.py", "sync_client.py", additional_replacements=REPLACEMENTS)
    tokens = list(rule._unasync_tokens(tokenize_rt.src_to_tokens(source)))
    text = tokenize_rt.tokens_to_src(tokens)
    if not text.startswith('"""'):
        raise SystemExit(f"{SOURCE} must start with its module docstring")
    end = text.index('"""', 3) + 3
    return HEADER + text[end:].lstrip("\n").join(["\n", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    args = parser.parse_args(argv)
    expected = generate(SOURCE.read_text())
    current = TARGET.read_text() if TARGET.exists() else ""
    if args.check:
        if current != expected:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                str(TARGET.relative_to(ROOT)),
                "generated",
            )
            sys.stderr.writelines(diff)
            print(
                f"{TARGET.relative_to(ROOT)} is out of date: run make sync-client",
                file=sys.stderr,
            )
            return 1
        return 0
    if current != expected:
        TARGET.write_text(expected)
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
