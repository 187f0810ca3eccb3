#!/usr/bin/env bash
# Coverage-guided fuzzing of every boundary where untrusted bytes come in
# (fuzz/fuzz_targets/, libFuzzer through cargo fuzz; docs/fuzzing.md).
#
#   scripts/fuzz.sh [--time SECONDS] [TARGET...]
#       fuzzes each target (default: all) for SECONDS (default 600), from
#       the committed seeds (fuzz/corpus/TARGET) and a working corpus kept
#       outside the checkout; prints a table: executions, executions per
#       second, coverage, corpus size, and findings (crashes, hangs,
#       allocations past the limit). Exits 1 when anything was found; the
#       input is in $DAISI_FUZZ_DIR/artifacts/TARGET/.
#   scripts/fuzz.sh --regress [TARGET...]
#       runs each target once over its committed seeds and regressions
#       (fuzz/regressions/TARGET: inputs that once crashed): what CI runs.
#
# Installs what it needs: cargo-fuzz (crates.io) into
# /var/cache/daisi/cargo-fuzz; needs the nightly toolchain (rustup).
# Environment: DAISI_FUZZ_DIR (default /var/cache/daisi/fuzz: build,
# working corpora, artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION="0.13.2"
FUZZ_DIR="${DAISI_FUZZ_DIR:-/var/cache/daisi/fuzz}"
TOOLS=/var/cache/daisi/cargo-fuzz
# Bounds every input must respect: 10 s per input, 256 MB per allocation,
# 2 GB in all.
LIMITS=(-timeout=10 -malloc_limit_mb=256 -rss_limit_mb=2048)

log() { printf '[fuzz] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mode=time seconds=600 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) seconds="$2"; shift 2 ;;
    --regress) mode=regress; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=()
for f in fuzz/fuzz_targets/*.rs; do all+=("$(basename "$f" .rs)"); done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || die "no target $t (targets: ${all[*]})"
done

command -v rustup >/dev/null || die "rustup not found: cargo fuzz needs the nightly toolchain"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal >&2 || die "the nightly toolchain cannot be installed here"
fi
if [ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
  cargo install -q --locked --force cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$TOOLS" >&2
fi
export PATH="$TOOLS/bin:$PATH"

log "building the fuzz targets (address sanitizer, optimized)"
export CARGO_TARGET_DIR="$FUZZ_DIR/target"
cargo +nightly fuzz build -O >&2
BIN="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"

status=0
if [ "$mode" = regress ]; then
  for t in "${targets[@]}"; do
    inputs=("fuzz/corpus/$t")
    [ -d "fuzz/regressions/$t" ] && inputs+=("fuzz/regressions/$t")
    n=$(find "${inputs[@]}" -type f | wc -l)
    [ "$n" -gt 0 ] || die "$t: no seeds in fuzz/corpus/$t"
    if "$BIN/$t" "${LIMITS[@]}" -runs=0 "${inputs[@]}" >"$FUZZ_DIR/$t.regress.log" 2>&1; then
      log "$t: $n inputs, no finding"
    else
      log "$t: FAILED on its seeds or regressions"
      tail -40 "$FUZZ_DIR/$t.regress.log" >&2
      status=1
    fi
  done
  exit $status
fi

printf '%-14s %8s %12s %10s %8s %8s %s\n' target seconds executions "exec/s" coverage corpus findings
for t in "${targets[@]}"; do
  work="$FUZZ_DIR/corpus/$t" artifacts="$FUZZ_DIR/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  logf="$FUZZ_DIR/$t.log"
  # New inputs go to the working corpus (the first directory); the
  # committed seeds are read only.
  rc=0
  "$BIN/$t" "${LIMITS[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" "fuzz/corpus/$t" >"$logf" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$logf" | tail -1; }
  execs=$(stat number_of_executed_units)
  rate=$(stat average_exec_per_sec)
  cov=$(grep -Eo 'cov: [0-9]+' "$logf" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  corpus=$(find "$work" -type f | wc -l)
  # libFuzzer stops at its first finding (exit code not 0).
  if [ "$rc" -eq 0 ]; then
    found=none
  else
    found="$(grep -Eo 'ERROR: [A-Za-z]+: [a-z-]+|deadly signal|out-of-memory|timeout' "$logf" | head -1): see $logf, $artifacts"
    status=1
  fi
  printf '%-14s %8s %12s %10s %8s %8s %s\n' "$t" "$seconds" "${execs:-0}" "${rate:-0}" "$cov" "$corpus" "$found"
done
exit $status
