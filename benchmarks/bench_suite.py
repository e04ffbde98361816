"""The suite's wall time, and where each worker spends it.

    .venv/bin/python benchmarks/bench_suite.py [-n 4] [--impl frr] [--runs 1] [--keep DIR] [-- PYTEST ARGS...]

Runs README command 1 (`pytest conformance/ --phase 3 -n N`, PYTEST ARGS replacing
`conformance/`) with a timing plugin (benchmarks/suite_timing.py) and prints the wall
time, then per worker: lab bring-up (topology, daemons, convergence: each lab's own
lab.json), the rest of set-up (scenario fixtures, captures), case calls, teardown (lab
down included), what is left of the wall time (guest boot, collection, waiting), and
how long after launch its first case started. The guests' boot is the session's own line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOT = re.compile(r"UML lab kernels? .*?\(up in ([\d.]+) s\)")
WORKER = re.compile(r"_(gw\d*)_")


def one(workers: int, impl: str, paths: list[str], keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        os.chmod(tmp, 0o755)        # FRR's daemons read their configs there after dropping root
        report = Path(tmp) / "report"
        timing = Path(tmp) / "timing.jsonl"
        env = {**os.environ, "DMVPNKIT_TIMING": str(timing),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))}
        xdist = ["-n", str(workers)] if workers else ["-p", "no:xdist"]
        t0, launched = time.monotonic(), time.time()
        done = subprocess.run([sys.executable, "-m", "pytest", *paths, "--phase", "3", "--impl", impl, *xdist,
                               "-p", "suite_timing", "--report-dir", str(report), "-q", "-p", "no:cacheprovider"],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        if not timing.exists():
            raise SystemExit(f"the suite recorded nothing (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr}")
        per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for line in timing.read_text().splitlines():
            r = json.loads(line)
            per[r["worker"]][r["when"]] += r["duration"]
            first, end = r["start"] - launched, r["start"] + r["duration"] - launched
            per[r["worker"]]["first"] = min(per[r["worker"]].get("first", first), first)
            per[r["worker"]]["last"] = max(per[r["worker"]].get("last", end), end)
        for f in (report / "labs").glob("*/lab.json"):
            lab = json.loads(f.read_text())
            m = WORKER.search(lab["name"])
            w = per[m.group(1) if m else "gw"]
            w["labs"] += 1
            for part in ("topology", "daemons", "convergence"):
                w[part] += lab["timings"].get(part, 0.0)
        boot = BOOT.search(done.stdout)
        results = json.loads((report / "results.json").read_text())["runs"][0]["results"]
        if keep is not None:            # the report, to see which case a differing grade was
            shutil.copytree(report, keep, dirs_exist_ok=True)
        grades = Counter(r["outcome"] for r in results)
        return {"wall": wall, "boot": float(boot.group(1)) if boot else 0.0, "rc": done.returncode,
                "grades": ", ".join(f"{k} {v}" for k, v in sorted(grades.items())),
                "last": max((w.get("last", 0.0) for w in per.values()), default=0.0),
                "workers": {k: dict(v) for k, v in per.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=4, help="xdist workers (0: none); README command 1 uses 4")
    ap.add_argument("--impl", default="frr")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="copy each run's report to KEEP/runN")
    ap.add_argument("paths", nargs="*", default=["conformance/"])
    args = ap.parse_args()
    for i in range(args.runs):
        r = one(args.n, args.impl, args.paths, args.keep / f"run{i + 1}" if args.keep else None)
        print(f"run {i + 1}: wall {r['wall']:.1f} s, {r['grades']}, exit {r['rc']}, "
              f"guest boot {r['boot']:.1f} s, last case done at {r['last']:.1f} s")
        print(f"  {'worker':<7} {'labs':>4} {'topology':>9} {'daemons':>8} {'converge':>9} {'setup*':>7} "
              f"{'calls':>7} {'teardown':>9} {'other':>7} {'1st case':>9} {'last':>7}")
        for w, t in sorted(r["workers"].items()):
            bringup = t.get("topology", 0) + t.get("daemons", 0) + t.get("convergence", 0)
            busy = t.get("setup", 0) + t.get("call", 0) + t.get("teardown", 0)
            print(f"  {w:<7} {int(t.get('labs', 0)):>4} {t.get('topology', 0):>8.1f}s {t.get('daemons', 0):>7.1f}s "
                  f"{t.get('convergence', 0):>8.1f}s {t.get('setup', 0) - bringup:>6.1f}s {t.get('call', 0):>6.1f}s "
                  f"{t.get('teardown', 0):>8.1f}s {r['wall'] - busy:>6.1f}s {t.get('first', 0):>8.1f}s {t.get('last', 0):>6.1f}s")
    print("  setup*: set-up other than lab bring-up (scenario fixtures, captures); other: wall time not in a "
          "case (guest boot, collection, waiting for work); 1st case / last: from launch to the worker's first case's start / last case's end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
