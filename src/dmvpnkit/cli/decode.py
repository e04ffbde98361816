"""`dmvpnkit decode PCAP|DIR...`: the merged, decoded timeline of lab captures."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..capture import Timeline
from ..capture.pcap import capture_files


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("decode", help="print the NHRP timeline of captures",
                       description="Merge captures (pcap or pcapng files named <node>__<iface>.pcap, "
                                   "or directories of them) into one time-ordered, decoded timeline.")
    p.add_argument("paths", nargs="+", type=Path, metavar="CAPTURE|DIR")
    p.add_argument("--json", action="store_true", help="one JSON array of events")
    p.add_argument("--nhrp", action="store_true", help="NHRP packets only")
    p.add_argument("--node", action="append", help="only this node's view (repeatable)")
    p.set_defaults(func=run)


def _names(paths: list[Path]) -> dict[str, str]:
    """NBMA address -> node from the lab.json of the lab the captures belong to, if any."""
    from ..labs.lab import Lab
    for p in paths:
        for d in Path(p).resolve().parents:
            if (d / "lab.json").exists():
                try:
                    return Lab.from_dir(d).topo.nbma_names()
                except (OSError, ValueError, KeyError):
                    return {}
    return {}


def run(args: argparse.Namespace) -> int:
    files: list[Path] = []
    for p in args.paths:
        if p.is_dir():
            files.extend(capture_files(p))
        elif p.exists():
            files.append(p)
        else:
            raise OSError(f"{p}: no such file or directory")
    tl = Timeline.from_pcaps(files, _names(files))
    if args.nhrp:
        tl = tl.where(lambda e: e.nhrp is not None or bool(e.error))
    if args.node:
        tl = tl.where(lambda e: e.node in args.node)
    print(tl.to_json() if args.json else tl.format(limit=0))
    return 0
