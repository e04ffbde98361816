"""What IPsec adds to the first spoke-to-spoke packet, per implementation.

    .venv/bin/python benchmarks/bench_ipsec_first_packet.py [--impl frr nhrpd] [--runs 3]

For each implementation, with and without `--ipsec`, a fresh hub_2spoke phase 3
lab: spoke1's LAN host pings spoke2's every 20 ms, and the time is from its first
echo request leaving spoke1 (to the hub) to the first echo request arriving at
spoke2 straight from spoke1 (the shortcut), both read from the captures (one
clock: the lab kernel's). With IPsec that includes the spoke-to-spoke IKE
exchange, timed on its own too (IKE_SA_INIT request to IKE_AUTH response). Prints
each run, the medians and the difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_shortcut_packet(impl: str, ipsec: bool, run: int) -> tuple[float, float | None]:
    """(time to the first direct packet, time of the spoke-to-spoke IKE exchange)."""
    from dmvpnkit.labs import spec
    from dmvpnkit.labs.lab import Lab, parse_impl
    from dmvpnkit.labs.tap import LabCapture
    name = f"bip_{impl}_{int(ipsec)}_{run}"
    topo = spec.load(ROOT / "topologies" / "hub_2spoke.yaml")
    lab = Lab(name=name, topo=topo, lab_dir=ROOT / "labs-run" / name, impl=parse_impl(impl), phase=3,
              topology_file=str(ROOT / "topologies" / "hub_2spoke.yaml"), kernel="uml", ipsec=ipsec)
    lab.up(log=lambda m: None)
    try:
        cap = LabCapture(lab, lab.lab_dir / "pcaps" / "first_packet", nodes=["spoke1", "spoke2"])
        cap.start()
        dst = str(topo.nodes["spoke2_h"].iface("spoke2").address.ip)
        lab.node("spoke1_h").run(["ping", "-n", "-c", "150", "-i", "0.02", "-W", "1", dst], check=False)
        tl = cap.timeline()
        spoke1, spoke2 = str(topo.nodes["spoke1"].nbma), str(topo.nodes["spoke2"].nbma)
        sent = tl.where(node="spoke1", direction="out", data="icmp type 8")
        direct = tl.where(node="spoke2", direction="in", data="icmp type 8", src=spoke1)
        if not sent or not direct:
            raise SystemExit(f"{name}: no {'echo request' if not sent else 'direct packet'} captured:\n{tl}")
        # IKE_SA_INIT request to the IKE_AUTH response, between the spokes, at spoke2.
        ike = tl.where(lambda e: e.data.startswith("ike") and {e.src, e.dst} == {spoke1, spoke2}, node="spoke2")
        inits = [e.ts for e in ike if "IKE_SA_INIT" in e.data and "request" in e.data]
        auths = [e.ts for e in ike if "IKE_AUTH" in e.data and "response" in e.data]
        return direct[0].ts - sent[0].ts, (min(auths) - min(inits)) if inits and auths else None
    finally:
        lab.down()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", nargs="+", default=["frr", "nhrpd"])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    from dmvpnkit.labs import kernel
    if kernel.choose("auto") == "uml":          # the host kernel lacks GRE/ESP: run in the lab kernel
        from dmvpnkit.labs.uml import Guest
        guest = Guest(f"bench{os.getpid()}")
        guest.start()
        try:
            return guest.run([sys.executable, __file__, *sys.argv[1:]], cwd=str(ROOT))
        finally:
            guest.stop()
    medians = {}
    for impl in args.impl:
        for ipsec in (False, True):
            times, ikes = [], []
            for run in range(args.runs):
                t, ike = first_shortcut_packet(impl, ipsec, run)
                times.append(t)
                ikes += [ike] if ike is not None else []
                print(f"{impl:6} {'ipsec' if ipsec else 'clear':5} run {run + 1}: {t * 1000:7.1f} ms"
                      + (f"  (spoke-spoke IKE {ike * 1000:.1f} ms)" if ike is not None else ""), flush=True)
            medians[impl, ipsec] = statistics.median(times)
            if ikes:
                medians[impl, "ike"] = statistics.median(ikes)
    print()
    print("time to the first spoke-to-spoke packet (median)")
    for impl in args.impl:
        clear, prot = medians[impl, False], medians[impl, True]
        ike = medians.get((impl, "ike"))
        print(f"{impl:6} without IPsec {clear * 1000:7.1f} ms   with IPsec {prot * 1000:7.1f} ms   "
              f"extra {(prot - clear) * 1000:7.1f} ms" + (f"   spoke-spoke IKE {ike * 1000:.1f} ms" if ike else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
