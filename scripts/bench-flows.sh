#!/usr/bin/env bash
# Flow-extraction benchmark: packets/s of `daisi flows` against peers on the
# same capture, in one run, with ratios against NFStream; flow counts, peak
# memory (RSS) and the flow table's peak occupancy. Run as root (the lab
# capture is made in network namespaces; see lab/lab.sh).
#
#   scripts/bench-flows.sh [PCAP]   default: a lab capture of ~1M packets,
#                                   made once in $DAISI_BENCH_DIR
#   DAISI_BENCH_AGAINST=REV scripts/bench-flows.sh
#                                   also the collector build of git revision
#                                   REV, interleaved in the same rounds (the
#                                   code, not the machine, changed), and
#                                   whether its CSV is the same
#
# Peers: NFStream (PyPI, in the environment scripts/setup.sh makes), tshark's
# conversation statistics (Debian), the Python cicflowmeter (PyPI, needs
# Python >= 3.12; measured once on the first 20,000 packets only, it is
# ~100x slower). Each tool runs 3 times, interleaved; the median wall time counts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
export DEBIAN_FRONTEND=noninteractive
if ! command -v tshark >/dev/null; then
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends tshark >/dev/null
fi
DIR="${DAISI_BENCH_DIR:-/var/tmp/daisi-bench}"
mkdir -p "$DIR"
NF_PY="${DAISI_NFSTREAM_VENV:-/var/cache/daisi/nfstream-venv}/bin/python"
CIC_VENV="${DAISI_CIC_VENV:-/var/cache/daisi/cicflowmeter-venv}"
PY312=""
for p in /root/.pyenv/versions/3.1[2-9]*/bin/python3 python3.12 python3.13; do
  if "$p" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then
    PY312=$(command -v "$p")
    break
  fi
done
if [ -n "$PY312" ] && [ ! -x "$CIC_VENV/bin/cicflowmeter" ]; then
  "$PY312" -m venv "$CIC_VENV" && "$CIC_VENV/bin/pip" install -q --disable-pip-version-check cicflowmeter==0.5.0 >&2 || true
fi

cargo build --release --locked -q
BIN=$PWD/target/release/daisi
# What collector hosts run: no libtorch (whose loading alone costs ~0.5 s
# and ~100 MiB here).
cargo build --release --locked -q --no-default-features --target-dir target/collector
CBIN=$PWD/target/collector/release/daisi
AGAINST="${DAISI_BENCH_AGAINST:-}"
if [ -n "$AGAINST" ]; then
  # Its own worktree and target directory: the checkout stays as it is.
  ABIN_SRC="$DIR/against"
  git worktree remove --force "$ABIN_SRC" 2>/dev/null || rm -rf "$ABIN_SRC"
  git worktree add -q --detach "$ABIN_SRC" "$AGAINST"
  (cd "$ABIN_SRC" && cargo build --release --locked -q --no-default-features --target-dir "$DIR/against-target")
  git worktree remove --force "$ABIN_SRC"
  ABIN="$DIR/against-target/release/daisi"
fi
PCAP="${1:-$DIR/bench.pcap}"
[ -s "$PCAP" ] || lab/lab.sh bench-pcap "$PCAP" >&2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

PACKETS=$(tcpdump -nn -r "$PCAP" 2>/dev/null | wc -l)
# cicflowmeter takes a directory (its -f mode fails in 0.5); 20,000 packets.
SMALL_N=20000
mkdir -p "$WORK/small" "$WORK/cic"
tcpdump -nn -r "$PCAP" -c "$SMALL_N" -w "$WORK/small/first.pcap" 2>/dev/null

# run NAME CMD...: wall seconds and peak RSS (KiB) of one run -> $WORK/NAME.times
run() {
  local name="$1"
  shift
  python3 - "$@" >>"$WORK/$name.times" <<'EOF'
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
dt = time.perf_counter() - t
if r.returncode != 0:
    sys.exit(f"{sys.argv[1:]} failed with {r.returncode}")
print(f"{dt:.4f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
EOF
}
median() { sort -n "$WORK/$1.times" | awk '{a[NR]=$1; m[NR]=$2} END {print a[int((NR+1)/2)], m[int((NR+1)/2)]}'; }

for round in 1 2 3; do
  echo "[bench] round $round" >&2
  run daisi "$BIN" flows "$PCAP" --idle-timeout 120s --csv "$WORK/daisi.csv"
  run daisi_collector "$CBIN" flows "$PCAP" --idle-timeout 120s --csv "$WORK/daisi-c.csv"
  if [ -n "$AGAINST" ]; then
    run daisi_against "$ABIN" flows "$PCAP" --idle-timeout 120s --csv "$WORK/daisi-a.csv"
  fi
  run nfstream "$NF_PY" scripts/nfstream_flows.py "$PCAP" "$WORK/nfstream.csv" --idle 120
  run tshark tshark -n -r "$PCAP" -q -z conv,tcp -z conv,udp
  if [ "$round" = 1 ] && [ -x "$CIC_VENV/bin/cicflowmeter" ]; then
    run cicflowmeter "$CIC_VENV/bin/cicflowmeter" -d "$WORK/small" -c "$WORK/cic"
  fi
done

read -r d_s d_rss < <(median daisi)
read -r dc_s dc_rss < <(median daisi_collector)
read -r n_s n_rss < <(median nfstream)
read -r t_s t_rss < <(median tshark)
d_flows=$(($(wc -l <"$WORK/daisi.csv") - 1))
n_flows=$(($(wc -l <"$WORK/nfstream.csv") - 1))
summary=$("$BIN" flows "$PCAP" --idle-timeout 120s)
peak_open=$(sed -n 's/.*at most \([0-9]*\) open at once.*/\1/p' <<<"$summary")

rate() { python3 -c "print(f'{$1 / $2:,.0f}')"; }
ratio() { python3 -c "print(f'{($1 / $2) / ($3 / $4):.1f}')"; }
echo
echo "capture: $PCAP, $PACKETS packets; 2-core machine; median of 3 runs (wall time, whole command)"
echo
echo "| tool | packets/s | x NFStream | flows | peak RSS |"
echo "| --- | --- | --- | --- | --- |"
echo "| daisi flows, collector build (release, no libtorch) | $(rate "$PACKETS" "$dc_s") | $(ratio "$PACKETS" "$dc_s" "$PACKETS" "$n_s") | $d_flows | $((dc_rss / 1024)) MiB |"
if [ -n "$AGAINST" ]; then
  read -r da_s da_rss < <(median daisi_against)
  same=$(cmp -s "$WORK/daisi-c.csv" "$WORK/daisi-a.csv" && echo "same CSV" || echo "CSV DIFFERS")
  echo "| daisi flows, collector build at $AGAINST ($same) | $(rate "$PACKETS" "$da_s") | $(ratio "$PACKETS" "$da_s" "$PACKETS" "$n_s") | $(($(wc -l <"$WORK/daisi-a.csv") - 1)) | $((da_rss / 1024)) MiB |"
fi
echo "| daisi flows, full build (release, loads libtorch) | $(rate "$PACKETS" "$d_s") | $(ratio "$PACKETS" "$d_s" "$PACKETS" "$n_s") | $d_flows | $((d_rss / 1024)) MiB |"
echo "| NFStream 6.6 | $(rate "$PACKETS" "$n_s") | 1.0 | $n_flows | $((n_rss / 1024)) MiB |"
echo "| tshark -z conv,tcp -z conv,udp | $(rate "$PACKETS" "$t_s") | $(ratio "$PACKETS" "$t_s" "$PACKETS" "$n_s") | – | $((t_rss / 1024)) MiB |"
if [ -s "$WORK/cicflowmeter.times" ]; then
  read -r c_s c_rss < <(median cicflowmeter)
  echo "| cicflowmeter 0.5 (first $SMALL_N packets, one run) | $(rate "$SMALL_N" "$c_s") | $(ratio "$SMALL_N" "$c_s" "$PACKETS" "$n_s") | – | $((c_rss / 1024)) MiB |"
else
  echo "| cicflowmeter | not run: needs Python >= 3.12 | | | |"
fi
echo
echo "daisi's flow table held at most $peak_open flows at once ($summary)."
