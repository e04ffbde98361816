"""Where a case's evidence lives in a report directory, and what a lab looks like to a
ladder diagram. Duck-typed on the lab objects: reports import nothing of `labs`.

Report directory layout (written by the plugin and the lab engine):
    results.json
    labs/<lab>/lab.json                       what was asked for, resolved topology
    labs/<lab>/nodes/<node>/<daemon>.conf     rendered configs
    labs/<lab>/nodes/<node>/<daemon>.log      daemon logs
    labs/<lab>/pcaps/<capture>/<node>__<iface>.pcap
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from ..capture.pcap import capture_files

CONFIG_SUFFIXES = (".conf", ".yaml", ".yml")
LOG_SUFFIXES = (".log", ".out")     # .out: what a daemon printed before its log was open


def lab_info(topo: Any) -> dict[str, Any]:
    """A `labs.spec.Topology` as the `labs` entry of a run: nodes in order with their
    role and NBMA address, and every interface address mapped to its node (a NAT box's
    public address maps to the NAT box, so its arrows land on its own lifeline)."""
    nodes: list[dict[str, Any]] = []
    addresses: dict[str, str] = {}
    for n in topo.nodes.values():
        nbma = getattr(n, "nbma", None)
        tunnel = getattr(n, "tunnel", None)
        nodes.append({"name": n.name, "role": n.role, "nbma": str(nbma) if nbma else None,
                      "tunnel": str(tunnel) if tunnel else None})
        for i in getattr(n, "ifaces", ()):
            addresses.setdefault(str(i.address.ip), n.name)
        if tunnel:
            addresses.setdefault(str(tunnel), n.name)
    return {"topology": topo.name, "nodes": nodes, "addresses": addresses}


def collect(lab_dir: Path | str, pcap_dirs: Iterable[Path | str] = ()) -> dict[str, list[Path]]:
    """Evidence files of one case: the pcaps in the capture directories it used (its own
    `capture`, the lab's bring-up capture, a module fixture's), and the lab's configs
    and logs. Absolute paths; `from_records` makes them relative to the report."""
    lab_dir = Path(lab_dir)
    pcaps = [p for d in pcap_dirs for p in capture_files(d)]
    configs = [lab_dir / "lab.json"] if (lab_dir / "lab.json").exists() else []
    logs: list[Path] = []
    for f in sorted((lab_dir / "nodes").glob("*/*")) if (lab_dir / "nodes").is_dir() else []:
        if f.suffix in CONFIG_SUFFIXES:
            configs.append(f)
        elif f.suffix in LOG_SUFFIXES:
            logs.append(f)
    return {"pcaps": pcaps, "logs": logs, "configs": configs}


def relative(path: Path | str, base: Path) -> str:
    """`path` as a POSIX path relative to `base` (absolute or relative-to-base input)."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return Path(os.path.relpath(p, base)).as_posix()


def capture_dir_name(case_name: str) -> str:
    """The directory the plugin's `capture` fixture gives a case (its test name, made safe)."""
    return case_name.replace("/", "_").replace("[", "_").replace("]", "")


def capture_index(report_dir: Path) -> dict[str, list[Path]]:
    """Capture directory name -> `labs/*/pcaps/<name>` directories, listed once."""
    out: dict[str, list[Path]] = {}
    for d in sorted((report_dir / "labs").glob("*/pcaps/*")) if (report_dir / "labs").is_dir() else []:
        if d.is_dir():
            out.setdefault(d.name, []).append(d)
    return out


def discover_v1(report_dir: Path, nodeid: str,
                index: dict[str, list[Path]] | None = None) -> tuple[list[str], list[str], list[str]]:
    """Schema 1 recorded no evidence paths. A case that used `capture` left its pcaps in
    `labs/*/pcaps/<test name>/`; when exactly one lab has them, that lab's configs and
    logs belong to the case too. Cases that read the bring-up capture stay without."""
    index = capture_index(report_dir) if index is None else index
    hits = index.get(capture_dir_name(nodeid.rsplit("::", 1)[-1]), [])
    if len(hits) != 1:
        return [], [], []
    ev = collect(hits[0].parent.parent, [hits[0]])
    pcaps, logs, configs = ([relative(p, report_dir) for p in ev[k]] for k in ("pcaps", "logs", "configs"))
    return pcaps, logs, configs
