#!/usr/bin/env bash
# Log throughput: lines/s from a file to NATS (a collector, pinned to one
# core, following a file to which N lines are appended at once, its
# batches stored by JetStream; timed from the append, after the node
# started), and from a file to the rules (one `both` node, lines judged
# and alerts written), against `tail | grep` on the same file as the floor
# a user would otherwise script. Three rounds, interleaved; medians. Prints
# a table (figures go in docs/logs.md).
#
#   scripts/bench-logs.sh            1,000,000 lines
#   DAISI_BENCH_LINES=3000000 scripts/bench-logs.sh
#
# The file mixes auth log lines (sshd failures and logins, sudo, cron) and
# access log lines, ~100 bytes each, with a few guessing addresses among
# many ordinary ones. All traffic stays on 127.0.0.1; each run is bounded
# in time (300 s).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
source scripts/bench-lib.sh
# What collector hosts run: no libtorch.
cargo build --release --locked -q --no-default-features --target-dir target/collector
CBIN=$PWD/target/collector/release/daisi
cargo build --release --locked -q
BIN=$PWD/target/release/daisi
N=${DAISI_BENCH_LINES:-1000000}
WORK=$(mktemp -d /var/tmp/daisi-bench-logs.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$N" "$WORK/lines.log" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
r = random.Random(16)
with open(path, "w") as f:
    for i in range(n):
        k = r.random()
        ip = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        if k < 0.02:
            ip = f"10.99.0.{r.randrange(1, 9)}"
            f.write(f"Dec  1 10:00:00 web1 sshd[{i % 60000}]: Failed password for root from {ip} port {r.randrange(1024, 65535)} ssh2\n")
        elif k < 0.25:
            f.write(f"Dec  1 10:00:00 web1 sshd[{i % 60000}]: Accepted publickey for deploy from {ip} port {r.randrange(1024, 65535)} ssh2\n")
        elif k < 0.30:
            f.write(f"Dec  1 10:00:00 web1 sudo:   deploy : TTY=pts/0 ; PWD=/srv ; USER=root ; COMMAND=/usr/bin/systemctl restart app{i % 7}\n")
        elif k < 0.40:
            f.write(f"Dec  1 10:00:00 web1 CRON[{i % 60000}]: (root) CMD (run-parts /etc/cron.hourly)\n")
        else:
            f.write(f'{ip} - - [01/Dec/2026:10:00:00 +0000] "GET /docs/page{i % 500}.html HTTP/1.1" 200 {r.randrange(100, 90000)} "-" "Mozilla/5.0"\n')
PY
BYTES=$(stat -c %s "$WORK/lines.log")

# Waits until the metrics endpoint on $1 shows counter $2 >= $N; 300 s at most.
wait_counter() {
  local port=$1 name=$2 v
  for _ in $(seq 6000); do
    v=$(curl -fs "http://127.0.0.1:$port/metrics" | awk -v n="$name" '$1 == n {print $2}')
    [ -n "$v" ] && [ "${v%.*}" -ge "$N" ] && return 0
    sleep 0.05
  done
  echo "$name did not reach $N (at ${v:-nothing})" >&2
  return 1
}

# Waits until the metrics endpoint on $1 shows the outbound queue empty
# (every batch stored by the stream).
wait_sent() {
  local port=$1 m
  for _ in $(seq 6000); do
    m=$(curl -fs "http://127.0.0.1:$port/metrics")
    if [ "$(echo "$m" | awk '$1 == "daisi_outbound_queued" || $1 == "daisi_outbound_in_flight" {s += $2} END {print s + 0}')" = 0 ] &&
       echo "$m" | grep -q '^daisi_outbound_sent_total'; then
      return 0
    fi
    sleep 0.05
  done
  echo "the outbound queue did not empty" >&2
  return 1
}

# One daisi run: $1 = label, $2 = binary, $3 = config, $4 = counter that
# reaches N when every line was read or judged (a collector's run ends once
# its outbound queue is empty too). Prints "seconds cpu_seconds rss_mib".
daisi_run() {
  local label=$1 bin=$2 cfg=$3 done_counter=$4 port pid t0 t1 c0 c1
  port=$(free_port)
  rm -rf "$WORK/registry-$label"
  printf '%s\n[metrics]\nlisten = "127.0.0.1:%s"\n' "$cfg" "$port" >"$WORK/$label.toml"
  sed -i "s|@REG@|$WORK/registry-$label|; s|@FILE@|$WORK/follow-$label.log|" "$WORK/$label.toml"
  : >"$WORK/follow-$label.log"
  taskset -c 0 "$bin" run --config "$WORK/$label.toml" >/dev/null 2>"$WORK/$label.log" &
  pid=$!
  for _ in $(seq 400); do grep -q "node running" "$WORK/$label.log" && break; sleep 0.05; done
  sleep 0.5
  c0=$(cpu_ticks "$pid")
  t0=$(date +%s.%N)
  cat "$WORK/lines.log" >>"$WORK/follow-$label.log"
  wait_counter "$port" "$done_counter" || { cat "$WORK/$label.log" >&2; exit 1; }
  case $label in collector*) wait_sent "$port" || { cat "$WORK/$label.log" >&2; exit 1; } ;; esac
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$pid")
  local rss
  rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$WORK/follow-$label.log"
  echo "$(python3 -c "print(round($t1 - $t0, 3))") $(python3 -c "print(round(($c1 - $c0) / $HZ, 2))") $rss"
}
HZ=$(getconf CLK_TCK)

SOURCE="[[log_source]]
name = \"bench\"
kind = \"file\"
paths = [\"@FILE@\"]
from_start = true
registry_dir = \"@REG@\"
poll = \"50ms\""

declare -A T CPU RSS
for round in 1 2 3; do
  # Collector: file -> JetStream.
  port=$(free_port)
  "$NATS_SERVER" -a 127.0.0.1 -p "$port" -js -sd "$WORK/js-$round" >"$WORK/nats-$round.log" 2>&1 &
  nats=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  read -r t c r < <(daisi_run "collector-$round" "$CBIN" "[node]
role = \"collector\"
host = \"bench\"
[nats]
servers = [\"nats://127.0.0.1:$port\"]
$SOURCE" daisi_log_source_lines_total)
  T[collector]+="$t "; CPU[collector]+="$c "; RSS[collector]+="$r "
  kill "$nats"; wait "$nats" 2>/dev/null || true
  rm -rf "$WORK/js-$round"

  # Both: file -> rules -> alerts.
  read -r t c r < <(daisi_run "both-$round" "$BIN" "[node]
role = \"both\"
host = \"bench\"
[alert]
console = false
jsonl = \"$WORK/alerts-$round.jsonl\"
$SOURCE" daisi_log_detector_lines_total)
  T[both]+="$t "; CPU[both]+="$c "; RSS[both]+="$r "

  # The floor: read the file and match the guesses.
  t0=$(date +%s.%N)
  # time's own file: nothing the pipeline writes can mix into its figures.
  /usr/bin/time -o "$WORK/time" -f '%U %S %M' taskset -c 0 sh -c "tail -n +1 '$WORK/lines.log' | grep -c 'Failed password' >/dev/null"
  c=$(tail -n 1 "$WORK/time" | awk '{printf "%.2f %.0f", $1 + $2, $3 / 1024}')
  t1=$(date +%s.%N)
  T[tailgrep]+="$(python3 -c "print(round($t1 - $t0, 3))") "; CPU[tailgrep]+="${c% *} "; RSS[tailgrep]+="${c#* } "
done

median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%s, %s, %s cores, %s lines (%s MB), medians of 3 rounds, each pinned to one core\n\n' \
  "$(date -u +%Y-%m-%d)" "$(uname -m)" "$(nproc)" "$N" "$((BYTES / 1000000))"
printf '| path | seconds | lines/s | CPU s | lines per CPU s | peak RSS MiB | vs tail\\|grep |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
floor=$(median "${T[tailgrep]}")
for k in collector both tailgrep; do
  t=$(median "${T[$k]}"); c=$(median "${CPU[$k]}"); r=$(median "${RSS[$k]}")
  name=$k
  [ "$k" = collector ] && name="collector: file → NATS JetStream"
  [ "$k" = both ] && name="both: file → rules → alerts"
  [ "$k" = tailgrep ] && name="tail -n +1 \\| grep -c (floor)"
  NAME="$name" python3 -c "
import os
name = os.environ['NAME']
t, c, n, f = $t, $c, $N, $floor
print(f'| {name} | {t:.2f} | {n / t:,.0f} | {c:.2f} | {n / max(c, 0.01):,.0f} | $r | {t / f:.1f}x |')"
done
