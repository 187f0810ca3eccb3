# Fills docker/dist/ with what the images and packages ship (sourced by
# docker/build.sh and docker/package.sh): the release binary (stripped,
# looking for libtorch in /usr/lib/daisi), the collector-only binary
# (stripped), libtorch's libraries and the NATS server scripts/setup.sh
# installs.
make_dist() {
  command -v patchelf >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends patchelf >/dev/null
  }
  printf '[docker] building the binaries\n' >&2
  rm -rf docker/dist && mkdir -p docker/dist/libtorch
  # One target directory: the dependencies are built once, only daisi
  # itself twice (the full build last, as target/release/daisi).
  cargo build --release --locked -q --no-default-features
  strip -o docker/dist/daisi-collector target/release/daisi
  cargo build --release --locked -q
  strip -o docker/dist/daisi target/release/daisi
  patchelf --set-rpath /usr/lib/daisi docker/dist/daisi
  source scripts/bench-lib.sh # NATS_SERVER
  ldd target/release/daisi | awk '$3 ~ /torch|nvidia/ {print $3}' | xargs -r cp -L -t docker/dist/libtorch
  cp -L "$NATS_SERVER" docker/dist/nats-server
}
