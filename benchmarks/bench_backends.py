"""Bring-up and teardown of the same lab on each backend.

    .venv/bin/python benchmarks/bench_backends.py [--backend netns mininet] [--impl frr] [--runs 3]

Each run is `dmvpnkit lab up topologies/hub_2spoke.yaml --phase 3` as a user types it
(UML lab kernel included where the host lacks GRE), then `dmvpnkit lab down`. Prints
the bring-up split `lab up` reports (kernel, topology, daemons, convergence) and the
teardown time per run, and the medians per backend.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BRINGUP = re.compile(r"bring-up ([\d.]+) s: kernel ([\d.]+) s, topology ([\d.]+) s, daemons ([\d.]+) s, "
                     r"convergence ([\d.]+) s")
PARTS = ("total", "kernel", "topology", "daemons", "convergence", "down")


def dmvpnkit(*args: str, timeout: float = 600) -> str:
    """The CLI as a user runs it, from the checkout; its stdout, or exit with all it said."""
    done = subprocess.run([sys.executable, "-m", "dmvpnkit.cli.main", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"dmvpnkit {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def one(backend: str, impl: str, run: int) -> dict[str, float]:
    name = f"bb_{backend}_{run}"
    out = dmvpnkit("lab", "up", "topologies/hub_2spoke.yaml", "--phase", "3", "--impl", impl, "--backend", backend,
                   "--name", name)
    m = BRINGUP.search(out)
    if m is None:
        raise SystemExit(f"no bring-up line in:\n{out}")
    t = time.monotonic()
    dmvpnkit("lab", "down", "--lab", name)
    return dict(zip(PARTS, [*map(float, m.groups()), time.monotonic() - t]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", nargs="+", default=["netns", "mininet"])
    ap.add_argument("--impl", default="frr")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"{'backend':<9} {'run':>3} " + " ".join(f"{p:>11}" for p in PARTS))
    medians = {}
    for backend in args.backend:
        runs = [one(backend, args.impl, i) for i in range(args.runs)]
        for i, r in enumerate(runs):
            print(f"{backend:<9} {i:>3} " + " ".join(f"{r[p]:>10.1f}s" for p in PARTS), flush=True)
        medians[backend] = {p: statistics.median(r[p] for r in runs) for p in PARTS}
    print("\nmedians (s):")
    for backend, m in medians.items():
        print(f"{backend:<9}     " + " ".join(f"{m[p]:>10.1f}s" for p in PARTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
