#!/usr/bin/env bash
# Installs what is missing and runs every check and test: formatting, lints,
# the collector-only build, unit tests and the integration tests (real
# nats-server, real ADFA-LD data from ../shared), the container images and
# the packages. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PATH:/usr/sbin" # Debian installs nats-server there

step() { printf '\n== %s\n' "$*"; }
# Room on disk: the test build, the fuzz build and the release build for
# the images take about 20 GB together; say so up front rather than fail
# half way with "No space left on device".
disk() { df -BG --output=avail . | tail -1 | tr -dc 0-9; }
printf '[test] %s GB free for target/\n' "$(disk)"
if [ -n "${CI:-}" ]; then
  # A clean checkout builds once: the incremental cache is only dead weight.
  export CARGO_INCREMENTAL=0
fi

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --locked --all-targets -- -D warnings

step "collector-only build (no libtorch)"
# Same target dir: dependencies are shared, only daisi itself rebuilds.
cargo build --locked --no-default-features
cp target/debug/daisi target/daisi-collector-only
target/daisi-collector-only --version
target/daisi-collector-only check-config --config config/collector.toml
if target/daisi-collector-only check-config --role compute >/dev/null 2>&1; then
  echo "a collector-only build must refuse the compute role" >&2
  exit 1
fi

step "tests"
cargo test --locked --all-targets --no-fail-fast

step "fuzz targets on their seeds and regressions"
# Each target once over fuzz/corpus and fuzz/regressions (scripts/fuzz.sh
# --time N fuzzes for longer; docs/fuzzing.md).
scripts/fuzz.sh --regress

step "container images, the compose stack and the packages"
if [ -n "${CI:-}" ]; then
  # The test build is done with; its room goes to the release build.
  cargo clean --profile dev -q
  printf '[test] test build removed: %s GB free\n' "$(disk)"
fi
# Builds every image (podman here, docker where its engine runs), brings
# the compose stack up and tests it end to end, then the .deb packages.
docker/test.sh
