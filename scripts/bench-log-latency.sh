#!/usr/bin/env bash
# Log alert latency: from a line written to a followed file to its alert in
# the sink, for the embedded default (`both`) and for a collector and a
# compute node over NATS JetStream, with the source's default `poll`
# (250ms). Each run writes one refused `sudo` (an alert of its own: a new
# user each time) every DAISI_LATENCY_GAP seconds, DAISI_LATENCY_LINES
# times, and matches every alert to its line by user. Latency = the
# alert's `@timestamp` (ts_ns) − when the script wrote the line; the
# collector's share is `observed_ns` − written. Prints a table (figures
# go in docs/logs.md). Loopback only; each run bounded (lines × gap + 30 s).
#
#   scripts/bench-log-latency.sh              40 lines, 0.25 s apart
#   DAISI_LATENCY_LINES=200 scripts/bench-log-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
source scripts/bench-lib.sh
cargo build --release --locked -q
BIN=$PWD/target/release/daisi
LINES=${DAISI_LATENCY_LINES:-40}
GAP=${DAISI_LATENCY_GAP:-0.25}
WORK=$(mktemp -d /var/tmp/daisi-log-latency.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

SOURCE="[[log_source]]
name = \"auth\"
kind = \"file\"
paths = [\"$WORK/auth.log\"]
registry_dir = \"$WORK/registry\""
ALERT="[alert]
console = false
jsonl = \"$WORK/alerts.jsonl\""

# Starts `daisi run` on config $2 (label $1) and waits until it runs; its
# pid in NODE_PID.
node() {
  printf '%s\n' "$2" >"$WORK/$1.toml"
  "$BIN" run --config "$WORK/$1.toml" >/dev/null 2>"$WORK/$1.log" &
  NODE_PID=$!
  for _ in $(seq 400); do grep -q "node running" "$WORK/$1.log" && break; sleep 0.05; done
  grep -q "node running" "$WORK/$1.log" || { cat "$WORK/$1.log" >&2; exit 1; }
}

# Writes the lines, waits for their alerts (bounded), prints one table row
# labelled $1.
measure() {
  python3 - "$1" "$WORK/auth.log" "$WORK/alerts.jsonl" "$LINES" "$GAP" <<'PY'
import json, os, sys, time
label, log, alerts, n, gap = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
written = {}
with open(log, "a") as f:
    for i in range(n):
        user = f"lat{os.getpid()}u{i}"
        stamp = time.strftime("%b %e %H:%M:%S")
        line = f"{stamp} bench sudo:   {user} : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh\n"
        written[user] = time.time_ns()
        f.write(line)
        f.flush()
        time.sleep(gap)
found = {}
deadline = time.time() + 30
while len(found) < n and time.time() < deadline:
    if os.path.exists(alerts):
        for l in open(alerts):
            a = json.loads(l)
            user = (a.get("user") or {}).get("name")
            if user in written and user not in found:
                found[user] = a
    time.sleep(0.1)
if len(found) < n:
    sys.exit(f"{label}: {n - len(found)} of {n} lines raised no alert within 30 s")
def ms(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return f"{q(0.5):.0f} | {q(0.95):.0f} | {xs[-1]:.0f}"
total = [(a["ts_ns"] - written[u]) / 1e6 for u, a in found.items()]
read = [(a["observed_ns"] - written[u]) / 1e6 for u, a in found.items() if a.get("observed_ns")]
within = sum(t <= 2000 for t in total)
print(f"| {label} | {n} | {ms(read)} | {ms(total)} | {within}/{n} |")
PY
}

echo "| path | lines | read p50 ms | read p95 ms | read max ms | alert p50 ms | alert p95 ms | alert max ms | alerts ≤ 2 s |" >"$WORK/table"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" >>"$WORK/table"

# The embedded default: one process.
: >"$WORK/auth.log"
node both "[node]
role = \"both\"
host = \"bench\"
$ALERT
$SOURCE"
pid=$NODE_PID
sleep 0.5
measure "both (in-process)" >>"$WORK/table"
kill -TERM "$pid"; wait "$pid" || true

# A collector and a compute node over NATS JetStream.
rm -rf "$WORK/registry" "$WORK/alerts.jsonl"
: >"$WORK/auth.log"
port=$(free_port)
"$NATS_SERVER" -a 127.0.0.1 -p "$port" -js -sd "$WORK/js" >"$WORK/nats.log" 2>&1 &
nats=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
node compute "[node]
role = \"compute\"
id = \"lat-cmp\"
[nats]
servers = [\"nats://127.0.0.1:$port\"]
$ALERT"
cmp=$NODE_PID
node collector "[node]
role = \"collector\"
id = \"lat-col\"
host = \"bench\"
[nats]
servers = [\"nats://127.0.0.1:$port\"]
$SOURCE"
col=$NODE_PID
sleep 0.5
measure "collector → JetStream → compute" >>"$WORK/table"
kill -TERM "$col" "$cmp"; wait "$col" "$cmp" || true
kill "$nats"; wait "$nats" 2>/dev/null || true

printf '\n%s, %s, %s cores, poll 250ms (the default), one line every %ss\n\n' \
  "$(date -u +%Y-%m-%d)" "$(uname -m)" "$(nproc)" "$GAP"
cat "$WORK/table"
