"""``python -m client``: run the ``mirrorctl`` command line."""

from .cli import main

raise SystemExit(main())
