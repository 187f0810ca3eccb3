#!/usr/bin/env bash
# What a user sees: daisi guards the lab's victim (live eBPF capture of its
# sshd, live packet capture on its interface, response on), the attacker
# scans and then brute-forces SSH, and `daisi alerts list` shows what came
# of it. Run as root after scripts/setup.sh:
#
#   lab/demo.sh [OUT_DIR]
#
# Writes OUT_DIR/alerts.jsonl and OUT_DIR/daisi.log (default: a temp dir).
# Every tool is bounded in time; traffic stays inside the lab's namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

export DAISI_LAB_PREFIX="${DAISI_LAB_PREFIX:-ddemo}" DAISI_LAB_NET="${DAISI_LAB_NET:-219}"
OUT="${1:-$(mktemp -d)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LAB=lab/lab.sh
say() { printf '\n== %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (namespaces, eBPF, nftables)" >&2; exit 1; }
cargo build --release --quiet
DAISI="$PWD/target/release/daisi"

cleanup() {
  [ -n "${NODE:-}" ] && kill "$NODE" 2>/dev/null && wait "$NODE" 2>/dev/null || true
  "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "building the lab ($DAISI_LAB_PREFIX-*: victim, client, attacker)"
"$LAB" up >/dev/null
V="$("$LAB" addr victim)"

cat >"$OUT/demo.toml" <<EOF
[node]
role = "both"
host = "victim"
shutdown_deadline = "5s"
[syscall_source]
kind = "ebpf"
comms = ["sshd"]
[packet_source]
kind = "live"
interface = "eth0"
[flow_merge]
idle_timeout = "2s"
[alert]
console = false
jsonl = "$OUT/alerts.jsonl"
cooldown = "5m"
[alert.response]
enabled = true
dry_run = false
block_for = "20s"
[[alert.response.rules]]
module = "network"
min_severity = "medium"
action = "block"
EOF
rm -f "$OUT/alerts.jsonl"

say "daisi guards the victim (config: $OUT/demo.toml)"
ip netns exec "$DAISI_LAB_PREFIX-victim" "$DAISI" run --config "$OUT/demo.toml" 2>"$OUT/daisi.log" &
NODE=$!
for _ in $(seq 100); do grep -q "node running" "$OUT/daisi.log" && break; sleep 0.1; done
grep -q "node running" "$OUT/daisi.log" || { cat "$OUT/daisi.log" >&2; exit 1; }

say "benign: the client fetches pages"
for _ in $(seq 10); do
  "$LAB" exec client curl -s -o /dev/null --max-time 2 "http://$V:8000/" || true
done

say "attack 1: nmap SYN scan of ports 1-1000"
"$LAB" exec attacker timeout 60 nmap -n -Pn -sS -T4 -p 1-1000 "$V" >/dev/null 2>&1 || true
for _ in $(seq 100); do grep -q '"module":"response"' "$OUT/alerts.jsonl" 2>/dev/null && break; sleep 0.1; done
say "is the attacker blocked? (curl from the attacker)"
if "$LAB" exec attacker curl -s -o /dev/null --max-time 2 "http://$V:8000/"; then
  echo "attacker still reaches the victim" >&2
else
  echo "attacker blocked" >&2
fi
say "waiting for the block (20 s) to expire"
sleep 20

say "attack 2: hydra SSH brute force (40 passwords)"
printf '%s\n' $(seq -f 'guess%g' 40) >"$OUT/passwords"
"$LAB" exec attacker timeout 60 hydra -l root -P "$OUT/passwords" -t 4 -I -q "ssh://$V" >/dev/null 2>&1 || true
sleep 5

say "stopping daisi (it drains: folded counts are written)"
kill -TERM "$NODE"; wait "$NODE" || true; NODE=

say "daisi alerts list --file $OUT/alerts.jsonl"
"$DAISI" alerts list --file "$OUT/alerts.jsonl"
