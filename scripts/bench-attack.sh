#!/usr/bin/env bash
# The ATT&CK lab, full length: 5 minutes of learning, 30 minutes of
# varied benign workload (false alarms per host-hour, with their 95 %
# upper bound; cron and package runs included), then every Linux sh/bash
# test of an Atomic Red Team atomics folder against the contained victim,
# the SigmaHQ Linux rules loaded; prints `daisi eval attack` (per test,
# technique and tactic). Run as root. Figures go in docs/detection.md.
#
#   scripts/bench-attack.sh [OUT]      (default: a temporary directory)
#   DAISI_ATOMICS=DIR        the atomics folder (default: the shared
#                            datasets' copy, ../shared/datasets/atomic-red-team/atomics)
#   DAISI_SIGMA=DIR          Sigma rules (default: ../shared/datasets/sigma/rules/linux;
#                            "none" for none)
#   DAISI_ATTACK_LEARN=300s DAISI_ATTACK_BENIGN=1800s DAISI_ATTACK_ONLY=T1046,...
#
# Measuring techniques daisi was not developed beside: give another
# checkout's atomics as DAISI_ATOMICS; the report marks the shared
# datasets' techniques as shown (--shown) and gives the others apart.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release --locked -q
SHARED="$(cd .. && pwd)/shared/datasets"
ATOMICS="${DAISI_ATOMICS:-$SHARED/atomic-red-team/atomics}"
SIGMA="${DAISI_SIGMA:-$SHARED/sigma/rules/linux}"
OUT="${1:-$(mktemp -d)}"
args=(--atomics "$ATOMICS" --learn "${DAISI_ATTACK_LEARN:-300s}" --benign "${DAISI_ATTACK_BENIGN:-1800s}")
[ "$SIGMA" = none ] || args+=(--rules "$SIGMA")
[ ! -d "$SHARED/atomic-red-team/atomics" ] || args+=(--shown "$SHARED/atomic-red-team/atomics")
[ -z "${DAISI_ATTACK_ONLY:-}" ] || args+=(--only "$DAISI_ATTACK_ONLY")
DAISI_BIN="$PWD/target/release/daisi" lab/attack.sh run "$OUT" "${args[@]}"
echo "alerts, phases and report in $OUT" >&2
