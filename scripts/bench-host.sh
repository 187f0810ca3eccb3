#!/usr/bin/env bash
# The host lab, full length: 10 minutes of learning, 30 minutes of benign
# workload (false alarms per host-hour; with cron and package runs), then
# every scenario; prints `daisi eval host`, then `daisi eval logs` on the
# services' logs alone. Run as root. Figures go in docs/baselines.md and
# docs/logs.md.
#
#   scripts/bench-host.sh [OUT]      (default: a temporary directory)
#   DAISI_HOST_LEARN=600s DAISI_HOST_BENIGN=1800s scripts/bench-host.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release --locked -q
OUT="${1:-$(mktemp -d)}"
DAISI_BIN="$PWD/target/release/daisi" lab/host.sh run "$OUT" \
  --learn "${DAISI_HOST_LEARN:-600s}" --benign "${DAISI_HOST_BENIGN:-1800s}"
echo "alerts and phases in $OUT" >&2
