#!/usr/bin/env bash
# What Sigma rules cost a node at the host lab's event rate: the host lab
# (lab/host.sh: 60 s of learning, 120 s of benign workload, three
# scenarios) run without rules and with SigmaHQ's Linux rules at the
# default min_level, alternately, DAISI_RULES_ROUNDS times each (default
# 2); prints the node's CPU seconds per run, the processes and activities
# the rules judged, and the ratio of the means. Run as root. Figures go in
# docs/rules.md.
#
#   scripts/bench-rules.sh [OUT]
#   DAISI_SIGMA=DIR   (default ../shared/datasets/sigma/rules/linux)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
scripts/setup.sh >&2
cargo build --release --locked -q
SIGMA="${DAISI_SIGMA:-$(cd .. && pwd)/shared/datasets/sigma/rules/linux}"
[ -d "$SIGMA" ] || { echo "no Sigma rules at $SIGMA" >&2; exit 1; }
OUT="${1:-$(mktemp -d)}"
mkdir -p "$OUT"
ROUNDS="${DAISI_RULES_ROUNDS:-2}"
TICK=$(getconf CLK_TCK)
printf '%-6s %-6s %10s %10s %11s %8s\n' round rules "cpu (s)" processes activities matched
declare -A sum=([none]=0 [sigma]=0)
for r in $(seq "$ROUNDS"); do
  for v in none sigma; do
    dir="$OUT/$v-$r"
    args=(run "$dir" --learn 60s --benign 120s --scenarios reverse_shell,credential_theft,persistence_cron)
    [ "$v" = none ] || args+=(--rules "$SIGMA")
    DAISI_BIN="$PWD/target/release/daisi" lab/host.sh "${args[@]}" >"$dir.out" 2>&1 || { cat "$dir.out" >&2; exit 1; }
    ticks=$(cat "$dir/node-cpu-ticks")
    sum[$v]=$((sum[$v] + ticks))
    printf '%-6s %-6s %10.2f %10s %11s %8s\n' "$r" "$v" "$(python3 -c "print($ticks / $TICK)")" \
      "$(counter "$dir/node.log" rules.processes)" "$(counter "$dir/node.log" rules.activities)" "$(counter "$dir/node.log" rules.matched)"
  done
done
printf 'node CPU with rules / without: %.3f (means of %s runs each)\n' "$(python3 -c "print(${sum[sigma]} / max(${sum[none]}, 1))")" "$ROUNDS"
