# The container engine for docker/build.sh and docker/test.sh (sourced).
# Sets ENGINE (docker when its engine answers, else podman) and COMPOSE
# ("docker compose" or podman-compose). Podman comes from Debian's
# packages with runc (crun cannot run in a hybrid cgroup hierarchy), the
# CNI dnsname plugin (containers find each other by service name), and
# its default resource limits are set within this machine's hard limits
# (containers.conf, written only when absent).

engine_log() { printf '[docker] %s\n' "$*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  ENGINE=docker
  COMPOSE="docker compose"
else
  need=()
  for p in podman runc debootstrap podman-compose uidmap slirp4netns \
           golang-github-containernetworking-plugin-dnsname; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    engine_log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if [ ! -e /etc/containers/containers.conf ] || grep -q "daisi's docker/engine.sh" /etc/containers/containers.conf; then
    # Well below the hard limits (podman's defaults are above them here).
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] || [ "$nofile" -gt 16384 ] && nofile=16384
    [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<CONF
# Written by daisi's docker/engine.sh: resource limits within this
# machine's hard limits, and runc as the runtime.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
    engine_log "wrote /etc/containers/containers.conf (runc, ulimits within the hard limits)"
  fi
  ENGINE=podman
  COMPOSE=podman-compose
fi
engine_log "engine: $ENGINE ($($ENGINE --version | head -1))"
