"""`dmvpnkit mutations`: run the suite against nhrpd once per fault switch.

Testing the tests: a switch is a deliberate non-conformance; the suite must catch it
(some case does worse than on the clean baseline). The matrix lists what each switch
fails, the switches nothing catches, and the cases no switch can fail (candidates for
a missing switch, or a vacuous case).

A case is killed honestly only by a targeted switch, one that fails at most a quarter
of the cases: a switch that breaks everything (every checksum wrong) fails every case
without showing that any of them catches the bug it is about. Both scores are printed
and written; the HTML report of a suite run in the parent directory shows them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..labs.spec.model import ROUTING
from ..nhrpd.faults import Fault

WORSE = {"PASS": 0, "SKIP": 0, "UNIMPLEMENTED": 0, "INFO": 1, "NON-STRICT": 1, "FAIL": 2, "FLAKY": 2, "ERROR": 2}
TARGETED = 0.25         # a switch failing more than this share of the cases is blunt


@dataclass(frozen=True)
class Score:
    """Of the cases the clean baseline passes (no switch can make the others worse in
    a way that shows anything), how many some switch fails, and how many a targeted
    one does."""
    cases: int
    killed: int
    killed_targeted: int
    targeted_switches: list[str]
    blunt_switches: list[str]
    without_targeted_kill: list[str]
    not_passing_on_baseline: list[str]

    def line(self) -> str:
        def pct(n: int) -> str:
            return f"{n}/{self.cases} ({100 * n / self.cases:.0f} %)" if self.cases else "0/0"
        return (f"mutation score: targeted {pct(self.killed_targeted)}, any switch {pct(self.killed)}; "
                f"{len(self.targeted_switches)} targeted switch(es) (failing <= {TARGETED:.0%} of the cases), "
                f"{len(self.blunt_switches)} blunt")


def score(baseline: dict[str, str], caught: dict[str, dict[str, str]]) -> Score:
    passing = sorted(c for c, g in baseline.items() if g == "PASS")
    limit = TARGETED * len(baseline)
    targeted = [s for s, cases in caught.items() if 0 < len(cases) <= limit]
    blunt = [s for s, cases in caught.items() if len(cases) > limit]
    killed = {c for cases in caught.values() for c in cases}
    killed_targeted = {c for s in targeted for c in caught[s]}
    return Score(cases=len(passing), killed=len(killed & set(passing)),
                 killed_targeted=len(killed_targeted & set(passing)), targeted_switches=targeted,
                 blunt_switches=blunt, without_targeted_kill=[c for c in passing if c not in killed_targeted],
                 not_passing_on_baseline=sorted(set(baseline) - set(passing)))


def _commit() -> str:
    """The checkout's commit, so a report can say whether the score is its own build's."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent)
    return done.stdout.strip() if done.returncode == 0 else ""


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("mutations", help="run the suite against nhrpd once per fault switch",
                       description=__doc__)
    p.add_argument("--switch", action="append", metavar="NAME",
                   help="only these switches (default: all of them)")
    p.add_argument("--phase", type=int, default=3, choices=(1, 2, 3))
    p.add_argument("--out", type=Path, default=Path("reports/mutations"))
    p.add_argument("--workers", default="2", help="pytest-xdist -n (default 2)")
    p.add_argument("--ipsec", action="store_true",
                   help="every run with --ipsec (the ipsec-* switches only act then; "
                        "reply-from-tunnel-address-once never does, and is left out)")
    p.add_argument("--routing", choices=ROUTING, default="static",
                   help="every run with this routing over the overlay (default static)")
    p.add_argument("--resume", action="store_true", help="reuse runs already in --out (results.json present)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="each run repeats every case N times (pytest --repeat): a FLAKY grade shows a switch "
                        "or a case whose verdict is not reproducible")
    p.add_argument("--require-targeted", action="store_true",
                   help="exit 1 also when a case the baseline passes has no targeted kill")
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
    if args.routing != "static":
        argv += ["--routing", args.routing]
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
        [f.value for f in Fault if f.acts(args.ipsec)]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    print(f"mutations: baseline + {len(switches)} switch(es), phase {args.phase}", flush=True)
    baseline = _run_suite(args.out / "baseline", args, None)
    caught: dict[str, dict[str, str]] = {}
    for s in switches:
        got = _run_suite(args.out / s, args, s)
        caught[s] = {case: outcome for case, outcome in got.items()
                     if WORSE.get(outcome, 2) > WORSE.get(baseline.get(case, "PASS"), 0)}
        print(f"  {s:28} fails {len(caught[s]):3} case(s)", flush=True)
    never = sorted(c for c in baseline if not any(c in v for v in caught.values()))
    sc = score(baseline, caught)
    matrix: dict[str, Any] = {"phase": args.phase, "ipsec": args.ipsec, "routing": args.routing, "paths": args.paths,
                              "dmvpnkit": __version__, "commit": _commit(),
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "wall_time": round(time.monotonic() - t0, 1), "baseline": baseline, "caught": caught,
                              "uncaught_switches": [s for s in switches if not caught[s]],
                              "cases_no_switch_fails": never, "score": asdict(sc)}
    (args.out / "matrix.json").write_text(json.dumps(matrix, indent=2) + "\n")
    lines = [f"{s}: {', '.join(sorted(c.split('::')[-1] for c in cases)) or 'NOTHING'}"
             for s, cases in caught.items()]
    # A case the baseline did not pass cannot be made worse: name those, so a switch that
    # fails nothing shows whether the switch or a baseline case was at fault.
    unsound = sorted(f"{c} {o}" for c, o in baseline.items() if o != "PASS")
    lines += ["", f"cases no switch fails ({len(never)}):"] + [f"  {c}" for c in never]
    lines += [f"baseline cases that did not PASS ({len(unsound)}):"] + [f"  {c}" for c in unsound]
    lines += ["", sc.line(), f"cases without a targeted kill ({len(sc.without_targeted_kill)}):"] + \
        [f"  {c}" for c in sc.without_targeted_kill]
    (args.out / "matrix.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"matrix: {args.out / 'matrix.json'} ({matrix['wall_time']:.0f} s)")
    return 1 if matrix["uncaught_switches"] or (args.require_targeted and sc.without_targeted_kill) else 0
