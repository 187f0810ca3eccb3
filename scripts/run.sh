#!/usr/bin/env bash
# Installs what is missing, builds daisi, and runs it on the embedded
# default (role "both": collector and compute in one process, no broker).
#
#   scripts/run.sh                  the live demo (lab/demo.sh, as root): a
#                                   small victim in namespaces learnt for a
#                                   minute, real attacks, incidents printed
#                                   as they arrive, the console on
#                                   http://127.0.0.1:8470; Ctrl-C stops it
#   scripts/run.sh --config FILE    a node with your configuration
#   scripts/run.sh --replay PATH    ADFA-LD's attack traces (ADFA-LD.zip or
#                                   its directory) replayed through the node
#   scripts/run.sh -- ARGS...       `daisi run ARGS...`
#
# Ctrl-C drains the node's pipeline and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked
case "${1:-}" in
  "")
    exec lab/demo.sh ;;
  --replay)
    [ -n "${2:-}" ] || { echo "usage: scripts/run.sh --replay ADFA-LD.zip" >&2; exit 2; }
    [ -e "$2" ] || { echo "no ADFA-LD at $2 (docs/models.md says where to get it)" >&2; exit 2; }
    DAISI__SYSCALL_SOURCE__PATH="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")" \
      exec target/release/daisi run --config config/both.toml ;;
  --)
    shift
    exec target/release/daisi run "$@" ;;
  *)
    exec target/release/daisi run "$@" ;;
esac
