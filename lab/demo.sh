#!/usr/bin/env bash
# The live demo (what `scripts/run.sh` runs with no arguments): daisi
# guards a small victim in network namespaces of its own and you watch it
# work. Run as root after scripts/setup.sh and a release build:
#
#   lab/demo.sh [OUT_DIR]
#
# - The traffic lab (lab/lab.sh: victim, client and attacker namespaces on
#   a private bridge) with its services, and a web application with a
#   command-injection flaw (lab/host/victim.py) on the victim.
# - A `both` node in the victim's namespace: live eBPF capture of the web
#   application and sshd, live packet capture on the victim's interface,
#   baselines learning for DAISI_DEMO_LEARN (default 60 s) while the
#   client browses, response on (blocks); its alerts and incidents are
#   printed as they arrive, and its web console is forwarded to
#   http://127.0.0.1:8470 on this machine.
# - Then real attacks from the attacker's namespace: an nmap SYN scan, a
#   shell spawned through the web application's flaw (it reads
#   /etc/passwd and looks around), a hydra SSH brute force and web
#   probing (dirb), whose source is blocked.
# - The node keeps running (the console stays up) until Ctrl-C, or an
#   hour: it drains its pipeline and everything the demo started ends.
#
# Writes OUT_DIR/alerts.jsonl and OUT_DIR/daisi.log (default: a temporary
# directory). Every tool is bounded in time; traffic stays inside the
# lab's namespaces (and the console's forward on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

export DAISI_LAB_PREFIX="${DAISI_LAB_PREFIX:-ddemo}" DAISI_LAB_NET="${DAISI_LAB_NET:-219}"
OUT="${1:-$(mktemp -d)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LAB=lab/lab.sh
LEARN="${DAISI_DEMO_LEARN:-60}"
LEARN="${LEARN%s}"
CONSOLE_PORT="${DAISI_DEMO_CONSOLE_PORT:-8470}"
say() { printf '\n== %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (namespaces, eBPF, nftables)" >&2; exit 1; }
DAISI="${DAISI_BIN:-$PWD/target/release/daisi}"
[ -x "$DAISI" ] || { echo "demo: no daisi at $DAISI (cargo build --release)" >&2; exit 1; }
for t in socat curl nmap hydra python3; do
  command -v "$t" >/dev/null || { echo "demo: missing $t (run scripts/setup.sh)" >&2; exit 1; }
done

PIDS=()
NODE=""
cleanup() {
  [ -z "$NODE" ] || { kill -TERM "$NODE" 2>/dev/null && wait "$NODE" 2>/dev/null || true; }
  [ ${#PIDS[@]} -eq 0 ] || kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building the lab ($DAISI_LAB_PREFIX-*: victim, client, attacker)"
"$LAB" up >/dev/null
V="$("$LAB" addr victim)"
NS="$DAISI_LAB_PREFIX-victim"

# The web application with the flaw, on the victim's lab address only.
mkdir -p "$OUT/www"
echo "<h1>demo shop</h1>" >"$OUT/www/index.html"
ip netns exec "$NS" python3 lab/host/victim.py 8080 "$OUT/www" "$OUT/access.log" "$V" >"$OUT/web.log" 2>&1 &
WEB=$!
PIDS+=("$WEB")
for _ in $(seq 100); do "$LAB" exec client curl -fs -o /dev/null --max-time 1 "http://$V:8080/" && break; sleep 0.1; done

cat >"$OUT/demo.toml" <<EOF
[node]
role = "both"
host = "victim"
shutdown_deadline = "5s"
[syscall_source]
kind = "ebpf"
pids = [$WEB]
comms = ["sshd"]
[packet_source]
kind = "live"
interface = "eth0"
[flow_merge]
idle_timeout = "2s"
[baseline]
dir = "$OUT/baselines"
learn_for = "${LEARN}s"
[alert]
console = true
jsonl = "$OUT/alerts.jsonl"
[console]
listen = "127.0.0.1:$CONSOLE_PORT"
[alert.response]
enabled = true
dry_run = false
block_for = "2m"
[[alert.response.rules]]
module = "network"
min_severity = "medium"
action = "block"
EOF
rm -f "$OUT/alerts.jsonl"

say "daisi guards the victim (config: $OUT/demo.toml; log: $OUT/daisi.log)"
ip netns exec "$NS" "$DAISI" run --config "$OUT/demo.toml" 2>"$OUT/daisi.log" &
NODE=$!
for _ in $(seq 150); do grep -q "node running" "$OUT/daisi.log" && break; sleep 0.1; done
grep -q "node running" "$OUT/daisi.log" || { cat "$OUT/daisi.log" >&2; exit 1; }
# The console, from this machine's loopback into the victim's.
socat "TCP-LISTEN:$CONSOLE_PORT,bind=127.0.0.1,reuseaddr,fork" \
  "EXEC:ip netns exec $NS socat STDIO TCP\\:127.0.0.1\\:$CONSOLE_PORT" 2>/dev/null &
PIDS+=($!)
say "the console: http://127.0.0.1:$CONSOLE_PORT"

# The client's everyday browsing, the whole time (at most an hour).
"$LAB" exec client timeout 3600 bash -c "
  for i in \$(seq 20000); do
    curl -s -o /dev/null --max-time 3 http://$V:8080/
    curl -s -o /dev/null --max-time 3 http://$V:8080/time
    curl -s -o /dev/null --max-time 3 'http://$V:8080/ping?host=db\$((i % 5)).shop'
    curl -s -o /dev/null --max-time 3 http://$V:8000/docs/page\$(( (i % 20) + 1 )).html
    sleep 0.3
  done" >/dev/null 2>&1 &
PIDS+=($!)

(
  say "baselines learning for ${LEARN} s while the client browses"
  sleep "$LEARN"
  sleep 5
  say "attack 1: nmap SYN scan of ports 1-1000 (a forged source could name anyone: its block is refused)"
  "$LAB" exec attacker timeout 60 nmap -n -Pn -sS -T4 -p 1-1000 "$V" >/dev/null 2>&1 || true
  sleep 5
  say "attack 2: a shell through the web application's flaw (/ping?host=...)"
  "$LAB" exec attacker curl -s -o /dev/null --max-time 10 \
    "http://$V:8080/ping?host=localhost%3B%20sh%20-c%20%27id%3B%20uname%20-a%3B%20cat%20/etc/passwd%3B%20ls%20-la%20/root%27" || true
  sleep 5
  say "attack 3: hydra SSH brute force (120 passwords)"
  printf '%s\n' $(seq -f 'guess%g' 120) >"$OUT/passwords"
  "$LAB" exec attacker timeout 30 hydra -l root -P "$OUT/passwords" -t 4 -I -q "ssh://$V" >/dev/null 2>&1 || true
  sleep 5
  say "attack 4: web probing (dirb: the attacker's real address, so it is blocked)"
  "$LAB" attack web_probe >/dev/null 2>&1 || true
  sleep 5
  if "$LAB" exec attacker curl -s -o /dev/null --max-time 2 "http://$V:8000/"; then
    say "the attacker still reaches the victim"
  else
    say "the attacker is blocked (nftables in the victim's namespace, for 2 minutes)"
  fi
  say "done: the console is at http://127.0.0.1:$CONSOLE_PORT; Ctrl-C stops daisi (it drains) and the lab"
) &
PIDS+=($!)

# Until Ctrl-C (or an hour).
timeout 3600 tail --pid="$NODE" -f /dev/null || true
