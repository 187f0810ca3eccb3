#!/usr/bin/env bash
# The traffic lab: labelled network traffic from real tools, in network
# namespaces of our own. Run as root.
#
#   lab/lab.sh generate OUT [--scale small|full]
#       builds the lab, runs every phase, tears it down; writes
#       OUT/<phase>.pcap (captured on the victim's interface) and
#       OUT/labels.csv (pcap,kind,attacker).
#   lab/lab.sh bench-pcap OUT.pcap
#       one capture of about a million packets for scripts/bench-flows.sh
#   lab/lab.sh up | down        build / remove the namespaces and services
#   lab/lab.sh exec ROLE CMD…   run CMD in ROLE's namespace (victim, client, attacker)
#   lab/lab.sh addr ROLE        print ROLE's address
#
# Topology: a bridge in namespace <prefix>-sw joins <prefix>-victim,
# <prefix>-client and <prefix>-attacker by veth pairs (each host's side is
# `eth0`). Addresses 10.<net>.0.0/24 exist only inside these namespaces and
# there is no default route anywhere, so no packet can leave the lab. IPv6
# is off (router solicitations are noise) and so are offloads (else captures
# hold 64 KB pseudo-packets). The victim runs an HTTP server (python3), sshd
# and a socat echo service.
#
# Labels: a flow is malicious when one of its ends is the attacker's
# address; its kind is the phase's. The client's benign traffic runs during
# every phase, so each capture holds both classes. Every tool is bounded in
# count and wrapped in `timeout`.
#
# Environment: DAISI_LAB_PREFIX (default dlab) and DAISI_LAB_NET (default 213)
# let several labs coexist (tests use their own).
set -euo pipefail

P="${DAISI_LAB_PREFIX:-dlab}"
NET="${DAISI_LAB_NET:-213}"
STATE="/run/daisi-lab-$P"
declare -A ADDR=([victim]="10.$NET.0.10" [client]="10.$NET.0.20" [attacker]="10.$NET.0.66")

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
in_ns() { local ns="$1"; shift; ip netns exec "$P-$ns" "$@"; }

require() {
  [ "$(id -u)" -eq 0 ] || die "the lab needs root (network namespaces)"
  local missing=()
  for t in ip ethtool python3 /usr/sbin/sshd socat tcpdump nmap hping3 hydra dirb curl ssh-keygen; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (run scripts/setup.sh)"
}

down() {
  if [ -d "$STATE" ]; then
    for f in "$STATE"/*.pid; do
      [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
  fi
  for ns in victim client attacker sw; do
    if ip netns list | grep -qw "$P-$ns"; then
      # Anything still running inside goes with the namespace.
      ip netns pids "$P-$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
      ip netns del "$P-$ns"
    fi
  done
  rm -rf "$STATE"
}

up() {
  require
  down
  mkdir -p "$STATE"
  ip netns add "$P-sw"
  in_ns sw ip link add br0 type bridge
  in_ns sw ip link set br0 up
  in_ns sw ip link set lo up
  for h in victim client attacker; do
    ip netns add "$P-$h"
    in_ns "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    in_ns sw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add "$P-$h" netns "$P-sw" type veth peer name eth0 netns "$P-$h"
    in_ns sw ip link set "$P-$h" master br0 up
    in_ns "$h" ip link set lo up
    in_ns "$h" ip addr add "${ADDR[$h]}/24" dev eth0
    in_ns "$h" ip link set eth0 up
    in_ns "$h" ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true
    in_ns sw ethtool -K "$P-$h" tso off gso off gro off >/dev/null 2>&1 || true
  done
  services
  # Wait until the victim answers on every service.
  for _ in $(seq 100); do
    if in_ns client curl -s -o /dev/null --max-time 1 "http://${ADDR[victim]}:8000/" &&
      in_ns client bash -c "exec 3<>/dev/tcp/${ADDR[victim]}/22" 2>/dev/null &&
      in_ns client bash -c "exec 3<>/dev/tcp/${ADDR[victim]}/7" 2>/dev/null; then
      log "up: victim ${ADDR[victim]}, client ${ADDR[client]}, attacker ${ADDR[attacker]} (namespaces $P-*)"
      return 0
    fi
    sleep 0.1
  done
  die "the victim's services did not come up"
}

services() {
  local www="$STATE/www"
  mkdir -p "$www/docs"
  printf '<html><body><h1>victim</h1><a href="docs/">docs</a></body></html>\n' >"$www/index.html"
  for i in $(seq 1 20); do
    head -c $((500 * i)) /dev/zero | tr '\0' 'a' >"$www/docs/page$i.html"
  done
  head -c 1048576 /dev/zero >"$www/download.bin"
  in_ns victim python3 -m http.server 8000 --bind "${ADDR[victim]}" --directory "$www" \
    >"$STATE/http.log" 2>&1 &
  echo $! >"$STATE/http.pid"

  mkdir -p /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$STATE/ssh_host_key" <<<y >/dev/null 2>&1
  cat >"$STATE/sshd_config" <<EOF
ListenAddress ${ADDR[victim]}
HostKey $STATE/ssh_host_key
PidFile $STATE/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100
MaxAuthTries 6
LogLevel QUIET
EOF
  in_ns victim /usr/sbin/sshd -f "$STATE/sshd_config"

  in_ns victim socat TCP-LISTEN:7,bind="${ADDR[victim]}",fork,reuseaddr EXEC:cat \
    >/dev/null 2>&1 &
  echo $! >"$STATE/echo.pid"
}

# Benign client traffic: page views, downloads and echo exchanges, N rounds.
benign() {
  local n="$1" v="${ADDR[victim]}"
  in_ns client timeout 120 bash -c '
    for i in $(seq 1 '"$n"'); do
      curl -s -o /dev/null --max-time 5 "http://'"$v"':8000/docs/page$(( (i % 20) + 1 )).html"
      if [ $((i % 10)) -eq 0 ]; then
        curl -s -o /dev/null --max-time 10 "http://'"$v"':8000/download.bin"
      fi
      if [ $((i % 4)) -eq 0 ]; then
        printf "hello %s\n" "$i" | socat -t 1 - TCP:'"$v"':7 >/dev/null
      fi
      # Small responses are benign too: the front page, a missing icon (404).
      if [ $((i % 3)) -eq 0 ]; then
        curl -s -o /dev/null --max-time 5 "http://'"$v"':8000/"
      fi
      if [ $((i % 7)) -eq 0 ]; then
        curl -s -o /dev/null --max-time 5 "http://'"$v"':8000/favicon.ico"
      fi
      sleep 0.05
    done' || true
}

# One phase: capture on the victim, benign traffic in the background, the
# attack (if any) from the attacker, a pause for late replies, stop.
phase() {
  local out="$1" kind="$2" benign_n="$3"
  shift 3
  local pcap="$out/$kind.pcap" err="$STATE/tcpdump.err"
  : >"$err"
  # Started directly (not through a shell function) so that $! is tcpdump
  # itself; it writes its file out on SIGTERM.
  ip netns exec "$P-victim" tcpdump -i eth0 -nn -U -s 262144 --time-stamp-precision=nano \
    -w "$pcap" ip 2>"$err" &
  local dump=$!
  for _ in $(seq 100); do grep -q "listening on" "$err" && break; sleep 0.05; done
  local t0=$SECONDS
  benign "$benign_n" &
  local bg=$!
  if [ $# -gt 0 ]; then
    (cd "$STATE" && in_ns attacker timeout 60 "$@" >"$STATE/$kind.log" 2>&1) || true
  fi
  wait "$bg"
  sleep 2
  kill -TERM "$dump"
  wait "$dump" 2>/dev/null || true
  local attacker="${ADDR[attacker]}"
  [ "$kind" = benign ] && attacker=""
  echo "$kind.pcap,$kind,$attacker" >>"$out/labels.csv"
  log "phase $kind: $(stat -c %s "$pcap") bytes in $((SECONDS - t0)) s"
}

generate() {
  local out="$1" scale="${2:-full}"
  local syns benign_n udp_ports tcp_ports words
  case "$scale" in
    small) syns=1000 benign_n=30 udp_ports=1-20 tcp_ports=1-200 words=60 ;;
    full) syns=10000 benign_n=800 udp_ports=1-100 tcp_ports=1-1024 words=400 ;;
    *) die "--scale is small or full" ;;
  esac
  up
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  echo "pcap,kind,attacker" >"$out/labels.csv"
  local v="${ADDR[victim]}"
  local pw=(123456 password admin root toor letmein qwerty 12345678 dragon monkey
    secret changeme welcome passw0rd master hunter2)
  if [ "$scale" = full ]; then
    # 64 distinct guesses: more login attempts, more connections.
    local base=("${pw[@]}")
    for n in 1 2 3; do pw+=("${base[@]/%/$n}"); done
  fi
  printf '%s\n' "${pw[@]}" >"$STATE/passwords"
  # A web-probe word list: common names, none of which exist on the victim
  # but index.html and docs.
  python3 -c "
import itertools
base = ['admin','login','wp','backup','config','test','old','api','cgi','dev','db','upload','images','private','secret','tmp','php','data','user','shell']
ext = ['','.php','.bak','.old','.txt','.zip','.sql','.cgi','.asp','.jsp','.html','.conf','.log','.inc','1','2','_old','-dev','.tar','.gz']
words = ['index.html','docs'] + [b+e for b,e in itertools.product(base, ext)]
print('\n'.join(words[:$words]))" >"$STATE/words"

  phase "$out" benign "$benign_n"
  phase "$out" nmap_syn 20 nmap -n -Pn -sS -T4 -p "$tcp_ports" "$v"
  phase "$out" nmap_connect 20 nmap -n -Pn -sT -T4 -p "$tcp_ports" "$v"
  phase "$out" nmap_udp 20 nmap -n -Pn -sU -T4 --max-retries 1 -p "$udp_ports" "$v"
  phase "$out" hping_syn 20 hping3 -q -S -p 80 -i u200 -c "$syns" "$v"
  phase "$out" hydra_ssh 20 hydra -l root -P "$STATE/passwords" -t 4 -I -q "ssh://$v"
  phase "$out" web_probe 20 dirb "http://$v:8000/" "$STATE/words" -S -r -z 5
  down
  log "wrote $out ($(($(wc -l <"$out/labels.csv") - 1)) captures)"
}

# One large capture for flow-extraction benchmarks (about a million
# packets): bulk downloads from the client, a full-range SYN scan and a
# 60,000-SYN flood from the attacker (below hping3's source-port reuse), at
# the same time.
bench_pcap() {
  local out="$1" v="${ADDR[victim]}" err="$STATE/tcpdump.err"
  up
  : >"$err"
  ip netns exec "$P-victim" tcpdump -i eth0 -nn -U -s 262144 --time-stamp-precision=nano \
    -w "$out" ip 2>"$err" &
  local dump=$!
  for _ in $(seq 100); do grep -q "listening on" "$err" && break; sleep 0.05; done
  in_ns client timeout 600 bash -c '
    for i in $(seq 1 720); do
      curl -s -o /dev/null --max-time 10 "http://'"$v"':8000/download.bin"
      curl -s -o /dev/null --max-time 5 "http://'"$v"':8000/docs/page$(( (i % 20) + 1 )).html"
    done' &
  local bg=$!
  in_ns attacker timeout 300 nmap -n -Pn -sS -T4 -p 1-65535 "$v" >/dev/null 2>&1 || true
  in_ns attacker timeout 300 hping3 -q -S -p 80 -i u100 -c 60000 "$v" >/dev/null 2>&1 || true
  wait "$bg" || true
  sleep 2
  kill -TERM "$dump"
  wait "$dump" 2>/dev/null || true
  down
  log "wrote $out ($(stat -c %s "$out") bytes)"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) up ;;
  down) down ;;
  generate)
    [ $# -ge 1 ] || die "usage: lab/lab.sh generate OUT [--scale small|full]"
    out="$1"
    shift
    scale=full
    if [ "${1:-}" = "--scale" ]; then scale="${2:-}"; fi
    require
    trap down EXIT
    generate "$out" "$scale"
    ;;
  exec)
    [ $# -ge 2 ] || die "usage: lab/lab.sh exec ROLE CMD..."
    role="$1"
    shift
    in_ns "$role" "$@"
    ;;
  addr) echo "${ADDR[${1:?role}]}" ;;
  bench-pcap)
    [ $# -ge 1 ] || die "usage: lab/lab.sh bench-pcap OUT.pcap"
    require
    trap down EXIT
    bench_pcap "$(realpath -m "$1")"
    ;;
  *)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
