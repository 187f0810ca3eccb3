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
#   lab/lab.sh attack KIND [--scale small|full]
#                               one attack kind against the lab that is up
#   lab/lab.sh benign [N]       N rounds of the client's benign traffic
#   lab/lab.sh addr ROLE        print ROLE's address
#
# Topology: a bridge in namespace <prefix>-sw joins <prefix>-victim,
# <prefix>-client and <prefix>-attacker by veth pairs (each host's side is
# `eth0`). Addresses 10.<net>.0.0/24 exist only inside these namespaces and
# there is no default route anywhere, so no packet can leave the lab. IPv6
# is off (router solicitations are noise) and so are offloads (else captures
# hold 64 KB pseudo-packets). The victim runs an HTTP server with a login
# form (lab/victim_http.py), sshd (with a lab user, `<prefix>-u`, whose
# password is in the guessing list and whose shell is /bin/true), a DNS
# server (dnsmasq, answering every name under lab.test) and a socat echo
# service.
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
LAB_USER="$P-u"
# The lab user's password: the 43rd guess of the list (generate).
LAB_PASSWORD="secret2"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
in_ns() { local ns="$1"; shift; ip netns exec "$P-$ns" "$@"; }

require() {
  [ "$(id -u)" -eq 0 ] || die "the lab needs root (network namespaces)"
  local missing=()
  for t in ip ethtool python3 /usr/sbin/sshd socat tcpdump nmap hping3 hydra dirb curl ssh-keygen \
    slowhttptest dnsmasq dig useradd chpasswd; do
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
  if id "$LAB_USER" >/dev/null 2>&1; then userdel "$LAB_USER" 2>/dev/null || true; fi
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
      in_ns client bash -c "exec 3<>/dev/tcp/${ADDR[victim]}/7" 2>/dev/null &&
      in_ns client dig +short +tries=1 +time=1 "@${ADDR[victim]}" www.lab.test | grep -q .; then
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
  # Started by `ip netns exec` itself (not the in_ns function, which would
  # fork a shell) so that $! is the service and `down` stops it.
  ip netns exec "$P-victim" env LAB_LOGIN="admin:$LAB_PASSWORD" \
    python3 "$HERE/victim_http.py" "${ADDR[victim]}" 8000 "$www" >"$STATE/http.log" 2>&1 &
  echo $! >"$STATE/http.pid"

  ip netns exec "$P-victim" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="${ADDR[victim]}" --address="/lab.test/${ADDR[victim]}" \
    --pid-file="$STATE/dnsmasq.pid" --log-facility="$STATE/dnsmasq.log" >/dev/null 2>&1 &
  echo $! >"$STATE/dns.pid"

  mkdir -p /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$STATE/ssh_host_key" <<<y >/dev/null 2>&1
  # The lab user: a password to guess, the client's key, no shell.
  useradd -M -d / -s /bin/true "$LAB_USER"
  echo "$LAB_USER:$LAB_PASSWORD" | chpasswd
  ssh-keygen -q -t ed25519 -N '' -f "$STATE/client_key" <<<y >/dev/null 2>&1
  cp "$STATE/client_key.pub" "$STATE/authorized_keys"
  cat >"$STATE/sshd_config" <<EOF
ListenAddress ${ADDR[victim]}
HostKey $STATE/ssh_host_key
AuthorizedKeysFile $STATE/authorized_keys
PidFile $STATE/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100
MaxAuthTries 3
LogLevel INFO
EOF
  # Its log (bare messages, no syslog header) in sshd.log, the web
  # server's access log in http.log: what daisi's log sources read.
  in_ns victim /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"

  ip netns exec "$P-victim" socat TCP-LISTEN:7,bind="${ADDR[victim]}",fork,reuseaddr EXEC:cat \
    >/dev/null 2>&1 &
  echo $! >"$STATE/echo.pid"
}

# Benign client traffic, N rounds: page views, 1 MB downloads (some at a
# limited rate, a few seconds each), a browser-like client keeping one
# connection for several pages, the front page, a missing icon (404), a
# login, everyday DNS names, SSH logins with a key, echo exchanges.
benign() {
  local n="$1" v="${ADDR[victim]}" key="$STATE/client_key"
  in_ns client timeout 120 bash -c '
    v='"$v"' key='"$key"' user='"$LAB_USER"' pw='"$LAB_PASSWORD"'
    ua="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    names=(www mail intranet wiki git docs calendar files chat status)
    for i in $(seq 1 '"$n"'); do
      curl -s -o /dev/null --max-time 5 "http://$v:8000/docs/page$(( (i % 20) + 1 )).html"
      if [ $((i % 10)) -eq 0 ]; then
        curl -s -o /dev/null --max-time 10 "http://$v:8000/download.bin"
      fi
      if [ $((i % 25)) -eq 5 ]; then
        curl -s -o /dev/null --max-time 10 --limit-rate 400k "http://$v:8000/download.bin"
      fi
      if [ $((i % 5)) -eq 2 ]; then
        curl -s -A "$ua" -H "Accept: text/html" --max-time 10 -o /dev/null -o /dev/null \
          -o /dev/null -o /dev/null "http://$v:8000/" "http://$v:8000/docs/" \
          "http://$v:8000/docs/page$(( (i % 20) + 1 )).html" "http://$v:8000/favicon.ico"
      fi
      if [ $((i % 4)) -eq 0 ]; then
        printf "hello %s\n" "$i" | socat -t 1 - TCP:$v:7 >/dev/null
      fi
      if [ $((i % 3)) -eq 0 ]; then
        curl -s -o /dev/null --max-time 5 "http://$v:8000/"
      fi
      if [ $((i % 7)) -eq 0 ]; then
        curl -s -o /dev/null --max-time 5 "http://$v:8000/favicon.ico"
      fi
      if [ $((i % 6)) -eq 1 ]; then
        dig +short +tries=1 +time=1 "@$v" "${names[$(( i % 10 ))]}.lab.test" \
          "${names[$(( (i + 3) % 10 ))]}.lab.test" >/dev/null
      fi
      if [ $((i % 40)) -eq 29 ]; then
        curl -s -o /dev/null --max-time 5 -d "user=admin&pass=$pw" "http://$v:8000/login"
      fi
      if [ $((i % 100)) -eq 9 ]; then
        ssh -q -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no \
          -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 "$user@$v" true 2>/dev/null || true
      fi
      sleep 0.05
    done' || true
}

# One phase: capture on the victim, benign traffic in the background, the
# attack (if any) from the attacker, a pause for late replies, stop.
phase() {
  local out="$1" kind="$2" benign_n="$3"
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
  if [ "$kind" != benign ]; then
    (cd "$STATE" && attack "$kind" >"$STATE/$kind.log" 2>&1) || true
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

# The attack kinds, in the order `generate` runs them.
KINDS=(nmap_syn nmap_connect nmap_udp hping_syn hydra_ssh web_probe slow_http hydra_http
  ssh_success dns_tunnel)

# The attacks' sizes (set_scale) and their inputs (attack_inputs).
set_scale() {
  case "$1" in
    small) SYNS=1000 BENIGN_N=30 UDP_PORTS=1-20 TCP_PORTS=1-200 WORDS=60 SLOW=50 NAMES=100 ;;
    full) SYNS=10000 BENIGN_N=800 UDP_PORTS=1-100 TCP_PORTS=1-1024 WORDS=400 SLOW=200 NAMES=300 ;;
    *) die "--scale is small or full" ;;
  esac
}

attack_inputs() {
  # 64 guesses (common passwords, then each with 1, 2 and 3 appended): a
  # connection per few tries. The lab user's password is the 43rd.
  local pw=(123456 password admin root toor letmein qwerty 12345678 dragon monkey
    secret changeme welcome passw0rd master hunter2)
  local base=("${pw[@]}")
  for n in 1 2 3; do pw+=("${base[@]/%/$n}"); done
  printf '%s\n' "${pw[@]}" >"$STATE/passwords"
  # A web-probe word list: common names, none of which exist on the victim
  # but index.html and docs.
  python3 -c "
import itertools
base = ['admin','login','wp','backup','config','test','old','api','cgi','dev','db','upload','images','private','secret','tmp','php','data','user','shell']
ext = ['','.php','.bak','.old','.txt','.zip','.sql','.cgi','.asp','.jsp','.html','.conf','.log','.inc','1','2','_old','-dev','.tar','.gz']
words = ['index.html','docs'] + [b+e for b,e in itertools.product(base, ext)]
print('\n'.join(words[:$WORDS]))" >"$STATE/words"
  # DNS tunnelling-like lookups: data (random bytes, base32) in the names.
  python3 -c "
import base64, random
r = random.Random(213)
for i in range($NAMES):
    data = base64.b32encode(r.randbytes(30)).decode().rstrip('=').lower()
    print(f'{data[:24]}.{data[24:]}.{i:04x}.t.lab.test')" >"$STATE/tunnel"
}

# One attack from the attacker's namespace, bounded in time (60 s) and
# count. hydra waits 2 s (-w) after sshd closes a connection
# (MaxAuthTries), not its default 32.
attack() {
  local v="${ADDR[victim]}"
  local -a cmd
  case "$1" in
    nmap_syn) cmd=(nmap -n -Pn -sS -T4 -p "$TCP_PORTS" "$v") ;;
    nmap_connect) cmd=(nmap -n -Pn -sT -T4 -p "$TCP_PORTS" "$v") ;;
    nmap_udp) cmd=(nmap -n -Pn -sU -T4 --max-retries 1 -p "$UDP_PORTS" "$v") ;;
    hping_syn) cmd=(hping3 -q -S -p 80 -i u200 -c "$SYNS" "$v") ;;
    hydra_ssh) cmd=(hydra -l root -P "$STATE/passwords" -t 4 -w 2 -I -q "ssh://$v") ;;
    web_probe) cmd=(dirb "http://$v:8000/" "$STATE/words" -S -r -z 5) ;;
    slow_http) cmd=(slowhttptest -B -c "$SLOW" -r 25 -i 5 -s 8192 -l 20 -u "http://$v:8000/login") ;;
    hydra_http) cmd=(hydra -l admin -P "$STATE/passwords" -t 4 -f -I -q -s 8000 "$v"
      http-post-form "/login:user=^USER^&pass=^PASS^:F=invalid login") ;;
    ssh_success) cmd=(hydra -l "$LAB_USER" -P "$STATE/passwords" -t 4 -w 2 -f -I -q "ssh://$v") ;;
    dns_tunnel) cmd=(dig +short +tries=1 +time=1 "@$v" -f "$STATE/tunnel") ;;
    *) die "no attack kind $1 (kinds: ${KINDS[*]})" ;;
  esac
  (cd "$STATE" && in_ns attacker timeout 60 "${cmd[@]}")
}

generate() {
  local out="$1"
  set_scale "${2:-full}"
  up
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  echo "pcap,kind,attacker" >"$out/labels.csv"
  attack_inputs
  phase "$out" benign "$BENIGN_N"
  for kind in "${KINDS[@]}"; do phase "$out" "$kind" 20; done
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
  attack)
    [ $# -ge 1 ] || die "usage: lab/lab.sh attack KIND [--scale small|full]"
    [ -d "$STATE" ] || die "the lab is not up (lab/lab.sh up)"
    kind="$1"
    set_scale "$([ "${2:-}" = --scale ] && echo "${3:-}" || echo small)"
    attack_inputs
    attack "$kind"
    ;;
  benign) benign "${1:-30}" ;;
  bench-pcap)
    [ $# -ge 1 ] || die "usage: lab/lab.sh bench-pcap OUT.pcap"
    require
    trap down EXIT
    bench_pcap "$(realpath -m "$1")"
    ;;
  *)
    sed -n '2,18p' "$0" >&2
    exit 2
    ;;
esac
