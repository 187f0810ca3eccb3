# Helpers shared by the benchmark scripts (sourced).

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# $1 = a node's log, $2 = counter name: its value in the final "node
# stopped" line ("?" when the node did not log one).
counter() {
  python3 - "$1" "$2" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
m = re.findall(r'counters=(\{.*?\})\s*$', text, re.M)
print(json.loads(m[-1]).get(sys.argv[2], 0) if m else "?")
PY
}

# CPU time of a process so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The recent NATS server scripts/setup.sh installs (JetStream partitions
# need >= 2.11).
NATS_SERVER="${DAISI_NATS_SERVER:-/var/cache/daisi/nats-server}"
