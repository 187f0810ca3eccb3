#!/usr/bin/env bash
# The console and the metrics endpoint, measured (figures go in
# docs/console.md): the console's first page with 10,000 alerts stored,
# a metrics scrape of a busy node, and what serving both costs the
# pipeline. Prints a table. Traffic stays on 127.0.0.1; bounded in time.
#
#   scripts/bench-console.sh                 20 s per pipeline run
#   DAISI_BENCH_SECONDS=60 scripts/bench-console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release --locked -q
source scripts/bench-lib.sh
BIN=$PWD/target/release/daisi
ADFA=$PWD/../shared/datasets/adfa-ld/ADFA-LD.zip
SECS=${DAISI_BENCH_SECONDS:-20}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

node() { # $1 = name, $2 = extra config: a both node replaying ADFA-LD forever; echoes its pid
  cat >"$WORK/$1.toml" <<EOF
[node]
role = "both"
shutdown_deadline = "10s"
[syscall_source]
kind = "replay"
path = "$ADFA"
abi = "i386"
repeat = true
[alert]
console = false
$2
EOF
  "$BIN" run --config "$WORK/$1.toml" >/dev/null 2>"$WORK/$1.log" &
  echo $!
}
stop() { kill -TERM "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }
times() { # $1 = runs, then a command; prints each run's wall time in ms
  local n=$1; shift
  for _ in $(seq "$n"); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done
}
stats() { python3 -c "
import statistics, sys
v = sorted(float(x) / 1000 for x in sys.stdin.read().split())
print(f'{statistics.median(v):.1f} ms median, {v[int(len(v) * 0.95) - 1]:.1f} ms p95 ({len(v)} runs)')"; }

# ---- 1. the first page with 10,000 alerts, and a scrape of a busy node ------
cport=$(free_port); mport=$(free_port)
# Threshold 0: every process alerts, so the store fills quickly.
pid=$(node served "[syscall_classifier]
model = \"models/syscall\"
threshold = 0.0
[console]
listen = \"127.0.0.1:$cport\"
[metrics]
listen = \"127.0.0.1:$mport\"")
raised() { curl -fs "http://127.0.0.1:$mport/metrics" | awk '/^daisi_alert_raised_total/ {print $2}'; }
until [ "$(raised 2>/dev/null || echo 0)" -ge 10000 ] 2>/dev/null; do sleep 1; done
first_page() {
  curl -fs "http://127.0.0.1:$cport/" -o /dev/null
  curl -fs "http://127.0.0.1:$cport/app.js" -o /dev/null
  curl -fs "http://127.0.0.1:$cport/app.css" -o /dev/null
  curl -fs "http://127.0.0.1:$cport/api/alerts?limit=200" -o /dev/null
}
scrape() { curl -fs "http://127.0.0.1:$mport/metrics" -o /dev/null; }
page=$(times 30 first_page | stats)
metrics=$(times 30 scrape | stats)
series=$(curl -fs "http://127.0.0.1:$mport/metrics" | grep -vc '^#')
stop "$pid"

# ---- 2. what serving costs the pipeline --------------------------------------
run() { # $1 = on|off: calls scored per second over SECS
  local extra="" p
  if [ "$1" = on ]; then
    cport=$(free_port); mport=$(free_port)
    extra="[console]
listen = \"127.0.0.1:$cport\"
[metrics]
listen = \"127.0.0.1:$mport\""
  fi
  p=$(node "pipe-$1" "$extra")
  local t0; t0=$(date +%s.%N)
  local until=$(( $(date +%s) + SECS ))
  while [ "$(date +%s)" -lt "$until" ]; do
    # A browser on the alerts page and a Prometheus scraping.
    if [ "$1" = on ]; then
      curl -fs "http://127.0.0.1:$cport/api/alerts?limit=200" -o /dev/null || true
      curl -fs "http://127.0.0.1:$mport/metrics" -o /dev/null || true
    fi
    sleep 1
  done
  local t1; t1=$(date +%s.%N)
  stop "$p"
  python3 -c "print($(counter "$WORK/pipe-$1.log" syscall_buffer.events) / ($t1 - $t0))"
}
off=(); on=()
# The model's own threshold (alerts on attack traces); rounds interleaved.
for _ in 1 2 3; do off+=("$(run off)"); on+=("$(run on)"); done
cost=$(python3 -c "
import statistics
off, on = statistics.mean([${off[*]/%/,}]), statistics.mean([${on[*]/%/,}])
print(f'{off:,.0f} calls/s off, {on:,.0f} on: {100 * (off - on) / off:+.1f} % cost')")

cat <<EOF

$(date -u +%Y-%m-%d), $(nproc) cores

| figure | value | must | target |
| --- | --- | --- | --- |
| console first page (page, script, style, newest 200 alerts) with 10,000 alerts stored | $page | < 300 ms | < 100 ms |
| metrics scrape of a busy node ($series series) | $metrics | < 50 ms | < 10 ms |
| cost to the pipeline of serving both (scraped every second, alerts polled) | $cost | ≤ 2 % | ≤ 1 % |
EOF
