#!/usr/bin/env bash
# The ATT&CK lab's victim: run by lab/attack.sh as the first process of new
# mount, PID, UTS, IPC and network namespaces (unshare -m -p -u -i -n
# --fork). It builds a root file system that is a scratch copy of this
# machine's, pivots into it and starts the host lab's services there
# (lab/host/services.sh), so that whatever a test does lands in the copy:
#
#   lab/attack/contain.sh REPO LAB ATOMICS VPORT SSHPORT PGPORT SCHEDULED
#
# - / is an overlay whose upper layer is a tmpfs of at most 2 GiB: /etc,
#   /var, /usr, homes, /tmp, the web root, everything a test writes, a
#   deletion of the whole file system included, is in memory and ends
#   with the victim; REPO (this checkout, for the services' scripts) is
#   bound read-only;
# - LAB (keys, passwords) is copied to /var/lib/daisi-attack, where the
#   services also write their logs (the node reads them through
#   /proc/<victim>/root); ATOMICS is copied to /opt/atomics;
# - /proc is the namespace's, with /proc/sys read-only and the SysRq
#   trigger (where the kernel has one) replaced by /dev/null; /sys is read-only; /dev holds only
#   null, zero, full, random, urandom, tty, its own pts and shm: no disk;
# - the network namespace has its loopback only; the host name is
#   `victim`;
# - the web application (the attacker's way in) and everything it starts
#   can never hold CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_BOOT,
#   CAP_SYS_RAWIO, CAP_MKNOD, CAP_SYSLOG, CAP_BPF, CAP_PERFMON,
#   CAP_MAC_ADMIN, CAP_MAC_OVERRIDE, CAP_WAKE_ALARM, CAP_SYS_PACCT,
#   CAP_AUDIT_CONTROL (kernel modules, the clock, reboot, raw devices,
#   eBPF).
set -euo pipefail
REPO="$1" LAB="$2" ATOMICS="$3" VPORT="$4" SSHPORT="$5" PGPORT="$6" SCHEDULED="$7"
fail() { echo "contain: $*" >&2; exit 1; }

# The scratch root.
mount -t tmpfs -o size=2g,mode=755 daisi-victim /mnt
mkdir /mnt/upper /mnt/work /mnt/root
mount -t overlay daisi-victim-root -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root
R=/mnt/root

mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
[ ! -e "$R/proc/sysrq-trigger" ] || mount --bind /dev/null "$R/proc/sysrq-trigger"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"

mount -t tmpfs -o size=1m,mode=755 daisi-victim-dev "$R/dev"
for d in null zero full random urandom tty; do
  touch "$R/dev/$d"
  mount --bind "/dev/$d" "$R/dev/$d"
done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o size=64m,mode=1777 shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"

mkdir -p "$R$REPO"
mount --bind "$REPO" "$R$REPO"
mount -o remount,bind,ro "$R$REPO"
rm -rf "$R/var/lib/daisi-attack" "$R/opt/atomics"
mkdir -p "$R/var/lib/daisi-attack" "$R/opt"
cp -a "$LAB/." "$R/var/lib/daisi-attack/"
cp -a "$ATOMICS" "$R/opt/atomics"

cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot

# What must hold before anything runs here: no disk, an inert SysRq
# trigger, read-only kernel settings, loopback only.
[ ! -e /proc/sysrq-trigger ] || [ "$(stat -c %t:%T /proc/sysrq-trigger)" = "$(stat -c %t:%T /dev/null)" ] || fail "the SysRq trigger is not covered"
if echo 1 2>/dev/null >/proc/sys/kernel/sysrq; then fail "/proc/sys is writable"; fi
if ls /dev | grep -Eq '^(sd|vd|nvme|xvd|loop|dm-)'; then fail "a disk is visible"; fi
hostname victim
echo "127.0.1.1 victim" >>/etc/hosts
ip link set lo up
[ "$(ip -o link | grep -vc ': lo:')" = 0 ] || fail "an interface other than loopback"

cd "$REPO"
export VICTIM_BOUNDING=-sys_module,-sys_time,-sys_boot,-sys_rawio,-mknod,-syslog,-bpf,-perfmon,-mac_admin,-mac_override,-wake_alarm,-sys_pacct,-audit_control
exec lab/host/services.sh /var/lib/daisi-attack "$VPORT" "$SSHPORT" "$PGPORT" "$SCHEDULED"
