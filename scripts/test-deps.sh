#!/usr/bin/env bash
# Install what the test suite needs on Debian 12, idempotently and quickly:
#   docker-registry  (CNCF distribution v2, /usr/bin/docker-registry)
#   skopeo
#   gnupg            gpg/gpgv/gpg-agent for the atomic-signature tests
#   postgresql       only when no PostgreSQL binaries (initdb/pg_ctl) exist AND nothing
#                    listens on 127.0.0.1:5432 (scripts/with-postgres.sh then starts a
#                    throwaway cluster from those binaries).
# Runs as root (CI and the dev machines are root). When everything is present it does
# no apt work at all and returns in well under a second. `apt-get update` runs only when
# a package has no install candidate or the first install attempt fails.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

have_cmd() { command -v "$1" >/dev/null 2>&1; }

pg_binaries_present() {
    if have_cmd initdb || have_cmd pg_ctl; then
        return 0
    fi
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

port_5432_listening() {
    # bash's /dev/tcp: a successful connect means something listens there.
    timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' >/dev/null 2>&1
}

missing=()
if [ ! -x /usr/bin/docker-registry ] && ! have_cmd docker-registry; then
    missing+=(docker-registry)
fi
if ! have_cmd skopeo; then
    missing+=(skopeo)
fi
# The signature tests sign with a real key (gpg) and verify what the mirror serves (gpgv).
if ! have_cmd gpg || ! have_cmd gpgv || ! have_cmd gpgconf; then
    missing+=(gnupg)
fi
if ! pg_binaries_present && ! port_5432_listening; then
    missing+=(postgresql)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "test-deps: missing ${missing[*]}; run this script as root to install them" >&2
    exit 1
fi

echo "test-deps: installing ${missing[*]}" >&2

needs_update=0
for pkg in "${missing[@]}"; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        needs_update=1
    fi
done
if [ "$needs_update" -eq 1 ]; then
    apt-get update -qq
fi

install() {
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if ! install; then
    # Stale package lists (404 on download): refresh once and retry.
    apt-get update -qq
    install
fi

for pkg in "${missing[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || {
        echo "test-deps: $pkg did not install" >&2
        exit 1
    }
done
echo "test-deps: done" >&2
