# Shared by lab/host.sh and lab/attack.sh (sourced): the workload's tools.
# Every request and loop is bounded in count and time. Commands that
# reach the victim's services run through "${NETNS[@]}" (empty when the
# services share this machine's loopback; `nsenter --net=...` when they
# have a network namespace of their own).
NETNS=()
SUPPORT_PASSWORD=support1
PG_PASSWORD=postgres
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10)

now_ns() { date +%s%N; }
# The daisi binary: $DAISI_BIN, else a release build, else a debug one.
BIN="${DAISI_BIN:-}"
if [ -z "$BIN" ]; then
  for b in target/release/daisi target/debug/daisi; do
    [ -x "$b" ] && BIN="$PWD/$b" && break
  done
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

# A query to the lab's database, bounded.
sql() { PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=10 timeout 20 "${NETNS[@]}" psql -qAt -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "$1"; }
# One administrator session over SSH (key login), bounded.
admin() { timeout 20 "${NETNS[@]}" ssh "${SSH_OPTS[@]}" -o BatchMode=yes -i "$LAB/admin_key" -p "$SSHPORT" labadmin@127.0.0.1 "$1"; }
# The administrator's everyday commands, one session every 1.5 s in turn,
# until killed (at most an hour).
ADMIN_COMMANDS=("uptime" "df -h" "ps aux" "sudo -n uptime" "ls -la /var/log" "dpkg -l bash" "id" "tail -n 5 /var/log/daisi-lab/app.log")
admin_sessions() {
  local i
  for i in $(seq 2400); do
    admin "${ADMIN_COMMANDS[$((i % ${#ADMIN_COMMANDS[@]}))]}" >/dev/null 2>&1 || true
    sleep 1.5
  done
}
# The same programs in another order, with other arguments and at other
# times (every 0 to 3.9 s), until killed (at most an hour).
admin_sessions_varied() {
  local cmds=("df -h /" "df -i" "uptime -p" "id -un" "ps -ef" "ls -l /var/log" "dpkg -l coreutils" "tail -n 20 /var/log/daisi-lab/app.log" "sudo -n uptime -p" "ps aux --sort=-%cpu")
  local i end=$(($(date +%s) + 3600))
  for i in $(seq 4000); do
    [ "$(date +%s)" -lt "$end" ] || break
    admin "${cmds[$((RANDOM % ${#cmds[@]}))]}" >/dev/null 2>&1 || true
    sleep "$((RANDOM % 8 / 2)).$((RANDOM % 10))"
  done
}

# One request to the victim, bounded.
get() { "${NETNS[@]}" curl -s -o /dev/null --max-time 25 "http://127.0.0.1:$VPORT$1" || true; }
# A command through the flaw; MARKERS keeps what was sent (it identifies
# the attack's processes when scored).
MARKERS=()
inject() {
  MARKERS+=("$1")
  get "/ping?host=$(urlencode "localhost; $1")"
}
# The JSON fields `markers` and `users` of an attack phase, from MARKERS
# and ATTACK_USERS.
ATTACK_USERS=()
attribution_json() {
  python3 -c 'import json, sys; n = int(sys.argv[1]); print(",\"markers\":%s,\"users\":%s" % (json.dumps(sys.argv[2:2 + n]), json.dumps(sys.argv[2 + n:])))' \
    "${#MARKERS[@]}" "${MARKERS[@]}" "${ATTACK_USERS[@]}"
}

# The benign workload: the application's everyday requests, with variety,
# until $1 (epoch seconds), at most 20 requests per second.
benign() {
  local until="$1" n=0
  while [ "$(date +%s)" -lt "$until" ] && [ $n -lt 100000 ]; do
    case $((RANDOM % 8)) in
      0) get / ;;
      1) get /list ;;
      2) get /time ;;
      3) get "/page?name=index.html" ;;
      4) get "/page?name=about.html" ;;
      5) get "/ping?host=host$((RANDOM % 50)).example" ;;
      6) sql "INSERT INTO items (name) VALUES ('item$RANDOM')" >/dev/null 2>&1 || true ;;
      7) sql "SELECT count(*), max(at) FROM items" >/dev/null 2>&1 || true ;;
    esac
    n=$((n + 1))
    sleep 0.05
  done
}

# The same kinds of work as benign, not its script: other weights, other
# parameters (a page that is not there, a browser's favicon, other hosts,
# other queries and names), bursts and pauses (0 to 0.4 s), until $1
# (epoch seconds).
benign_varied() {
  local until="$1" n=0
  while [ "$(date +%s)" -lt "$until" ] && [ $n -lt 100000 ]; do
    case $((RANDOM % 12)) in
      0 | 1) get / ;;
      2) get /list ;;
      3) get /time ;;
      4) get "/page?name=about.html" ;;
      5) get "/page?name=contact.html" ;;
      6) get "/ping?host=db$((RANDOM % 20)).internal" ;;
      7) get "/ping?host=10.0.$((RANDOM % 4)).$((RANDOM % 250))" ;;
      8) sql "INSERT INTO items (name) VALUES ('order-$RANDOM-$((RANDOM % 7))')" >/dev/null 2>&1 || true ;;
      9) sql "SELECT name FROM items ORDER BY id DESC LIMIT $((RANDOM % 10 + 1))" >/dev/null 2>&1 || true ;;
      10) sql "SELECT count(*) FROM items WHERE at > now() - interval '$((RANDOM % 60 + 1)) minutes'" >/dev/null 2>&1 || true ;;
      11) get /favicon.ico ;;
    esac
    n=$((n + 1))
    sleep "0.$((RANDOM % 5))"
  done
}
