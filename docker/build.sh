#!/usr/bin/env bash
# Builds daisi's images: daisi-collector, daisi-compute, daisi-both and
# daisi-nats (tag $DAISI_IMAGE_TAG, default latest), and prints their sizes.
#
#   docker/build.sh
#
# Uses docker when its engine answers, else podman (docker/engine.sh
# installs it). The binaries are built on this machine and copied in
# (docker/Dockerfile's BINARIES=host mode): the release build, the
# collector-only build (no libtorch), libtorch's libraries and the NATS
# server scripts/setup.sh installs. The base image is debian:bookworm-slim
# when a registry answers; without one it is made here with debootstrap
# (localhost/debian:bookworm, kept in the engine's storage for the next
# build).
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/engine.sh
TAG=${DAISI_IMAGE_TAG:-latest}
MIRROR=${DAISI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { printf '[docker] %s\n' "$*" >&2; }

image_exists() {
  if [ "$ENGINE" = podman ]; then podman image exists "$1"; else docker image inspect "$1" >/dev/null 2>&1; fi
}

# ---- 1. the base image -----------------------------------------------------
make_base() { # a minimal Debian bookworm, imported as localhost/debian:bookworm
  local root
  root=$(mktemp -d /var/tmp/daisi-rootfs.XXXXXX)
  log "making the base image with debootstrap (about a minute)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { cat "$root.log" >&2; exit 1; }
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES
  # Like the official slim image: no documentation, manual pages,
  # translations or package lists.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
    "$root"/usr/share/info/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*
  tar -C "$root" -c . | $ENGINE import - localhost/debian:bookworm >/dev/null
  rm -rf "$root" "$root.log"
}

if [ -n "${DAISI_BASE_IMAGE:-}" ]; then
  BASE=$DAISI_BASE_IMAGE
elif curl -fsS -m 5 -o /dev/null https://registry-1.docker.io/v2/ 2>/dev/null \
  || [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null)" = 401 ]; then
  BASE=debian:bookworm-slim
else
  BASE=localhost/debian:bookworm
  image_exists "$BASE" || make_base
fi
log "base image: $BASE"

# ---- 2. the binaries, built here -------------------------------------------
source docker/dist.sh
make_dist

# ---- 3. the images ---------------------------------------------------------
for target in collector compute both nats; do
  log "building daisi-$target:$TAG"
  $ENGINE build -q --build-arg BASE="$BASE" --build-arg BINARIES=host \
    --target "$target" -t "localhost/daisi-$target:$TAG" -f docker/Dockerfile . >/dev/null
done
printf '\n| image | size |\n| --- | --- |\n'
for target in collector compute both nats; do
  size=$($ENGINE image inspect "localhost/daisi-$target:$TAG" --format '{{.Size}}')
  printf '| daisi-%s | %s MB |\n' "$target" "$(( size / 1000000 ))"
done
