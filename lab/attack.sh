#!/usr/bin/env bash
# The ATT&CK lab: Atomic Red Team's Linux tests run against a contained
# victim that a daisi node has learnt, scored by `daisi eval attack`.
# Run as root (eBPF, namespaces).
#
#   lab/attack.sh run OUT --atomics DIR [--learn 240s] [--benign 120s]
#                 [--only T1234,T1053.003] [--rules DIR] [--shown DIR]
#                 [--test-timeout 60s]
#       The victim is the host lab's services (a web application with a
#       command-injection flaw, sshd, PostgreSQL, a scheduler, cron and
#       package runs when learning lasts 4 minutes or more) in new mount,
#       PID, UTS, IPC and network namespaces, on a scratch copy of this
#       machine's root file system, without a disk, kernel settings,
#       kernel modules or the clock (lab/attack/contain.sh). The node
#       learns it for --learn while the everyday workload runs, then
#       judges --benign of the same kinds of work in another order, with
#       other parameters and timing (false alarms). Then, the workload
#       going on, every Linux sh/bash test of the atomics folder DIR (any
#       Atomic Red Team checkout's atomics/), or those of --only: its
#       prerequisites checked and fetched (in the victim, unwatched), its
#       command run from a shell spawned through the web application's
#       flaw (the application runs as root: that shell is the root shell
#       tests with elevation_required need), bounded by --test-timeout,
#       its clean-up run; a control (an empty command) first shows what
#       the harness alone raises. A test that cannot run here (another
#       executor, a kernel module, a prerequisite, a missing tool, no
#       network) is "not run" with why. --rules loads Sigma rules (a
#       directory) into the node; --shown names the atomics folder the
#       detectors were developed beside (the report splits the others).
#       Writes OUT/alerts.jsonl, OUT/phases.jsonl, OUT/report.json and
#       OUT/report.md (`daisi eval attack`), and the node's log; prints the
#       report.
#
# Every process it starts ends with it; nothing of this machine changes
# (the victim's writes land in its scratch root, in memory); traffic stays
# in the victim's network namespace.
#
# Environment: DAISI_BIN (default target/release/daisi, else debug).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[attack-lab] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

. lab/host/lib.sh

meta() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print("" if v is None else v)' "$1" "$2"; }
json_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

# As root in the victim's namespaces and root, not under the watched
# service: prerequisites and clean-ups.
in_victim() { nsenter -t "$INIT" -a -r -w -- "$@"; }

# The host pid of the process the victim knows as $1.
host_pid() {
  local s
  for s in /proc/[0-9]*/status; do
    if awk -v n="$1" '$1 == "NSpid:" && NF == 3 && $3 == n { found = 1 } END { exit !found }' "$s" 2>/dev/null; then
      local h="${s#/proc/}"
      h="${h%/status}"
      [ "$(readlink "/proc/$h/ns/pid")" = "$VICTIM_PIDNS" ] && echo "$h" && return 0
    fi
  done
  return 1
}

phase_line() { # name kind start end [extra json fields]
  printf '{"phase":%s,"kind":"%s","start_ns":%s,"end_ns":%s%s}\n' "$(json_str "$1")" "$2" "$3" "$4" "${5:-}" >>"$OUT/phases.jsonl"
}

# Why a test that ran did not really run here, from its error output.
why_not_run_from() {
  python3 - "$1" <<'EOF'
import re, sys
err = open(sys.argv[1], errors="replace").read()
net = re.search(r"Could not resolve host|Temporary failure in name resolution|Name or service not known|Network is unreachable|No address associated", err)
tool = re.search(r"(?:^|: )([A-Za-z0-9_.+-]+): (?:command )?not found", err, re.M)
if tool:
    print("missing tool: " + tool.group(1))
elif net:
    print("no network (the victim has loopback only)")
EOF
}

# One test: $1 = its id (a directory of $TESTS).
run_test() {
  local id="$1" hd="$TESTS/$1" vd="/var/lib/daisi-attack/t/$1"
  local technique name executor why extra
  technique="$(meta "$hd/meta.json" technique)"
  name="$(meta "$hd/meta.json" name)"
  executor="$(meta "$hd/meta.json" executor)"
  why="$(meta "$hd/meta.json" why_not_run)"
  extra=",\"technique\":$(json_str "$technique"),\"name\":$(json_str "$name"),\"elevation_required\":$(meta "$hd/meta.json" elevation_required | tr TF tf)"
  local t0
  t0=$(now_ns)
  if [ -z "$why" ] && [ -n "$VICTIM_DOWN" ]; then
    why="the victim did not survive $VICTIM_DOWN"
  fi
  if [ -z "$why" ] && ! { mkdir -p "$VROOT$vd" && cp "$hd"/*.sh "$VROOT$vd/"; } 2>/dev/null; then
    # A test before it filled the victim's scratch space (2 GiB).
    VICTIM_DOWN="${VICTIM_DOWN:-a test that filled its scratch space}"
    why="the victim did not survive $VICTIM_DOWN"
  fi
  # Prerequisites: checked, fetched where they can be, checked again.
  local n pre_exec
  n="$(meta "$hd/meta.json" prerequisites)"
  pre_exec="$(meta "$hd/meta.json" prerequisite_executor)"
  if [ -z "$why" ]; then
    local i
    for i in $(seq "$n"); do
      if ! in_victim timeout 60 "$pre_exec" "$vd/pre_${i}_check.sh" >/dev/null 2>&1; then
        in_victim timeout 120 "$pre_exec" "$vd/pre_${i}_get.sh" >/dev/null 2>&1 || true
        if ! in_victim timeout 60 "$pre_exec" "$vd/pre_${i}_check.sh" >/dev/null 2>&1; then
          why="prerequisite: $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["descriptions"][int(sys.argv[2]) - 1])' "$hd/meta.json" "$i")"
          break
        fi
      fi
    done
  fi
  if [ -n "$why" ]; then
    log "$id: not run: $why"
    phase_line "$id" attack "$t0" "$t0" "$extra,\"ran\":false,\"why_not_run\":$(json_str "$why")"
    return 0
  fi
  # The test's first process, started through the flaw, waits to be
  # known by its host pid before it runs the command.
  cat 2>/dev/null >"$VROOT$vd/run.sh" <<EOF || true
#!/bin/sh
echo \$\$ > $vd/pid
i=0
while [ ! -e $vd/go ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i + 1)); done
cd /tmp
exec timeout -k 5 $TEST_TIMEOUT $executor -c "\$(cat $vd/command.sh)" > $vd/out 2> $vd/err < /dev/null
EOF
  [ -s "$VROOT$vd/run.sh" ] || {
    VICTIM_DOWN="${VICTIM_DOWN:-a test that filled its scratch space}"
    log "$id: not run: the victim did not survive $VICTIM_DOWN"
    phase_line "$id" attack "$t0" "$t0" "$extra,\"ran\":false,\"why_not_run\":$(json_str "the victim did not survive $VICTIM_DOWN")"
    return 0
  }
  inject "sh $vd/run.sh >/dev/null 2>&1 &"
  local k
  for k in $(seq 200); do [ -s "$VROOT$vd/pid" ] && break; sleep 0.05; done
  local w=""
  [ -s "$VROOT$vd/pid" ] && w="$(host_pid "$(cat "$VROOT$vd/pid")")" || true
  if [ -z "$w" ]; then
    log "$id: not run: the harness's shell did not start through the flaw"
    phase_line "$id" attack "$t0" "$(now_ns)" "$extra,\"ran\":false,\"why_not_run\":\"the harness's shell did not start\""
    return 0
  fi
  t0=$(now_ns)
  touch "$VROOT$vd/go" 2>/dev/null || true
  # Until it ends (a zombie: the application it was reparented to does
  # not reap).
  for k in $(seq $(((TEST_TIMEOUT + 10) * 10))); do
    grep -qs '^State:[[:space:]]*[RSDT]' "/proc/$w/status" || break
    sleep 0.1
  done
  # Past the node's batching and an incident's update time.
  sleep 4
  local t1
  t1=$(now_ns)
  why="$(why_not_run_from "$VROOT$vd/err" 2>/dev/null || true)"
  if [ -n "$why" ]; then
    log "$id: not run: $why"
    phase_line "$id" attack "$t0" "$t1" "$extra,\"pids\":[$w],\"ran\":false,\"why_not_run\":$(json_str "$why")"
  else
    log "$id: ran ($name)"
    phase_line "$id" attack "$t0" "$t1" "$extra,\"pids\":[$w],\"ran\":true"
  fi
  if [ -s "$VROOT$vd/cleanup.sh" ]; then
    in_victim timeout 60 "$executor" "$vd/cleanup.sh" >/dev/null 2>&1 || true
  fi
  if ! get_ok; then
    VICTIM_DOWN="$id"
    log "the victim's application is down after $id: the tests after it are not run"
  elif [ "$(df --output=avail -k "$VROOT/" 2>/dev/null | tail -1)" -lt 65536 ] 2>/dev/null; then
    VICTIM_DOWN="$id (it filled the victim's scratch space)"
    log "the victim's scratch space is full after $id: the tests after it are not run"
  fi
}

get_ok() { "${NETNS[@]}" curl -fs -o /dev/null --max-time 10 "http://127.0.0.1:$VPORT/" 2>/dev/null; }

run() {
  OUT="" ATOMICS="" RULES="" SHOWN=""
  local learn=240 benign_s=120 only=""
  TEST_TIMEOUT=60
  while [ $# -gt 0 ]; do
    case "$1" in
      --atomics) ATOMICS="$2"; shift 2 ;;
      --learn) learn="${2%s}"; shift 2 ;;
      --benign) benign_s="${2%s}"; shift 2 ;;
      --only) only="$2"; shift 2 ;;
      --rules) RULES="$2"; shift 2 ;;
      --shown) SHOWN="$2"; shift 2 ;;
      --test-timeout) TEST_TIMEOUT="${2%s}"; shift 2 ;;
      -*) die "unknown option $1" ;;
      *) OUT="$1"; shift ;;
    esac
  done
  [ -n "$OUT" ] && [ -n "$ATOMICS" ] || die "usage: lab/attack.sh run OUT --atomics DIR [--learn 240s] [--benign 120s] [--only T1234,...] [--rules DIR] [--shown DIR] [--test-timeout 60s]"
  [ "$(id -u)" -eq 0 ] || die "the ATT&CK lab needs root (eBPF, namespaces)"
  [ -n "$BIN" ] || die "no daisi binary: build it (cargo build --release) or set DAISI_BIN"
  [ -d "$ATOMICS" ] || die "no atomics folder at $ATOMICS"
  [ -z "$RULES" ] || [ -e "$RULES" ] || die "no Sigma rules at $RULES"
  for t in python3 curl unshare nsenter pivot_root setpriv ip bash timeout ssh ssh-keygen psql pg_dump openssl; do
    command -v "$t" >/dev/null || die "missing tool: $t (run scripts/setup.sh)"
  done
  ATOMICS="$(cd "$ATOMICS" && pwd)"
  mkdir -p "$OUT"
  OUT="$(cd "$OUT" && pwd)"
  rm -rf "$OUT/alerts.jsonl" "$OUT/phases.jsonl" "$OUT/report.json" "$OUT/report.md" "$OUT/baselines" "$OUT/log-registry" "$OUT/tests" "$OUT/lab"
  TESTS="$OUT/tests"
  mkdir -p "$TESTS"
  # The tests, and a control: an empty command through the same harness.
  "$BIN" eval atomics --atomics "$ATOMICS" --path-in-victim /opt/atomics ${only:+--only "$only"} >"$OUT/plan.jsonl"
  local ids
  mapfile -t ids < <(python3 lab/attack/tests.py "$TESTS" <"$OUT/plan.jsonl")
  [ "${#ids[@]}" -gt 0 ] || die "no Linux tests in $ATOMICS${only:+ for $only}"
  mkdir -p "$TESTS/control"
  printf '{"id":"control","technique":"control","name":"an empty command (the harness alone)","executor":"sh","elevation_required":false,"why_not_run":null,"prerequisite_executor":"sh","prerequisites":0,"descriptions":[]}\n' >"$TESTS/control/meta.json"
  echo "true" >"$TESTS/control/command.sh"
  : >"$TESTS/control/cleanup.sh"
  log "${#ids[@]} tests of $ATOMICS"

  VPORT=$(free_port)
  SSHPORT=$(free_port)
  PGPORT=$(free_port)
  PIDS=()
  VICTIM=""
  VICTIM_DOWN=""
  trap 'kill "${PIDS[@]}" 2>/dev/null || true; [ -z "$VICTIM" ] || kill -KILL "$VICTIM" 2>/dev/null || true; wait 2>/dev/null || true' EXIT

  LAB="$OUT/lab"
  mkdir -p "$LAB"
  chmod 700 "$LAB"
  ssh-keygen -q -t ed25519 -N '' -f "$LAB/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -f "$LAB/admin_key"
  echo "$SUPPORT_PASSWORD" >"$LAB/support.password"
  echo "$PG_PASSWORD" >"$LAB/postgres.password"
  local scheduled=0
  if [ "$learn" -ge 240 ]; then
    scheduled=1
    busybox crond --help >/dev/null 2>&1 || die "busybox has no crond (run scripts/setup.sh: busybox-static)"
  fi
  unshare -m -p -u -i -n --fork --kill-child --propagation private \
    lab/attack/contain.sh "$PWD" "$LAB" "$ATOMICS" "$VPORT" "$SSHPORT" "$PGPORT" "$scheduled" 2>"$OUT/victim.log" &
  VICTIM=$!
  NETNS=(nsenter "--net=/proc/$VICTIM/ns/net")
  for _ in $(seq 300); do get_ok && break; sleep 0.1; done
  get_ok || die "the victim did not start: $(tail -5 "$OUT/victim.log")"
  INIT="$(pgrep -P "$VICTIM" | head -1)"
  VROOT="/proc/$INIT/root"
  VICTIM_PIDNS="$(readlink "/proc/$INIT/ns/pid")"
  for _ in $(seq 100); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
  sql "CREATE TABLE items (id serial PRIMARY KEY, name text, at timestamptz DEFAULT now())" >/dev/null \
    || die "PostgreSQL did not start: $(tail -5 "$VROOT/var/lib/daisi-attack/postgres.log")"
  admin uptime >/dev/null || die "sshd did not take the administrator's key"

  local vl="$VROOT/var/lib/daisi-attack"
  cat >"$OUT/node.toml" <<EOF
[node]
role = "both"
host = "attack-lab"
[syscall_source]
kind = "ebpf"
pids = [$VICTIM]
[syscall_batcher]
max_wait = "200ms"
[baseline]
dir = "$OUT/baselines"
learn_for = "${learn}s"
save_every = "5s"
[alert]
console = false
jsonl = "$OUT/alerts.jsonl"
cooldown = "3s"
[[log_source]]
name = "lab"
kind = "file"
paths = ["$vl/auth.log", "$vl/sudo.log", "$vl/cron.log", "$vl/dpkg.log", "$vl/access.log", "$VROOT/srv/daisi-lab-pg/log/postgresql.json"]
from_start = true
registry_dir = "$OUT/log-registry"
EOF
  if [ -n "$RULES" ]; then
    printf '[rules]\npaths = [%s]\n' "$(json_str "$(cd "$(dirname "$RULES")" && pwd)/$(basename "$RULES")")" >>"$OUT/node.toml"
  fi
  "$BIN" run --config "$OUT/node.toml" 2>"$OUT/node.log" &
  local node=$!
  PIDS+=($node)
  for _ in $(seq 300); do grep -q "node running" "$OUT/node.log" && break; sleep 0.1; done
  grep -q "node running" "$OUT/node.log" || { cat "$OUT/node.log" >&2; die "the node did not start"; }

  log "learning for ${learn}s (everyday workload)"
  admin_sessions &
  local admins=$!
  PIDS+=($admins)
  local t0
  t0=$(now_ns)
  benign $(($(date +%s) + learn + 2))
  phase_line learning learning "$t0" "$(now_ns)"
  kill "$admins" 2>/dev/null || true
  log "judged benign for ${benign_s}s (the same kinds of work, varied)"
  admin_sessions_varied &
  PIDS+=($!)
  t0=$(now_ns)
  benign_varied $(($(date +%s) + benign_s))
  phase_line benign benign "$t0" "$(now_ns)"
  # The workload goes on while the tests run.
  benign_varied $(($(date +%s) + 3 * 3600)) &
  PIDS+=($!)
  run_test control
  local id
  for id in "${ids[@]}"; do
    run_test "$id"
  done
  kill -TERM "$node"
  wait "$node" || true
  local shown=()
  [ -z "$SHOWN" ] || shown=(--shown "$SHOWN")
  "$BIN" eval attack --alerts "$OUT/alerts.jsonl" --phases "$OUT/phases.jsonl" \
    --report "$OUT/report.json" --markdown "$OUT/report.md" "${shown[@]}"
}

case "${1:-}" in
  run) shift; run "$@" ;;
  *) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
