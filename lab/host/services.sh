#!/usr/bin/env bash
# The host lab's victim services, run by lab/host.sh inside a mount
# namespace of their own (unshare -m): nothing here touches this machine's
# files.
#
#   lab/host/services.sh LAB VPORT SSHPORT PGPORT [SCHEDULED]
#
# LAB holds what lab/host.sh prepared (the SSH host key, the
# administrator's public key, the weak passwords) and receives the
# services' logs. In the namespace:
#
# - /root/.ssh, /home, the web root, the application's log directory and
#   the database's directory are scratch tmpfs; /etc is an overlay whose
#   changes land on a tmpfs: /etc/passwd, /etc/group and /etc/shadow with
#   two lab accounts, `labadmin` (key login only) and `support` (a weak
#   password), sudoers, /etc/cron.d;
# - sshd on 127.0.0.1:SSHPORT (password and key logins), its log in
#   LAB/auth.log; sudo (the administrator may run uptime and df as root),
#   its log in LAB/sudo.log;
# - PostgreSQL on 127.0.0.1:PGPORT, its superuser with a weak password,
#   its log JSON lines in /srv/daisi-lab-pg/log/postgresql.json;
# - a scheduler: a backup of the web root and a database dump every 5 s,
#   the application's log rotated, the access log rotated by copy and
#   truncation every 2 minutes;
# - with SCHEDULED 1 (lab/host.sh sets it when the learning phase is
#   long enough to hold a few of their runs), a cron daemon (busybox
#   crond, its log in LAB/cron.log) running a clean-up every minute and a
#   package run every 2 minutes: a small package installed and removed
#   by dpkg in a scratch root, its log in LAB/dpkg.log;
# - last, this shell execs the web application (lab/host/victim.py), so
#   every service above is its child: a node watching its pid watches them.
#   Its access log (Combined Log Format) is LAB/access.log.
#
# Every loop is bounded (an hour at most) and ends when the victim does.
set -euo pipefail
LAB="$1" VPORT="$2" SSHPORT="$3" PGPORT="$4" SCHEDULED="${5:-0}"
WEAK_SSH="$(cat "$LAB/support.password")"
WEAK_PG="$(cat "$LAB/postgres.password")"

for d in /root/.ssh /srv/daisi-lab /var/log/daisi-lab /home /run/daisi-lab; do
  mkdir -p "$d"
  mount -t tmpfs -o size=8m,mode=755 lab "$d"
done
mkdir -p /srv/daisi-lab-pg
mount -t tmpfs -o size=256m,mode=755 lab /srv/daisi-lab-pg
echo "<h1>daisi lab</h1>" >/srv/daisi-lab/index.html
echo "about" >/srv/daisi-lab/about.html

# /etc as an overlay: what the lab changes there (its accounts, sudoers,
# the attacks' cron lines) lands in a scratch upper layer over the
# machine's /etc. (Files bind-mounted one by one come loose when the
# machine replaces them, as useradd does by renaming /etc/passwd.)
WEAK_HASH="$(openssl passwd -6 "$WEAK_SSH")"
mkdir -p /run/daisi-lab/etc/upper /run/daisi-lab/etc/work
mount -t overlay lab-etc -o lowerdir=/etc,upperdir=/run/daisi-lab/etc/upper,workdir=/run/daisi-lab/etc/work /etc
mkdir -p /etc/cron.d

# The lab's accounts.
{
  echo "labadmin:x:3101:3101:lab administrator:/home/labadmin:/bin/bash"
  echo "support:x:3102:3102:lab support account:/home/support:/bin/bash"
} >>/etc/passwd
printf 'labadmin:x:3101:\nsupport:x:3102:\n' >>/etc/group
{
  echo "labadmin:*:20000:0:99999:7:::"
  echo "support:$WEAK_HASH:20000:0:99999:7:::"
} >>/etc/shadow
mkdir -p /home/labadmin/.ssh /home/support
cp "$LAB/admin_key.pub" /home/labadmin/.ssh/authorized_keys
chmod 700 /home/labadmin/.ssh
chmod 600 /home/labadmin/.ssh/authorized_keys
chown -R 3101:3101 /home/labadmin
chown -R 3102:3102 /home/support

# sshd: loopback only, its own configuration and host key.
mkdir -p /run/sshd
cat >/run/daisi-lab/sshd_config <<EOF
Port $SSHPORT
ListenAddress 127.0.0.1
HostKey $LAB/ssh_host_ed25519_key
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys
MaxStartups 64
EOF
# Its log (stderr, -e: there is no syslog daemon here) gets syslog
# headers, as /var/log/auth.log has them: LAB/auth.log.
/usr/sbin/sshd -D -e -f /run/daisi-lab/sshd_config 2> >(python3 -u lab/host/logs.py stamp host-lab sshd >>"$LAB/auth.log") &

# sudo: the administrator may run a few commands as root; every use and
# refusal goes to sudo's own log file, LAB/sudo.log.
cat >/etc/sudoers <<EOF
Defaults !syslog, logfile="$LAB/sudo.log", loglinelen=0, !lecture
root ALL=(ALL:ALL) ALL
labadmin ALL=(root) NOPASSWD: /usr/bin/uptime, /usr/bin/df
EOF
chmod 440 /etc/sudoers

# PostgreSQL: a cluster on the scratch directory, loopback only.
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
chown postgres:postgres /srv/daisi-lab-pg
echo "$WEAK_PG" >/srv/daisi-lab-pg/pw
chown postgres /srv/daisi-lab-pg/pw
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
as_postgres "$PGBIN/initdb" -D /srv/daisi-lab-pg/data -U postgres --pwfile=/srv/daisi-lab-pg/pw \
  -A scram-sha-256 >"$LAB/initdb.log" 2>&1
rm -f /srv/daisi-lab-pg/pw
# Its log: JSON lines (jsonlog) in /srv/daisi-lab-pg/log, connections
# and refused passwords included; the node outside reads it through
# /proc/<victim>/root.
as_postgres "$PGBIN/postgres" -D /srv/daisi-lab-pg/data -c listen_addresses=127.0.0.1 \
  -c port="$PGPORT" -c unix_socket_directories=/srv/daisi-lab-pg \
  -c logging_collector=on -c log_destination=jsonlog -c log_directory=/srv/daisi-lab-pg/log \
  -c log_filename=postgresql.log -c log_connections=on >"$LAB/postgres.log" 2>&1 &

# Scheduled jobs: cron (busybox's crond, logging to stderr; the lines get
# syslog headers as sshd's do) and its crontab: a clean-up every minute,
# a package run every 2 minutes (dpkg installing and removing a package
# of its own in a scratch root, logging to LAB/dpkg.log).
if [ "$SCHEDULED" = 1 ]; then
  mkdir -p /run/daisi-lab/pkg/DEBIAN /run/daisi-lab/pkg/usr/share/daisi-lab-report \
    /run/daisi-lab/dpkg-root/var/lib/dpkg/info /run/daisi-lab/dpkg-root/var/lib/dpkg/updates \
    /run/daisi-lab/crontabs
  touch /run/daisi-lab/dpkg-root/var/lib/dpkg/status /run/daisi-lab/dpkg-root/var/lib/dpkg/available
  cat >/run/daisi-lab/pkg/DEBIAN/control <<EOF
Package: daisi-lab-report
Version: 1.0
Architecture: all
Maintainer: daisi host lab <lab@localhost>
Description: the host lab's report templates
EOF
  echo "report" >/run/daisi-lab/pkg/usr/share/daisi-lab-report/README
  dpkg-deb --build -Zgzip /run/daisi-lab/pkg /run/daisi-lab/report.deb >/dev/null
  cat >/run/daisi-lab/package-run <<EOF
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
dpkg --root=/run/daisi-lab/dpkg-root --log=$LAB/dpkg.log -i /run/daisi-lab/report.deb >/dev/null 2>&1
dpkg --root=/run/daisi-lab/dpkg-root --log=$LAB/dpkg.log -r daisi-lab-report >/dev/null 2>&1
EOF
  chmod 755 /run/daisi-lab/package-run
  cat >/run/daisi-lab/crontabs/root <<EOF
* * * * * find /tmp -maxdepth 1 -name 'daisi-lab-*.old' -mmin +10 -delete
*/2 * * * * /run/daisi-lab/package-run
EOF
  busybox crond -f -c /run/daisi-lab/crontabs -L /dev/stderr \
    2> >(python3 -u lab/host/logs.py stamp host-lab crond >>"$LAB/cron.log") &
fi

# The scheduler; $$ is the victim once this shell execs it.
(
  for i in $(seq 720); do
    kill -0 $$ 2>/dev/null || exit 0
    tar czf /tmp/daisi-lab-backup.tgz -C /srv daisi-lab 2>/dev/null
    PGPASSWORD="$WEAK_PG" pg_dump -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -f /tmp/daisi-lab-db.sql 2>/dev/null || true
    if [ $((i % 4)) -eq 0 ]; then
      mv /var/log/daisi-lab/app.log /var/log/daisi-lab/app.log.1 2>/dev/null || true
    fi
    # The access log rotated as logrotate's copytruncate does (the
    # application keeps it open), every 2 minutes.
    if [ $((i % 24)) -eq 0 ]; then
      cat "$LAB/access.log" >>"$LAB/access.log.1" 2>/dev/null && : >"$LAB/access.log"
    fi
    date >>/var/log/daisi-lab/app.log
    sleep 5
  done
) </dev/null >/dev/null 2>&1 &

# VICTIM_BOUNDING (lab/attack.sh sets it): capabilities the application,
# and so whatever comes through its flaw, can never have (setpriv's
# --bounding-set syntax).
if [ -n "${VICTIM_BOUNDING:-}" ]; then
  exec setpriv --bounding-set "$VICTIM_BOUNDING" -- python3 lab/host/victim.py "$VPORT" /srv/daisi-lab "$LAB/access.log"
fi
exec python3 lab/host/victim.py "$VPORT" /srv/daisi-lab "$LAB/access.log"
