"""`dmvpnkit audit CAPTURE|DIR...`: every passive rule over captures taken anywhere,
reported like a suite run (results.json, junit.xml, index.html), a column per station."""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..capture.timeline import Event
from ..rules import FAIL, PASS, SKIP, Rule, Verdict
from ..rules.audit import Capture, Station, judge, read, stations

LADDER_LIMIT = 60           # packets a passing verdict's ladder shows of those it rests on
FRAMES_LIMIT = 200          # frames a message lists
INPUT_CASE = "audit::input"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="judge captures from anywhere by the suite's passive rules",
                       description="Run every passive rule of the suite on pcap/pcapng captures (files, or "
                                   "directories searched recursively) and write results.json, junit.xml and "
                                   "the HTML matrix: one column per station (NBMA address), NHSs being the "
                                   "stations that answer Registration Requests.")
    p.add_argument("paths", nargs="+", type=Path, metavar="CAPTURE|DIR")
    p.add_argument("--names", nargs="+", default=[], metavar="ADDR=NAME", help="name stations by NBMA address")
    p.add_argument("--keys", action="append", type=Path, default=[], metavar="FILE",
                   help="`ip xfrm state` output to open ESP with (repeatable)")
    p.add_argument("--report-dir", type=Path, default=Path("reports/audit"), help="default reports/audit")
    p.set_defaults(func=run)


def parse_names(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        addr, eq, name = item.partition("=")
        if not eq or not addr or not name:
            raise ValueError(f"--names {item!r}: expected ADDR=NAME, e.g. 192.0.2.1=hub1")
        out[addr.strip()] = name.strip()
    return out


def _lab_names(files: list[Path]) -> dict[str, str]:
    from .decode import _names  # NBMA address -> node of the lab the captures come from
    return _names(files) if files else {}


def outcome(r: Rule, v: Verdict) -> str:
    if v.outcome != FAIL:
        return v.outcome
    return {"SHOULD": "NON-STRICT", "MAY": "INFO"}.get(r.spec.level, FAIL)


def _entry(e: Event, mark: str | None) -> dict[str, Any]:
    return {"ts": e.ts, "node": e.node, "iface": e.iface, "src": e.src, "dst": e.dst, "direction": e.direction,
            "summary": e.what, "mark": mark}


def _evidence(v: Verdict) -> dict[str, Any]:
    rest = {id(e) for e in v.events}
    if v.outcome == FAIL and v.timeline is not None:
        shown = list(v.timeline)
        tl = [_entry(e, "offending" if e is v.mark else "note" if id(e) in rest else None) for e in shown]
    else:
        tl = [_entry(e, None) for e in v.events[:LADDER_LIMIT]]
    pcaps = sorted({str(Path(e.pcap).resolve()) for e in v.events if e.pcap})
    return {"pcaps": pcaps, "timeline": tl}


def record(r: Rule, v: Verdict, problems: list[str]) -> dict[str, Any]:
    frames = v.frames
    lines = [v.headline if v.outcome != PASS else f"{v.expected}: {v.observed}",
             f"frames ({len(frames)}): {', '.join(frames[:FRAMES_LIMIT])}"
             + (f" and {len(frames) - FRAMES_LIMIT} more" if len(frames) > FRAMES_LIMIT else "")]
    if problems:
        lines.append("could not be read: " + "; ".join(problems))
    return {"case": f"audit::{r.name}", "doc": r.spec.doc, "section": r.spec.section, "level": r.spec.level,
            "requirement": r.spec.requirement, "outcome": outcome(r, v), "duration": 0.0, "lab": "audit",
            "evidence": _evidence(v), "headline": v.headline if v.outcome != PASS else "",
            "message": "\n".join(lines)}


def input_record(cap: Capture) -> dict[str, Any]:
    """What was read, and what could not be: an ERROR row when a file could not be read."""
    read_ok = [f"{f}: {n} IPv4 frames" for f, n in cap.frames.items()]
    text = "\n".join([*(f"could not be read: {p}" for p in cap.problems), *cap.notes, *read_ok])
    head = f"{len(cap.problems)} problem(s) reading the captures, the first: {cap.problems[0]}" \
        if cap.problems else ""
    return {"case": INPUT_CASE, "doc": None, "section": None, "level": None,
            "requirement": "Every capture given is read whole.", "outcome": "ERROR" if cap.problems else PASS,
            "duration": 0.0, "lab": "audit", "evidence": {"pcaps": [str(f.resolve()) for f in cap.files]},
            "headline": head, "message": text}


def _lab(sts: list[Station]) -> dict[str, Any]:
    return {"topology": "audit", "addresses": {s.address: s.name for s in sts},
            "nodes": [{"name": s.name, "role": "hub" if s.role == "nhs" else "spoke", "nbma": s.address}
                      for s in sts]}


def build(cap: Capture, sts: list[Station], report_dir: Path, args: argparse.Namespace,
          t0: float) -> tuple[Any, list[tuple[Station, Rule, Verdict]]]:
    from .. import reports
    verdicts: list[tuple[Station, Rule, Verdict]] = []
    runs = []
    columns = sts or [Station("no station", "no station", "")]
    options = {"audit": " ".join(str(p) for p in args.paths), "keys": " ".join(map(str, args.keys)),
               "unreadable": len(cap.problems)}
    for st in columns:
        judged = judge(cap.timeline, st) if sts else [(r, Verdict(SKIP, r.name, "no NHRP in the captures", rule=r.name))
                                                      for r in _all_rules()]
        verdicts += [(st, r, v) for r, v in judged]
        records = [input_record(cap)] + [record(r, v, cap.problems) for r, v in judged]
        runs.append(reports.from_records(
            records, report_dir=report_dir, phase=None, impl={st.role or "station": st.label},
            implementations={st.label: st.role.upper() if st.role == "nhs" else st.role or "none"},
            labs={"audit": _lab(sts)}, lab_kernel="host", wall_time=time.monotonic() - t0, options=options))
    return reports.Matrix(runs=runs), verdicts


def _all_rules() -> list[Rule]:
    from ..rules import REGISTRY
    return list(REGISTRY.values())


def write_junit(path: Path, verdicts: list[tuple[Station, Rule, Verdict]], cap: Capture) -> None:
    root = ET.Element("testsuites", name="dmvpnkit audit")
    suites: dict[str, ET.Element] = {}
    for st, r, v in verdicts:
        suite = suites.get(st.label)
        if suite is None:
            suite = suites[st.label] = ET.SubElement(root, "testsuite", name=st.label)
            if cap.problems:
                case = ET.SubElement(suite, "testcase", classname=f"audit.{st.name}", name="input")
                ET.SubElement(case, "error", message=cap.problems[0]).text = "\n".join(cap.problems)
        case = ET.SubElement(suite, "testcase", classname=f"audit.{st.name}", name=r.name)
        grade = outcome(r, v)
        if grade == FAIL:
            ET.SubElement(case, "failure", message=v.headline).text = ", ".join(v.frames)
        elif grade == SKIP:
            ET.SubElement(case, "skipped", message=v.observed)
        elif grade != PASS:
            ET.SubElement(case, "system-out").text = f"{grade}: {v.headline}"
    for suite in suites.values():
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        for kind, attr in (("failure", "failures"), ("skipped", "skipped"), ("error", "errors")):
            suite.set(attr, str(sum(1 for c in cases if c.find(kind) is not None)))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def summary(verdicts: list[tuple[Station, Rule, Verdict]]) -> list[str]:
    lines = []
    width = max((len(st.label) for st, _, _ in verdicts), default=10)
    for st, r, v in verdicts:
        grade = outcome(r, v)
        text = v.observed if grade in (PASS, SKIP) else v.headline
        lines.append(f"{grade:<10} {st.label:<{width}} {r.name:<43} {text}")
    return lines


def run(args: argparse.Namespace) -> int:
    from .. import reports
    t0 = time.monotonic()
    names = parse_names(args.names)
    for k in args.keys:
        if not k.is_file():
            raise OSError(f"--keys {k}: no such file")
    cap = read(args.paths, args.keys, None)
    names = {**_lab_names(cap.files), **names}
    if names:
        cap.timeline.names.update(names)
    for p in cap.problems + cap.notes:
        print(f"dmvpnkit audit: {p}", file=sys.stderr)
    sts = stations(cap.timeline, names)
    matrix, verdicts = build(cap, sts, args.report_dir.resolve(), args, t0)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    reports.write(args.report_dir, matrix)
    write_junit(args.report_dir / "junit.xml", verdicts, cap)
    print("\n".join(summary(verdicts)))
    counts: dict[str, int] = {}
    for _, r, v in verdicts:
        counts[outcome(r, v)] = counts.get(outcome(r, v), 0) + 1
    print(f"{len(sts)} station(s), {len(cap.files)} file(s): "
          + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
          + f"; report: {args.report_dir / 'index.html'}")
    if not any(cap.frames.values()) and cap.problems:
        return 2
    return 1 if any(outcome(r, v) == FAIL for _, r, v in verdicts) else 0
