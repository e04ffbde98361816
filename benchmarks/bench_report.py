"""Render a large interop report: 10,000 case results (2,500 cases x 4 combinations),
each with its evidence paths and a packet timeline, and print the seconds it takes.

    .venv/bin/python benchmarks/bench_report.py [--cases 2500] [--combinations 4] [--keep DIR]

Target: `reports.write` (results.json + index.html + one page per cell) under 5 s.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dmvpnkit import reports

COMBINATIONS = ["frr", "hub=frr,spoke=nhrpd", "hub=nhrpd,spoke=frr", "nhrpd"]
SECTIONS = [("rfc2332", f"5.2.{i}") for i in range(1, 8)] + [("rfc2332", "5.3.1"), ("rfc2332", "5.3.2")] + [
    ("dmvpn-phase3", s) for s in ("traffic-indication", "resolution", "shortcut", "nat")]
NODES = {"hub1": "172.16.0.2", "spoke1": "172.16.0.6", "spoke2": "172.16.0.10"}
LAB = "hub_2spoke_gw_00001"


def timeline(rng: random.Random, n: int, t0: float) -> list[dict]:
    out, ts = [], t0
    names = list(NODES)
    for i in range(n):
        a, b = rng.sample(names, 2)
        ts += rng.uniform(0.0005, 0.2)
        summary = rng.choice([f"NHRP registration-request id={i} 10.255.0.11->10.255.0.11 flags=0x0002 code=0 hold=60",
                              f"NHRP resolution-reply id={i} 10.255.0.11->10.1.2.10 flags=0xe800 code=0 hold=60",
                              "icmp type 8 10.1.1.10>10.1.2.10"])
        for node, direction in ((a, "out"), (b, "in")):
            out.append({"ts": ts, "node": node, "iface": "inet", "src": NODES[a], "dst": NODES[b],
                        "direction": direction, "summary": summary})
    return out


def build(root: Path, ncases: int, ncombos: int) -> reports.Matrix:
    rng = random.Random(6)
    lab = root / "labs" / LAB
    for node in NODES:
        (lab / "nodes" / node).mkdir(parents=True, exist_ok=True)
        (lab / "nodes" / node / "nhrpd.conf").write_text("!\n")
        (lab / "nodes" / node / "nhrpd.log").write_text("\n")
    (lab / "pcaps" / "bringup").mkdir(parents=True, exist_ok=True)
    for node in NODES:
        (lab / "pcaps" / "bringup" / f"{node}__inet.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))
    evidence = reports.collect_evidence(lab, [lab / "pcaps" / "bringup"])
    lab_map = {"topology": "hub_2spoke", "nodes": [{"name": n, "role": n.rstrip("0123456789"), "nbma": a}
                                                   for n, a in NODES.items()],
               "addresses": {a: n for n, a in NODES.items()}}
    runs = []
    for k in range(ncombos):
        records = []
        for i in range(ncases):
            doc, section = SECTIONS[i % len(SECTIONS)]
            outcome = rng.choices(reports.OUTCOMES, weights=[80, 4, 3, 3, 6, 2, 2])[0]
            failed = outcome not in ("PASS", "SKIP", "INFO")
            records.append({
                "case": f"conformance/{doc}/test_s{section.replace('.', '_')}.py::test_requirement_{i:05d}",
                "doc": doc, "section": section, "level": ("MUST", "MUST", "SHOULD", "MAY")[i % 4],
                "requirement": f'"A station MUST do thing {i} as section {section} says." ({section})',
                "outcome": outcome, "duration": round(rng.uniform(0.05, 3.0), 3),
                "message": f"E       AssertionError: expected thing {i}\n" if failed else "", "lab": LAB,
                "evidence": {**evidence, "timeline": timeline(rng, 20 if failed else 4, 1795768671.0 + i)}})
        runs.append(reports.from_records(records, report_dir=root, phase=3, impl=COMBINATIONS[k % 4],
                                         implementations={"frr": "8.4.4", "nhrpd": "0.1.0"},
                                         labs={LAB: lab_map}, host=f"bench{k}", kernel="6.1.0-27-amd64",
                                         created="2025-11-27T08:30:00+00:00"))
    return reports.Matrix(runs=runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2500)
    ap.add_argument("--combinations", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="write the report here and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_report."))
    try:
        t = time.perf_counter()
        m = build(root, args.cases, args.combinations)
        t_build = time.perf_counter() - t
        n = sum(len(r.results) for r in m.runs)
        t = time.perf_counter()
        reports.write(root, m)
        t_write = time.perf_counter() - t
        t = time.perf_counter()
        again = reports.load_matrix(root)          # `dmvpnkit report render`: read, validate ...
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        reports.write(root, again)                 # ... and write everything again
        t_rerender = time.perf_counter() - t
        pages = sum(1 for _ in (root / "cases").rglob("*.html"))
        print(f"{n} case results ({args.cases} cases x {args.combinations} combinations), {pages} case pages")
        print(f"from_records: {t_build:.2f} s")
        print(f"write (results.json + index.html + case pages): {t_write:.2f} s")
        print(f"load + validate results.json: {t_load:.2f} s")
        print(f"render from results.json (load + write): {t_load + t_rerender:.2f} s")
        print(f"seconds: {t_write:.2f} (target < 5 s: {'ok' if t_write < 5 else 'MISSED'})")
        return 0 if t_write < 5 else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
