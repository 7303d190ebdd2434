#!/usr/bin/env bash
# Make a command from Debian's packages available for the test suite; print its path.
#
#   scripts/ensure-debian-tool.sh COMMAND PACKAGE [PACKAGE...]
#   scripts/ensure-debian-tool.sh promtool prometheus
#   scripts/ensure-debian-tool.sh chromedriver chromium chromium-driver
#
# Installs the packages (without recommends) only when COMMAND is missing and we are root with
# apt-get; otherwise exits 1 with the reason (the tests then fail under CI=true, skip elsewhere).
# Services a package starts on install (prometheus does, where an init system runs) are
# stopped again: the tests start only what they need, and stop it.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 COMMAND PACKAGE [PACKAGE...]" >&2
    exit 2
fi
cmd="$1"
shift

find_cmd() {
    if command -v "$cmd" >/dev/null 2>&1; then
        command -v "$cmd"
        return 0
    fi
    # Debian puts some binaries off PATH (chromium's driver lives in /usr/lib/chromium).
    local dir
    for dir in /usr/bin /usr/sbin /usr/lib/chromium; do
        if [ -x "$dir/$cmd" ]; then
            echo "$dir/$cmd"
            return 0
        fi
    done
    return 1
}

if find_cmd; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-debian-tool: $cmd not found and not root: apt-get install $*" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-debian-tool: $cmd not found and no apt-get to install $*" >&2
    exit 1
fi

echo "ensure-debian-tool: installing Debian's $* for $cmd" >&2
export DEBIAN_FRONTEND=noninteractive
# One install at a time: two test processes installing at once would fight over dpkg's lock.
exec 9>/tmp/tabserve-ensure-debian-tool.lock
flock 9
if ! find_cmd >/dev/null; then
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "$@" >&2
    for pkg in "$@"; do
        if [ -x "/etc/init.d/$pkg" ] && command -v service >/dev/null 2>&1; then
            service "$pkg" stop >&2 || true
        fi
    done
fi

find_cmd || { echo "ensure-debian-tool: installed $*, but $cmd is still not found" >&2; exit 1; }
