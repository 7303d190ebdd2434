#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim from Debian's packages, for machines that can run
# Docker but reach no container registry (docs/adr/0011-images-without-a-registry.md).
#
#   scripts/build-base-image.sh            # prints the image name: tabserve-base:bookworm
#
# The image is Debian bookworm (minbase) with Debian's python3.11, pip and venv, made to look
# like the official image where the Dockerfiles could notice the difference:
#   - `python`, `python3` and `pip` are on PATH in /usr/local/bin (Debian's live in /usr/bin),
#   - no EXTERNALLY-MANAGED marker (the official image has none; our Dockerfiles use a venv
#     anyway, so they behave the same on both),
#   - no apt caches, docs, man pages or locales (as debian:bookworm-slim drops them),
#   - apt sources for bookworm, -updates and -security, so `apt-get install` works in builds.
# It holds no CA bundle beyond Debian's ca-certificates: builds that need this machine's
# intercepting CA get it as a build secret (scripts/docker-build.sh), never in a layer.
#
# Cached: the image carries a label with the hash of this script; a second run that finds an
# image with the same hash prints its name and exits (well under a second).
# Needs root, debootstrap (installed from apt when missing) and a running Docker engine.
set -euo pipefail

IMAGE="${TABSERVE_BASE_IMAGE:-tabserve-base:bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
RECIPE="$(sha256sum "$0" | cut -c1-16)"

say() { echo "build-base-image: $*" >&2; }

existing="$(docker image inspect --format '{{ index .Config.Labels "org.tabserve.recipe" }}' \
    "$IMAGE" 2>/dev/null || true)"
if [ "$existing" = "$RECIPE" ]; then
    echo "$IMAGE"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "building $IMAGE needs root (debootstrap); run as root or build FROM python:3.11-slim"
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || { say "no debootstrap and no apt-get to install it"; exit 1; }
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

ROOT="$(mktemp -d /tmp/tabserve-base-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
start=$(date +%s)
say "debootstrap $SUITE from $MIRROR into $ROOT (about a minute)"
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || { tail -20 "$ROOT.log" >&2; rm -f "$ROOT.log"; exit 1; }
rm -f "$ROOT.log"

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
# What debian:bookworm-slim leaves out, and apt's caches.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/apt/lists/* \
    "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
    "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
# Where the official image keeps python, and without Debian's pip guard.
rm -f "$ROOT"/usr/lib/python3.*/EXTERNALLY-MANAGED
ln -sf /usr/bin/python3 "$ROOT/usr/local/bin/python3"
ln -sf /usr/bin/python3 "$ROOT/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$ROOT/usr/local/bin/pip"
echo "tabserve stand-in for python:3.11-slim, Debian $SUITE, recipe $RECIPE" >"$ROOT/etc/tabserve-base"

tar --numeric-owner -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.tabserve.recipe=$RECIPE" \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
say "built $IMAGE in $(( $(date +%s) - start )) s ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$IMAGE"
