#!/usr/bin/env bash
# Installs what is missing, builds daisi, and runs a node on the embedded
# default: role "both" (collector and compute in one process, no broker).
# Extra arguments go to `daisi run` (e.g. --config FILE, --log-format json).
# Stop with Ctrl-C: the node drains its pipeline and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--config config/both.toml)
exec target/release/daisi run "${args[@]}"
