"""`python -m server` / `mirror-server`: parse settings, configure logging, serve."""

from __future__ import annotations

import logging
import sys

import uvloop

from server.app import ListenError, serve
from server.config import parse_settings
from server.registry.accesslog import QueuedLogging

#: Exit status when an address cannot be listened on (taken, not local, forbidden).
EXIT_LISTEN = 3


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        # uvloop: a faster event loop for the registry endpoint and the sync's HTTP client alike.
        with QueuedLogging():
            uvloop.run(serve(settings))
    except ListenError as exc:
        # One line, no traceback: the usual cause is a second server on the same port.
        print(f"mirror-server: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_LISTEN) from None


if __name__ == "__main__":
    main()
