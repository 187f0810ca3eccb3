"""The ATT&CK lab's test files, from `daisi eval atomics` (JSON Lines on
stdin): for each test a directory OUT/<id>/ with `meta.json`,
`command.sh`, `cleanup.sh` and, per prerequisite, `pre_<n>_check.sh` and
`pre_<n>_get.sh`; prints the ids in the order to run them (tests that
delete the whole file system last: nothing can run after them).

    python3 lab/attack/tests.py OUT < plan.jsonl
"""

import json
import os
import sys


def main() -> None:
    out = sys.argv[1]
    tests = [json.loads(line) for line in sys.stdin if line.strip()]
    last = [t for t in tests if "--no-preserve-root" in t["command"]]
    order = [t for t in tests if t not in last] + last
    for t in order:
        d = os.path.join(out, t["id"])
        os.makedirs(d, exist_ok=True)
        meta = {k: t[k] for k in ("id", "technique", "name", "executor", "elevation_required", "why_not_run", "prerequisite_executor")}
        meta["prerequisites"] = len(t["prerequisites"])
        meta["descriptions"] = [p["description"].strip().splitlines()[0] if p["description"].strip() else "" for p in t["prerequisites"]]
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        with open(os.path.join(d, "command.sh"), "w") as f:
            f.write(t["command"])
        with open(os.path.join(d, "cleanup.sh"), "w") as f:
            f.write(t["cleanup"])
        for i, p in enumerate(t["prerequisites"], 1):
            with open(os.path.join(d, f"pre_{i}_check.sh"), "w") as f:
                f.write(p["check"])
            with open(os.path.join(d, f"pre_{i}_get.sh"), "w") as f:
                f.write(p["get"])
        print(t["id"])


if __name__ == "__main__":
    main()
