#!/usr/bin/env bash
# The one command that runs the service on the embedded default (SQLite + ./.mirror-data).
# Extra arguments go to the server, e.g. --grpc-address 0.0.0.0:50051.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m server "$@"
