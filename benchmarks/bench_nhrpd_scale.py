"""One nhrpd hub, N nhrpd spokes (default 100): time until every spoke is registered,
and the hub's memory.

    .venv/bin/python benchmarks/bench_nhrpd_scale.py [--spokes 100] [--uml-mem 8G]

Uses the real lab (UML kernel on hosts without GRE): `dmvpnkit lab up` reports the
bring-up split; convergence is "every spoke in the hub's cache". Memory is the hub
daemon's VmRSS/VmHWM, read from /proc inside the lab.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

LAB = "nhscale"


def dmvpnkit(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dmvpnkit.cli.main", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"dmvpnkit {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spokes", type=int, default=100)
    p.add_argument("--uml-mem", default="8G")
    args = p.parse_args()
    t0 = time.monotonic()
    try:
        out = dmvpnkit("lab", "up", "topologies/hub_nspoke.yaml", "--impl", "nhrpd", "--phase", "1",
                       "--param", f"spokes={args.spokes}", "--param", "lan_hosts=false", "--name", LAB,
                       "--uml-mem", args.uml_mem, "--timeout", "900")
        wall = time.monotonic() - t0
        split = re.search(r"bring-up .*", out)
        mem = dmvpnkit("lab", "exec", "--lab", LAB, "hub1", "--", "sh", "-c",
                       f"grep -E 'VmRSS|VmHWM' /proc/$(pgrep -f dk-{LAB}-hub1.sock | head -1)/status")
        cache = dmvpnkit("lab", "exec", "--lab", LAB, "hub1", "--", sys.executable, "-m", "dmvpnkit.nhrpd",
                         "--control", f"/run/dmvpnkit/nhrpd/dk-{LAB}-hub1.sock", "show", "cache")
        dynamic = cache.count('"dynamic"')
    finally:
        subprocess.run([sys.executable, "-m", "dmvpnkit.cli.main", "lab", "down", "--lab", LAB],
                       capture_output=True)
    print(f"nhrpd hub + {args.spokes} nhrpd spokes: {wall:.1f} s from the command "
          f"({split.group(0) if split else out.strip()})")
    print(f"hub cache: {dynamic} dynamic entries")
    print("hub nhrpd memory: " + ", ".join(line.split(":")[0] + " " + line.split(":")[1].strip()
                                          for line in mem.strip().splitlines()))


if __name__ == "__main__":
    main()
