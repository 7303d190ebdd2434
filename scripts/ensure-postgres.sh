#!/usr/bin/env bash
# Make PostgreSQL's server binaries (initdb, pg_ctl, postgres) available for the test suite.
# Prints the directory holding them. Installs Debian's postgresql only when they are missing
# and we are root with apt-get; otherwise exits 1 with the reason (tests then skip, loudly).
set -euo pipefail

find_bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Debian keeps the server binaries off PATH, one directory per major version.
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if find_bindir; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-postgres: PostgreSQL binaries not found and not root: install postgresql" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: PostgreSQL binaries not found and no apt-get to install them" >&2
    exit 1
fi

echo "ensure-postgres: installing Debian's postgresql" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends postgresql >&2
# The package starts a system cluster on 5432; tests use their own throw-away clusters instead.
if command -v service >/dev/null 2>&1; then service postgresql stop >&2 || true; fi

find_bindir || { echo "ensure-postgres: installed, but initdb is still not found" >&2; exit 1; }
