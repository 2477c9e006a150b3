"""`python -m server` / `mirror-server`: parse settings, configure logging, serve."""

from __future__ import annotations

import asyncio
import sys

from server import logs
from server.app import serve
from server.config import parse_settings


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
