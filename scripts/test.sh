#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need (the virtualenv, Debian's
# docker-registry and skopeo, PostgreSQL where none runs, buf from npm for the proto lint),
# then runs pytest on SQLite and PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/test-deps.sh
if [ ! -x node_modules/.bin/buf ] && command -v npm >/dev/null 2>&1; then
    npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || echo "test: npm ci failed; buf lint test will be skipped" >&2
fi
exec bash scripts/with-postgres.sh .venv/bin/python -m pytest "$@"
