"""`dmvpnkit mutations`: run the suite against nhrpd once per fault switch.

Testing the tests: a switch is a deliberate non-conformance; the suite must catch it
(some case does worse than on the clean baseline). The matrix lists what each switch
fails, the switches nothing catches, and the cases no switch can fail (candidates for
a missing switch, or a vacuous case).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..nhrpd.faults import Fault

WORSE = {"PASS": 0, "SKIP": 0, "UNIMPLEMENTED": 0, "INFO": 1, "NON-STRICT": 1, "FAIL": 2, "FLAKY": 2, "ERROR": 2}


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("mutations", help="run the suite against nhrpd once per fault switch",
                       description=__doc__)
    p.add_argument("--switch", action="append", metavar="NAME",
                   help="only these switches (default: all of them)")
    p.add_argument("--phase", type=int, default=3, choices=(1, 2, 3))
    p.add_argument("--out", type=Path, default=Path("reports/mutations"))
    p.add_argument("--workers", default="2", help="pytest-xdist -n (default 2)")
    p.add_argument("--ipsec", action="store_true",
                   help="every run with --ipsec (the ipsec-* switches only act then)")
    p.add_argument("--resume", action="store_true", help="reuse runs already in --out (results.json present)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="each run repeats every case N times (pytest --repeat): a FLAKY grade shows a switch "
                        "or a case whose verdict is not reproducible")
    p.add_argument("paths", nargs="*", default=["conformance/"], help="suite paths (default: conformance/)")
    p.set_defaults(func=run)


def _run_suite(out: Path, args: argparse.Namespace, switch: str | None) -> dict[str, str]:
    results = out / "results.json"
    if args.resume and results.exists():
        return _outcomes(results)
    argv = [sys.executable, "-m", "pytest", *args.paths, "--phase", str(args.phase), "--impl", "nhrpd",
            "-n", args.workers, "--report-dir", str(out), "-q", "-p", "no:cacheprovider"]
    if switch:
        argv += ["--nhrpd-fault", switch]
    if args.ipsec:
        argv += ["--ipsec"]
    if args.repeat > 1:
        argv += ["--repeat", str(args.repeat)]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pytest.log").write_text(done.stdout)
    if not results.exists():
        raise RuntimeError(f"suite run for {switch or 'baseline'} wrote no {results} (exit {done.returncode}):\n"
                           f"{done.stdout[-3000:]}")
    return _outcomes(results)


def _outcomes(results: Path) -> dict[str, str]:
    run = json.loads(results.read_text())["runs"][0]
    return {r["nodeid"]: r["outcome"] for r in run["results"]}


def run(args: argparse.Namespace) -> int:
    switches = [Fault.parse(s).value for s in args.switch] if args.switch else \
        [f.value for f in Fault if args.ipsec or not f.value.startswith("ipsec-")]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"mutations: baseline + {len(switches)} switch(es), phase {args.phase}", flush=True)
    baseline = _run_suite(args.out / "baseline", args, None)
    caught: dict[str, dict[str, str]] = {}
    for s in switches:
        got = _run_suite(args.out / s, args, s)
        caught[s] = {case: outcome for case, outcome in got.items()
                     if WORSE.get(outcome, 2) > WORSE.get(baseline.get(case, "PASS"), 0)}
        print(f"  {s:28} fails {len(caught[s]):3} case(s)", flush=True)
    never = sorted(c for c in baseline if not any(c in v for v in caught.values()))
    matrix: dict[str, Any] = {"phase": args.phase, "baseline": baseline, "caught": caught,
                              "uncaught_switches": [s for s in switches if not caught[s]],
                              "cases_no_switch_fails": never}
    (args.out / "matrix.json").write_text(json.dumps(matrix, indent=2) + "\n")
    lines = [f"{s}: {', '.join(sorted(c.split('::')[-1] for c in cases)) or 'NOTHING'}"
             for s, cases in caught.items()]
    lines += ["", f"cases no switch fails ({len(never)}):"] + [f"  {c}" for c in never]
    (args.out / "matrix.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"matrix: {args.out / 'matrix.json'}")
    return 1 if matrix["uncaught_switches"] else 0
