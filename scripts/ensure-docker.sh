#!/usr/bin/env bash
# Make a Docker engine answer on the default socket, for the image tests and `make stack`.
#   scripts/ensure-docker.sh     # exit 0: `docker info` works; prints "started PID" when it
#                                # started dockerd (the caller stops that PID when done)
# Installs Debian's docker.io when dockerd is missing and we are root with apt-get; starts
# dockerd in the background when nothing answers (machines without systemd). Otherwise exits 1
# with the reason, on one line (tests skip on it, or fail under CI=true).
set -euo pipefail

SOCKET="${DOCKER_SOCKET:-/var/run/docker.sock}"
DATA_ROOT="${DOCKER_DATA_ROOT:-/var/lib/docker}"
LOG="${DOCKERD_LOG:-/tmp/tabserve-dockerd.log}"

say() { echo "ensure-docker: $*" >&2; }
engine_answers() { timeout 10 docker -H "unix://$SOCKET" info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "no Docker engine, and not root to install one: install docker.io (or Docker) and start it"
        exit 1
    fi
    command -v apt-get >/dev/null 2>&1 || { say "no Docker engine and no apt-get to install it"; exit 1; }
    say "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends docker.io >&2
    # The package may start its own daemon (systemd machines); then we are done.
    if engine_answers; then exit 0; fi
fi

if [ "$(id -u)" -ne 0 ]; then
    say "dockerd is installed but not running, and starting it needs root"
    exit 1
fi
say "starting dockerd (socket $SOCKET, data $DATA_ROOT, log $LOG)"
mkdir -p "$DATA_ROOT"
nohup dockerd --host "unix://$SOCKET" --data-root "$DATA_ROOT" >"$LOG" 2>&1 &
pid=$!
for _ in $(seq 1 60); do
    if engine_answers; then
        echo "started $pid"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        say "dockerd exited: $(tail -n 3 "$LOG" | tr '\n' ' ')"
        exit 1
    fi
    sleep 0.5
done
say "dockerd did not answer within 30 s: $(tail -n 3 "$LOG" | tr '\n' ' ')"
kill "$pid" 2>/dev/null || true
exit 1
