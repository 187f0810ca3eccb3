#!/usr/bin/env bash
# Network detection, live: a node (role both) capturing on the traffic
# lab's victim interface while the client's benign traffic runs, then each
# attack kind in turn (lab/lab.sh attack KIND, small scale) with benign
# traffic beside it. Prints, per kind: whether an alert named the attacker,
# the rules that fired, the first alert's delay after the attack began,
# and the per-source latency: from the end of the flow that completed the
# pattern (its last packet: the moment the window held enough evidence)
# to the alert; a flow that ends without FIN or RST (an unanswered SYN, a
# UDP lookup) ends at the flow table's idle timeout, 5 s here, which this
# includes. The node is restarted before each kind (a fresh attacker). Then
# the false alarms over the benign-only period and the whole run. Run as
# root (network namespaces); bounded: every attack is wrapped in `timeout`.
#
#   scripts/bench-network.sh [BENIGN_SECONDS]   default 120
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release -q
BENIGN_SECONDS="${1:-120}"
export DAISI_LAB_PREFIX=dbnet DAISI_LAB_NET=212
DIR="$(mktemp -d)"
NODE=""
cleanup() {
  [ -n "$NODE" ] && kill -INT "$NODE" 2>/dev/null && wait "$NODE" 2>/dev/null || true
  lab/lab.sh down
  rm -rf "$DIR"
}
trap cleanup EXIT
lab/lab.sh up
attacker="$(lab/lab.sh addr attacker)"
cat >"$DIR/node.toml" <<EOF
[node]
role = "both"
host = "victim"
[syscall_source]
kind = "none"
[packet_source]
kind = "live"
interface = "eth0"
[flow_merge]
idle_timeout = "5s"
tick = "100ms"
[baseline]
dir = "$DIR/baselines"
[alert]
console = false
jsonl = "$DIR/alerts.jsonl"
EOF
# A node of its own per attack kind (a fresh start: what it learnt of the
# attacker in one kind does not fold the next kind's alerts).
start_node() {
  ip netns exec "$DAISI_LAB_PREFIX-victim" target/release/daisi run --config "$DIR/node.toml" \
    >>"$DIR/node.log" 2>&1 &
  NODE=$!
  for _ in $(seq 200); do
    [ "$(grep -c "node running" "$DIR/node.log")" -ge "$1" ] && return 0
    sleep 0.1
  done
  cat "$DIR/node.log"
  exit 1
}
stop_node() {
  kill -INT "$NODE"
  wait "$NODE" 2>/dev/null || true
  NODE=""
}
start_node 1

now() { date +%s%N; }
: >"$DIR/periods"
# Benign traffic alone, bounded in time.
t0=$(now)
timeout "$BENIGN_SECONDS" bash -c 'while :; do lab/lab.sh benign 100000; done' || true
sleep 4
echo "benign $t0 $(now)" >>"$DIR/periods"
n=1
for kind in nmap_syn nmap_connect nmap_udp hping_syn hydra_ssh web_probe slow_http hydra_http \
  ssh_success dns_tunnel; do
  echo "[bench-network] $kind" >&2
  stop_node
  n=$((n + 1))
  start_node "$n"
  lab/lab.sh benign 20 &
  bg=$!
  t=$(now)
  lab/lab.sh attack "$kind" >"$DIR/$kind.log" 2>&1 || true
  wait "$bg" || true
  # Flows end (FIN/RST, or the 5 s idle timeout) and are scored.
  sleep 8
  echo "$kind $t $(now)" >>"$DIR/periods"
done

python3 - "$DIR/periods" "$DIR/alerts.jsonl" "$attacker" <<'PY'
import json, sys
periods = [l.split() for l in open(sys.argv[1])]
alerts = []
try:
    alerts = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
except FileNotFoundError:
    pass
attacker = sys.argv[3]
def about_attacker(a):
    return attacker in (a.get("entity") or "")
print(f"{'kind':<14} {'detected':>8} {'first alert (s)':>15} {'per-source latency (ms)':>23}  rules")
false_alarms, benign_s = 0, 0.0
for kind, t0, t1 in periods:
    t0, t1 = int(t0), int(t1)
    inside = [a for a in alerts if t0 <= a["ts_ns"] < t1]
    others = [a for a in inside if not about_attacker(a)]
    false_alarms += len(others)
    if kind == "benign":
        benign_s = (t1 - t0) / 1e9
        print(f"{'benign only':<14} {'-':>8} {'-':>15} {'-':>23}  {len(others)} alerts over {benign_s:.0f} s")
        continue
    hits = [a for a in inside if about_attacker(a)]
    rules = sorted({(a.get("rule") or {}).get("name", "flow model") for a in hits})
    first = f"{(min(a['ts_ns'] for a in hits) - t0) / 1e9:.2f}" if hits else "-"
    lat = [a["ts_ns"] - a["observed_ns"] for a in hits
           if (a.get("rule") or {}).get("name", "").startswith("network.") and a.get("observed_ns")]
    lat_s = f"{min(lat) / 1e6:.1f}" if lat else "-"
    print(f"{kind:<14} {'yes' if hits else 'no':>8} {first:>15} {lat_s:>23}  {', '.join(rules)}")
    if others:
        print(f"{'':<14} {len(others)} alerts not about the attacker during this attack")
shown = 0
for a in alerts:
    if not about_attacker(a) and shown < 10:
        print(f"false alarm: {a.get('rule', {}).get('name', 'flow model')}: {a.get('summary', '')[:160]}")
        shown += 1
# Every alert about anyone else, whenever it came.
false_alarms = sum(1 for a in alerts if not about_attacker(a))
total_s = (int(periods[-1][2]) - int(periods[0][1])) / 1e9
print(f"false alarms: {false_alarms} over {total_s / 3600:.3f} hours of benign traffic "
      f"({false_alarms / (total_s / 3600):.2f} per hour)")
PY
echo "node counters (last node): $(grep -o 'counters=.*' "$DIR/node.log" | tail -1)" >&2
