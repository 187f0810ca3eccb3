#!/usr/bin/env bash
# The container images end to end (CI runs this; run as root):
#
#   1. docker/build.sh builds every image (printing their sizes);
#   2. the compose stack comes up: NATS, two compute nodes, a live collector;
#   3. a collector container replays ADFA-LD attack traces into it; mid-replay
#      one compute container's process is killed (kill -9 from the host, as
#      a crash would) and its restart policy brings it back; every replayed
#      process is alerted on exactly once (alert stream, read with
#      `daisi alerts list`);
#   4. the live collector (eBPF, host PID namespace, only its capabilities)
#      captures a process started on the host, and its alert arrives;
#   5. the packages: docker/package.sh builds the .debs and installs each
#      into a container of the base image;
#   6. everything is torn down; nothing named daisi is left running.
#
# Every compute node alerts on every process here (threshold 0): what is
# checked is that each process's alert arrives once, not the model.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
docker/build.sh
source docker/engine.sh
source scripts/bench-lib.sh # free_port
ADFA=$(realpath ../shared/datasets/adfa-ld/ADFA-LD.zip)
[ -f "$ADFA" ] || { echo "ADFA-LD is missing at $ADFA" >&2; exit 1; }
TRACES=200 # docker/config/replay.toml
WORK=$(mktemp -d)
export DAISI_NATS_PORT DAISI_COLLECTOR_HOST=livehost DAISI_NATS_TOKEN
DAISI_NATS_PORT=$(free_port)
DAISI_NATS_TOKEN=$(openssl rand -hex 24)
# podman-compose names the project's network <project>_default.
NET=daisi_default
log() { printf '[docker-test] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# Every process alerts: the shipped model, named, judges live processes
# too, at threshold 0.
cat >"$WORK/override.yaml" <<'EOF'
services:
  compute-1:
    environment:
      DAISI__SYSCALL_CLASSIFIER__MODEL: /usr/share/daisi/models/syscall
      DAISI__SYSCALL_CLASSIFIER__THRESHOLD: "0.0"
  compute-2:
    environment:
      DAISI__SYSCALL_CLASSIFIER__MODEL: /usr/share/daisi/models/syscall
      DAISI__SYSCALL_CLASSIFIER__THRESHOLD: "0.0"
EOF
compose() { $COMPOSE -p daisi -f docker/compose.yaml -f "$WORK/override.yaml" "$@"; }
teardown() {
  $ENGINE rm -f daisi-replay >/dev/null 2>&1 || true
  compose down -v >/dev/null 2>&1 || true
  $ENGINE network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap teardown EXIT

# The host's view of the alert stream.
cat >"$WORK/host.toml" <<EOF
[node]
role = "compute"
[nats]
servers = ["nats://127.0.0.1:$DAISI_NATS_PORT"]
token = "$DAISI_NATS_TOKEN"
[alert.jetstream]
enabled = true
EOF
alerts() { target/release/daisi alerts list --json --config "$WORK/host.toml" 2>/dev/null || true; }
container() { # the container id of compose service $1
  $ENGINE ps -q --filter "label=com.docker.compose.service=$1" | head -1
}
wait_for() { # $1 = seconds, $2 = what, then the command that must succeed
  local until=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$until" ] || fail "timed out waiting for $what"
    sleep 1
  done
}

log "bringing the stack up"
compose up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up"; }
healthy() { $ENGINE healthcheck run "$(container "$1")" >/dev/null 2>&1; }
wait_for 60 "compute-1 healthy" healthy compute-1
wait_for 60 "compute-2 healthy" healthy compute-2
wait_for 60 "collector healthy" healthy collector

log "replaying $TRACES ADFA-LD attack traces from a collector container"
$ENGINE run -d --name daisi-replay --network "$NET" -e DAISI__NATS__TOKEN="$DAISI_NATS_TOKEN" \
  -v "$(realpath docker/config/replay.toml)":/etc/daisi/node.toml:ro \
  -v "$ADFA":/data/ADFA-LD.zip:ro \
  localhost/daisi-collector:latest run --config /etc/daisi/node.toml >/dev/null
replayed() { $ENGINE logs daisi-replay 2>&1 | grep -q 'replay finished'; }
sleep 3
victim=$(container compute-1)
pid=$($ENGINE inspect -f '{{.State.Pid}}' "$victim")
log "killing compute-1's process ($pid) mid-replay"
kill -9 "$pid"
wait_for 120 "the replay to finish" replayed
running_again() {
  [ "$($ENGINE inspect -f '{{.State.Running}}' "$victim")" = true ] \
    && [ "$($ENGINE inspect -f '{{.RestartCount}}' "$victim")" -ge 1 ]
}
wait_for 60 "compute-1 restarted by its policy" running_again
wait_for 60 "compute-1 healthy again" healthy compute-1

every_process_once() {
  alerts >"$WORK/alerts.json"
  python3 - "$WORK/alerts.json" "$TRACES" <<'EOF'
import json, sys
from collections import Counter
alerts = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
procs = Counter(a["entity"] for a in alerts
                if a.get("host") == "replayhost" and a.get("module") == "syscall")
want = int(sys.argv[2])
twice = [e for e, n in procs.items() if n > 1]
print(f"{len(procs)} of {want} replayed processes alerted; {len(twice)} twice", file=sys.stderr)
sys.exit(0 if len(procs) == want and not twice else 1)
EOF
}
wait_for 120 "an alert for every replayed process" every_process_once
$ENGINE stop -t 30 daisi-replay >/dev/null

log "live capture: a process started on the host"
cp /bin/sleep "$WORK/daisiprobe"
"$WORK/daisiprobe" 1
live_alert() { alerts | grep '"host":"livehost"' | grep -q '"name":"daisiprobe"'; }
wait_for 60 "the live process's alert" live_alert

log "packages"
DAISI_DIST_READY=1 docker/package.sh --test

log "tearing down"
teardown
trap - EXIT
left=$($ENGINE ps -a --format '{{.Names}}' | grep -c daisi || true)
[ "$left" = 0 ] || fail "$left containers left behind"
vols=$($ENGINE volume ls --format '{{.Name}}' | grep -c '^daisi_' || true)
[ "$vols" = 0 ] || fail "$vols volumes left behind"
nets=$($ENGINE network ls --format '{{.Name}}' | grep -c '^daisi_' || true)
[ "$nets" = 0 ] || fail "$nets networks left behind"
log "passed in $(( $(date +%s) - START )) s"
