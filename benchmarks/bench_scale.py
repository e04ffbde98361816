"""One hub, N spokes (default 100) of one implementation, over static routes, BGP or
OSPF: the bring-up split, the time until every spoke is registered and until every LAN
is in every node's routing table, and the hub's memory.

    .venv/bin/python benchmarks/bench_scale.py [--impl frr|nhrpd] [--routing static|bgp|ospf]
                                               [--spokes 100] [--phase 1] [--uml-mem 12G]

Uses the real lab (UML kernel on hosts without GRE): `dmvpnkit lab up` reports the split
(daemons: until every daemon runs; registration: then until every spoke is in the hub's
cache; routes: then until every node routes every other LAN into the tunnel). Memory is
VmRSS/VmHWM of each of the hub's daemons, read from /proc inside the lab.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

# This directory is on sys.path when the benchmark runs as a script.
from bench_backends import dmvpnkit

LAB = "scale"
# Run inside the hub: its daemons are the processes naming its pathspace (FRR's -N,
# dk-<lab>-hub1) or their control socket in its run directory (nhrpd's).
MEMORY = r"""
import os, re
me = {os.getpid(), os.getppid()}
mark = re.compile(r"dk-%s-hub1(/nhrpd\.sock)?$")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    except OSError:
        continue
    if int(pid) not in me and any(mark.search(a) for a in argv):
        name = os.path.basename(argv[0]) if "-m" not in argv else argv[argv.index("-m") + 1]
        print(name, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0]))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", default="frr")
    p.add_argument("--routing", default="bgp", choices=("static", "bgp", "ospf"))
    p.add_argument("--spokes", type=int, default=100)
    p.add_argument("--phase", default="1", choices=("1", "3"))
    p.add_argument("--uml-mem", default="12G")
    args = p.parse_args()
    t0 = time.monotonic()
    try:
        dmvpnkit("lab", "up", "topologies/hub_nspoke.yaml", "--impl", args.impl, "--phase", args.phase,
                       "--param", f"spokes={args.spokes}",
                       # a routing protocol advertises a LAN only where it is attached
                       "--param", f"lan_hosts={str(args.routing != 'static').lower()}",
                       "--param", f"routing={args.routing}", "--name", LAB, "--uml-mem", args.uml_mem,
                       "--timeout", "900", timeout=1800)
        wall = time.monotonic() - t0
        status = json.loads(dmvpnkit("lab", "status", "--lab", LAB, "--json"))
        memory = dmvpnkit("lab", "exec", "--lab", LAB, "hub1", "--", "python3", "-c", MEMORY % LAB)
    finally:
        subprocess.run([sys.executable, "-m", "dmvpnkit.cli.main", "lab", "down", "--lab", LAB],
                       capture_output=True)
    t = status["timings"]
    hub = next(n for n in status["nodes"] if n["name"] == "hub1")
    dynamic = sum(1 for e in hub.get("cache") or [] if e["type"] == "dynamic")
    print(f"{args.impl} hub + {args.spokes} {args.impl} spokes, routing {args.routing}, phase {args.phase}: "
          f"{wall:.1f} s from the command")
    print(f"  kernel {t['kernel']:.1f} s, topology {t['topology']:.1f} s, daemons {t['daemons']:.1f} s, "
          f"registration {t['convergence'] - t['routing']:.1f} s, routes {t['routing']:.1f} s; "
          f"hub cache: {dynamic} dynamic entries")
    rows = [line.split() for line in memory.strip().splitlines()]
    print("  hub memory (VmRSS / VmHWM, MiB): " + ", ".join(f"{n} {int(r) / 1024:.1f} / {int(h) / 1024:.1f}"
                                                          for n, r, h in rows)
          + f"; total RSS {sum(int(r) for _, r, _ in rows) / 1024:.1f}")


if __name__ == "__main__":
    main()
