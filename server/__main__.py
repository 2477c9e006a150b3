"""`python -m server` / `mirror-server`: parse settings, configure logging, serve."""

from __future__ import annotations

import asyncio
import logging
import sys

from server.app import rotate_secret_key, serve
from server.config import parse_settings


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.rotate_secret_key:
        asyncio.run(rotate_secret_key(settings))
        return
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
