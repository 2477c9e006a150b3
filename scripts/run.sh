#!/usr/bin/env bash
# The one command that runs the service on the embedded default (SQLite + ./.mirror-data).
# Extra arguments go to the server, e.g. --grpc-address 0.0.0.0:50051.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The client is installed beside the server; say where, since .venv/bin is not on PATH.
echo "run.sh: mirrorctl is $PWD/.venv/bin/mirrorctl (export PATH=\"$PWD/.venv/bin:\$PATH\")" >&2
exec .venv/bin/python -m server "$@"
