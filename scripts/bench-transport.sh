#!/usr/bin/env bash
# End-to-end throughput of the transport, collector to alert actor, on core
# NATS and on JetStream, with 1, 2 and 3 compute nodes on this machine;
# prints a table (figures go in docs/transport.md).
#
#   scripts/bench-transport.sh            20 s per configuration
#   DAISI_BENCH_SECONDS=60 scripts/bench-transport.sh
#
# A collector replays ADFA-LD's training traces over and over as fast as
# the pipeline takes them; the compute nodes score them. Measured: the
# calls the compute nodes scored in the window (their syscall_buffer.events,
# from each node's final counters), CPU of each process, and bytes per call
# on the wire (the broker's in_bytes over the calls the collector sent).
# Every process runs on this machine, so the nodes compete for its cores.
# All traffic stays on 127.0.0.1; each run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release --locked -q
source scripts/bench-lib.sh
BIN=$PWD/target/release/daisi
ADFA=$PWD/../shared/datasets/adfa-ld/ADFA-LD.zip
SECONDS_PER_RUN=${DAISI_BENCH_SECONDS:-20}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
HZ=$(getconf CLK_TCK)

node() { # $1 = name, $2 = config text: starts `daisi run`, echoes its pid
  printf '%s\n' "$2" >"$WORK/$1.toml"
  "$BIN" run --config "$WORK/$1.toml" >/dev/null 2>"$WORK/$1.log" &
  local pid=$!
  for _ in $(seq 200); do
    grep -q "node running" "$WORK/$1.log" && { echo "$pid"; return 0; }
    sleep 0.05
  done
  echo "$1 did not start:" >&2; cat "$WORK/$1.log" >&2; exit 1
}

varz() { # $1 = monitoring port, $2 = field
  curl -fs "http://127.0.0.1:$1/varz" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# One configuration: $1 = core|jetstream, $2 = compute nodes. Prints one
# table row.
run() {
  local mode=$1 n=$2 port mon js_enabled
  port=$(free_port); mon=$(free_port)
  [ "$mode" = jetstream ] && js_enabled=true || js_enabled=false
  "$NATS_SERVER" -a 127.0.0.1 -p "$port" -m "$mon" -js -sd "$WORK/js-$mode-$n" >"$WORK/nats-$mode-$n.log" 2>&1 &
  local nats=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$mon/varz" >/dev/null && break; sleep 0.05; done
  local common="
[nats]
servers = [\"nats://127.0.0.1:$port\"]
[nats.jetstream]
enabled = $js_enabled
[heartbeat]
interval = \"1s\""
  local computes=() i
  for i in $(seq "$n"); do
    computes+=("$(node "cmp$i" "[node]
role = \"compute\"
id = \"bench-cmp$i\"
shutdown_deadline = \"5s\"
$common
[alert]
console = false")")
  done
  local in0 t0 col
  in0=$(varz "$mon" in_bytes)
  col=$(node col "[node]
role = \"collector\"
id = \"bench-col\"
host = \"benchhost\"
shutdown_deadline = \"5s\"
$common
[syscall_source]
kind = \"replay\"
path = \"$ADFA\"
filter = \"Training_Data_Master/\"
abi = \"i386\"
repeat = true")
  t0=$(date +%s.%N)
  sleep "$SECONDS_PER_RUN"
  local col_ticks nats_ticks cmp_ticks=0 p in1 t1
  col_ticks=$(cpu_ticks "$col"); nats_ticks=$(cpu_ticks "$nats")
  for p in "${computes[@]}"; do cmp_ticks=$((cmp_ticks + $(cpu_ticks "$p"))); done
  in1=$(varz "$mon" in_bytes)
  t1=$(date +%s.%N)
  kill -TERM "$col" "${computes[@]}"
  # Started from command substitutions: not this shell's children.
  for p in "$col" "${computes[@]}"; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  done
  kill "$nats"; wait "$nats" 2>/dev/null || true
  local scored=0 sent lost
  for i in $(seq "$n"); do scored=$((scored + $(counter "$WORK/cmp$i.log" syscall_buffer.events))); done
  sent=$(counter "$WORK/col.log" syscall_source.events)
  lost=0
  for i in $(seq "$n"); do lost=$((lost + $(counter "$WORK/cmp$i.log" nats.slow_consumer_drops))); done
  python3 - "$mode" "$n" "$scored" "$sent" "$t0" "$t1" "$col_ticks" "$cmp_ticks" "$nats_ticks" "$HZ" "$in0" "$in1" "$lost" <<'PY'
import sys
mode, n, scored, sent, t0, t1, col, cmp, nats, hz, in0, in1, lost = sys.argv[1:]
n, scored, sent, lost = int(n), int(scored), int(sent), int(lost)
secs = float(t1) - float(t0)
pct = lambda ticks: 100 * int(ticks) / int(hz) / secs
rate = scored / secs
print(f"| {mode} | {n} | {rate:,.0f} | {pct(col):.0f} | {pct(cmp):.0f} ({pct(cmp)/n:.0f} per node) | {pct(nats):.0f} "
      f"| {(int(in1) - int(in0)) / max(sent, 1):.2f} | {sent - scored:,} | {lost} |")
PY
}

printf '\n%s, %s cores, %s s per configuration\n\n' "$(date -u +%Y-%m-%d)" "$(nproc)" "$SECONDS_PER_RUN"
echo "| transport | compute nodes | calls scored/s | collector CPU % | compute CPU % | broker CPU % | bytes on the wire per call | sent, not scored in the window | dropped by core NATS (slow consumer) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for n in 1 2 3; do
  for mode in core jetstream; do
    run "$mode" "$n"
  done
done
