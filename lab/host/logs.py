"""The host lab's log helpers (lab/host.sh).

  logs.py stamp HOST PROGRAM
      copies stdin to stdout line by line, each line given a syslog
      header (`Dec  2 15:00:07 HOST PROGRAM: ...`), as rsyslog writes
      /var/log/auth.log: the lab's sshd and crond log to stderr in a
      namespace without a syslog daemon (a line that starts with
      `PROGRAM: `, as crond's do, is not named twice).
  logs.py split PHASES OUTDIR FILE...
      the lines of the recorded logs, in time order, into one file per
      phase of PHASES (lab/host.sh's phases.jsonl): OUTDIR/learning.log,
      OUTDIR/benign.log, OUTDIR/<scenario>.log for each attack; prints one `KIND=FILE` per attack file that has lines, and
      the attacks that left none on stderr.
"""

import datetime
import json
import os
import re
import sys
import time


def stamp(host: str, program: str) -> None:
    for line in iter(sys.stdin.readline, ""):
        line = line.removeprefix(f"{program}: ")
        sys.stdout.write(f"{time.strftime('%b %e %H:%M:%S')} {host} {program}: {line}")
        sys.stdout.flush()


SYSLOG = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ")
DPKG = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ")
ACCESS = re.compile(r"\[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")


def line_time(line: str) -> float | None:
    """The line's time (s), as its own header says."""
    if line.startswith("{"):
        # PostgreSQL's jsonlog: "timestamp": "2026-12-02 16:00:00.123 UTC".
        try:
            t = json.loads(line).get("timestamp", "")
            return datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f %Z").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except (ValueError, AttributeError):
            return None
    m = ACCESS.search(line)
    if m:
        return datetime.datetime.strptime(m[1], "%d/%b/%Y:%H:%M:%S %z").timestamp()
    m = DPKG.match(line)
    if m:
        return time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S"))
    m = SYSLOG.match(line)
    if m:
        year = datetime.date.today().year
        return time.mktime(time.strptime(f"{year} {m[1]}", "%Y %b %d %H:%M:%S"))
    return None


def split(phases_file: str, outdir: str, files: list[str]) -> None:
    phases = [json.loads(l) for l in open(phases_file) if l.strip()]
    lines = []
    for f in files:
        if not os.path.exists(f):
            continue
        with open(f, errors="replace") as fh:
            for n, line in enumerate(fh):
                t = line_time(line)
                if t is not None:
                    lines.append((t, f, n, line))
    lines.sort()
    out: dict[str, list[str]] = {}
    phases.sort(key=lambda p: p["start_ns"])
    for t, _, _, line in lines:
        # Headers are whole seconds, and a scenario's first step comes at
        # once: a line belongs to the last phase begun by its second.
        begun = [p for p in phases if p["start_ns"] // 10**9 <= t]
        if not begun or t > phases[-1]["end_ns"] / 1e9:
            continue
        p = begun[-1]
        name = p["phase"] if p["phase"] == "learning" or p["kind"] == "attack" else "benign"
        out.setdefault(name, []).append(line)
    os.makedirs(outdir, exist_ok=True)
    for name, ls in out.items():
        with open(os.path.join(outdir, f"{name}.log"), "w") as fh:
            fh.writelines(ls)
    for p in phases:
        if p["kind"] != "attack":
            continue
        if p["phase"] in out:
            print(f"{p['phase']}={os.path.join(outdir, p['phase'] + '.log')}")
        else:
            print(f"[host-lab] {p['phase']}: no log lines", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "stamp":
        stamp(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "split":
        split(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
