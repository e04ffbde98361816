"""`dmvpnkit report render|merge|summary|validate`: the interop report from results.json.

    dmvpnkit report render reports/            re-render index.html and case pages
    dmvpnkit report merge run-frr/ run-mix/ -o reports/interop
    dmvpnkit report summary reports/interop    the certification text, to stdout
    dmvpnkit report compare run-netns/ run-mininet/   verdicts that differ (exit 1 if any)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .. import reports
from ..reports.model import results_path

DEFAULT_MERGE_OUT = Path("reports/merged")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    rep = sub.add_parser("report", help="render, merge and summarise conformance reports")
    rep.set_defaults(func=run)
    cmds = rep.add_subparsers(dest="report_command", required=True)

    r = cmds.add_parser("render", help="re-render index.html and case pages from DIR/results.json")
    r.add_argument("dir", type=Path, help="report directory (holding results.json)")

    m = cmds.add_parser("merge", help="merge runs (implementations, role mixes, machines) into one matrix")
    m.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="report directories to merge")
    m.add_argument("-o", "--out", type=Path, default=DEFAULT_MERGE_OUT,
                   help=f"output directory (default: {DEFAULT_MERGE_OUT})")
    m.add_argument("--link", action="store_true",
                   help="symlink evidence (relative links) instead of copying it")

    s = cmds.add_parser("summary", help="print the certification summary of DIR/results.json")
    s.add_argument("dir", type=Path)

    c = cmds.add_parser("compare", help="case-by-case verdicts of two runs (e.g. two backends); "
                        "exit status 1 when any differs")
    c.add_argument("a", type=Path, help="results.json (or its directory) of one run")
    c.add_argument("b", type=Path, help="... and of the other")

    v = cmds.add_parser("validate", help="check a results.json (schema 1 or 2) against the schema")
    v.add_argument("path", type=Path, help="results.json or its directory")


def run(args: argparse.Namespace) -> int:
    return {"render": cmd_render, "merge": cmd_merge, "summary": cmd_summary, "compare": cmd_compare,
            "validate": cmd_validate}[args.report_command](args)


def _warn(msg: str) -> None:
    print(f"dmvpnkit: warning: {msg}", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    src = results_path(args.dir)
    m = reports.load_matrix(src)
    if json.loads(src.read_text()).get("schema") == 1:
        backup = src.with_name("results.v1.json")
        shutil.copy2(src, backup)
        print(f"upgraded schema 1 to 2; the original is kept as {backup}")
    reports.write(src.parent, m)
    print(f"{len(m.runs)} run(s), {sum(len(r.results) for r in m.runs)} result(s): {src.parent / 'index.html'}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    m = reports.merge(args.dirs, args.out, link=args.link, warn=_warn)
    reports.write(args.out, m)
    print(f"merged {len(m.runs)} run(s) from {len(args.dirs)} director{'y' if len(args.dirs) == 1 else 'ies'}: "
          f"{args.out / 'index.html'}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    sys.stdout.write(reports.summary_text(reports.load_matrix(args.dir)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    a, b = reports.load(args.a), reports.load(args.b)
    diffs = reports.compare(a, b)
    same = len({r.id for r in a.results} | {r.id for r in b.results}) - len(diffs)
    def label(r: reports.Run) -> str:
        return f"{r.combination} on {r.options.get('backend', 'netns')}"
    print(f"{label(a)} ({results_path(args.a)}) vs {label(b)} ({results_path(args.b)}): "
          f"{same} case(s) agree, {len(diffs)} differ")
    for d in diffs:
        print(f"  {d}")
    return 1 if diffs else 0


def cmd_validate(args: argparse.Namespace) -> int:
    m = reports.load_matrix(args.path)
    print(f"{results_path(args.path)}: valid ({len(m.runs)} run(s), "
          f"{sum(len(r.results) for r in m.runs)} result(s))")
    return 0
