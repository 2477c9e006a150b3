#!/usr/bin/env bash
# What `make bench` needs beyond the test dependencies: the serving section's load generators,
#   wrk            (GET requests; Debian package)
#   apache2-utils  (ab, for HEAD requests: wrk 4.1 stalls on a HEAD answer's Content-Length)
# Idempotent: no apt work when both are present.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v ab >/dev/null 2>&1 || missing+=(apache2-utils)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "bench-deps: missing ${missing[*]}; run this script as root to install them" >&2
    exit 1
fi
echo "bench-deps: installing ${missing[*]}" >&2
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
