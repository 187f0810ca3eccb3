#!/usr/bin/env bash
# Debian packages: daisi-collector and daisi-compute (cargo-deb), each with
# its systemd unit, configuration in /etc/daisi/ and state in
# /var/lib/daisi/. Written to target/debian/.
#
#   docker/package.sh           build the packages
#   docker/package.sh --test    and install each into a container of the
#                               base image: `daisi check-config` and
#                               `systemd-analyze verify` on its unit
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_ROOT=/var/cache/daisi/cargo-deb
CARGO_DEB_VERSION=3.8.0
log() { printf '[package] %s\n' "$*" >&2; }

if ! "$CARGO_DEB_ROOT/bin/cargo-deb" --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  log "installing cargo-deb $CARGO_DEB_VERSION into $CARGO_DEB_ROOT"
  cargo install --locked --quiet --root "$CARGO_DEB_ROOT" --version "$CARGO_DEB_VERSION" cargo-deb
fi
# docker/test.sh has just made docker/dist/ (DAISI_DIST_READY=1).
if [ "${DAISI_DIST_READY:-0}" != 1 ]; then
  source docker/dist.sh
  make_dist
fi
mkdir -p target/debian
for variant in collector compute; do
  "$CARGO_DEB_ROOT/bin/cargo-deb" --no-build --no-strip --variant "$variant" \
    --output "target/debian/daisi-$variant.deb" >/dev/null
  log "target/debian/daisi-$variant.deb: $(du -h "target/debian/daisi-$variant.deb" | cut -f1)"
done
[ "${1:-}" = --test ] || exit 0

source docker/engine.sh
BASE=${DAISI_BASE_IMAGE:-localhost/debian:bookworm}
for variant in collector compute; do
  log "installing daisi-$variant into a $BASE container"
  $ENGINE run --rm -v "$PWD/target/debian:/debs:ro" "$BASE" sh -euc "
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      systemd /debs/daisi-$variant.deb >/dev/null
    daisi --version
    daisi check-config --config /etc/daisi/$variant.toml
    systemd-analyze verify /lib/systemd/system/daisi-$variant.service
    test -d /var/lib/daisi
    if [ $variant = compute ]; then
      id daisi
      test \"\$(stat -c %G /etc/daisi/compute.toml)\" = daisi
      # libtorch is found where the package put it.
      daisi train --help >/dev/null
    fi
    echo 'daisi-$variant: installed and verified'
  "
done
