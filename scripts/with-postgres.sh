#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#
# Runs CMD with MIRROR_TEST_POSTGRES_URL set to an admin URL of a reachable PostgreSQL
# server (postgresql+asyncpg://postgres@HOST:PORT/postgres), and exits with CMD's code.
#
#   1. MIRROR_TEST_POSTGRES_URL already set            -> used as is.
#   2. a server on 127.0.0.1:5432 accepts user postgres -> that one.
#   3. otherwise a throwaway cluster: initdb (from /usr/lib/postgresql/*/bin) into a
#      temp dir owned by user postgres (when running as root), started with pg_ctl on a
#      free 127.0.0.1 port with its socket in the temp dir, stopped and deleted on exit.
#
# MIRROR_TEST_PG_FORCE_THROWAWAY=1 skips steps 1 and 2 (to test step 3).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

log() { echo "with-postgres: $*" >&2; }

force_throwaway="${MIRROR_TEST_PG_FORCE_THROWAWAY:-0}"

# --------------------------------------------------------------------------- 1. env var
if [ "$force_throwaway" != 1 ] && [ -n "${MIRROR_TEST_POSTGRES_URL:-}" ]; then
    exec "$@"
fi

# The newest installed major version (Debian: /usr/lib/postgresql/<major>/bin).
pg_bindir=""
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    pg_bindir=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
    pg_bindir=$(dirname "$pg_bindir")
fi
if [ -z "$pg_bindir" ] && command -v initdb >/dev/null 2>&1; then
    pg_bindir=$(dirname "$(command -v initdb)")
fi

tool() {  # tool NAME: path of a PostgreSQL client/server binary, or empty
    if [ -n "$pg_bindir" ] && [ -x "$pg_bindir/$1" ]; then
        echo "$pg_bindir/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    fi
}

# --------------------------------------------------------------------------- 2. port 5432
accepts_postgres() {  # accepts_postgres HOST PORT
    local psql pg_isready
    psql=$(tool psql)
    pg_isready=$(tool pg_isready)
    if [ -n "$psql" ]; then
        PGCONNECT_TIMEOUT=3 "$psql" -w -X -q -h "$1" -p "$2" -U postgres -d postgres \
            -Atc 'select 1' >/dev/null 2>&1
    elif [ -n "$pg_isready" ]; then
        "$pg_isready" -q -t 3 -h "$1" -p "$2" -U postgres -d postgres
    else
        timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
    fi
}

if [ "$force_throwaway" != 1 ] && accepts_postgres 127.0.0.1 5432; then
    export MIRROR_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    exec "$@"
fi

# --------------------------------------------------------------------------- 3. throwaway
if [ -z "$pg_bindir" ] || [ ! -x "$pg_bindir/initdb" ] || [ ! -x "$pg_bindir/pg_ctl" ]; then
    log "no PostgreSQL on 127.0.0.1:5432 and no initdb/pg_ctl found;" \
        "run scripts/test-deps.sh (as root) or set MIRROR_TEST_POSTGRES_URL"
    exit 1
fi

free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    for port in $(shuf -i 20000-60000 -n 50); do
        if ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" >/dev/null 2>&1; then
            echo "$port"
            return
        fi
    done
    return 1
}

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        log "running as root but there is no 'postgres' user to run the cluster as"
        exit 1
    fi
    as_pg=(runuser -u postgres --)
fi

# As root the cluster runs as 'postgres', which must reach the dir: use /tmp then.
tmpbase="${TMPDIR:-/tmp}"
if [ "${#as_pg[@]}" -gt 0 ]; then
    tmpbase=/tmp
fi
tmpdir=$(mktemp -d "$tmpbase/mirror-pg.XXXXXX")
chmod 0755 "$tmpdir"
mkdir -p "$tmpdir/data" "$tmpdir/sock"
if [ "${#as_pg[@]}" -gt 0 ]; then
    chown -R postgres:postgres "$tmpdir"
fi

started=0
cleanup() {
    local code=$?
    trap - EXIT INT TERM
    if [ "$started" = 1 ]; then
        "${as_pg[@]}" "$pg_bindir/pg_ctl" -D "$tmpdir/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$tmpdir"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_pg[@]}" "$pg_bindir/initdb" -D "$tmpdir/data" -A trust -U postgres -E UTF8 \
    --no-sync >"$tmpdir/initdb.log" 2>&1 || {
    log "initdb failed:"
    cat "$tmpdir/initdb.log" >&2
    exit 1
}

port=""
for _attempt in 1 2 3; do
    port=$(free_port)
    if "${as_pg[@]}" "$pg_bindir/pg_ctl" -D "$tmpdir/data" -l "$tmpdir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $tmpdir/sock -c fsync=off" \
        start >/dev/null 2>&1; then
        started=1
        break
    fi
done
if [ "$started" != 1 ]; then
    log "pg_ctl start failed:"
    cat "$tmpdir/server.log" >&2 || true
    exit 1
fi

log "throwaway PostgreSQL ($("$pg_bindir/postgres" --version | awk '{print $3}')) on 127.0.0.1:$port"
export MIRROR_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"

set +e
"$@"
status=$?
set -e
exit "$status"
