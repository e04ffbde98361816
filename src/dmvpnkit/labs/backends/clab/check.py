"""Checks of an exported containerlab file against its topology: what deploy needs,
and what makes the lab the same DMVPN the harness runs elsewhere.

`check_export(path)` returns every problem found (none: an empty list), each naming
the file and the key; `check_doc` does the same for an already loaded document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ... import underlay
from ...implementations import ContainerPlan
from ... import spec as specmod
from ...spec import Topology
from . import export as ex
from .node import ClabNode


def check_export(path: Path, topo: Topology | None = None) -> list[str]:
    """Problems of the file at `path`; `topo` defaults to the topology its labels name."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        return [f"{path}: cannot read: {e.strerror}"]
    except yaml.YAMLError as e:
        return [f"{path}: not YAML: {e}"]
    return check_doc(doc, path, topo)


class _Problems(list[str]):
    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def add(self, key: str, message: str) -> None:
        self.append(f"{self.path}: {key}: {message}")


def check_doc(doc: Any, path: Path, topo: Topology | None = None) -> list[str]:
    p = _Problems(path)
    if not isinstance(doc, dict):
        p.add("<document>", f"expected a mapping, got {type(doc).__name__}")
        return p
    name = doc.get("name")
    if not isinstance(name, str) or not ex.LAB_NAME_RE.match(name):
        p.add("name", f"containerlab requires a lab name matching {ex.LAB_NAME_RE.pattern}, got {name!r}")
    if doc.get("prefix", ex.PREFIX) != ex.PREFIX:
        p.add("prefix", f"{doc['prefix']!r}: the harness reaches nodes as {ex.PREFIX}-<lab>-<node>")
    topology = doc.get("topology")
    nodes = topology.get("nodes") if isinstance(topology, dict) else None
    if not isinstance(topology, dict) or not isinstance(nodes, dict) or not nodes:
        p.add("topology.nodes", "containerlab requires a non-empty mapping of nodes")
        return p
    defaults = topology.get("defaults", {}) or {}
    lab_labels = defaults.get("labels", {}) if isinstance(defaults, dict) else {}
    mode, phase_s, mgmt_s = (lab_labels.get(k) for k in (ex.L_MODE, ex.L_PHASE, ex.L_MGMT))
    if mode not in ("harness", "standalone") or phase_s not in ("1", "2", "3") or mgmt_s not in ("yes", "no"):
        p.add("topology.defaults.labels", f"{ex.L_MODE}, {ex.L_PHASE}, {ex.L_MGMT} must say the mode "
              f"(harness|standalone), phase (1-3) and mgmt (yes|no); got {mode!r}, {phase_s!r}, {mgmt_s!r}")
        return p
    harness, phase, mgmt = mode == "harness", int(phase_s), mgmt_s == "yes"
    if topo is None:
        try:
            params = json.loads(lab_labels.get(ex.L_PARAMS, "{}"))
            topo = specmod.load(str(lab_labels.get(ex.L_TOPOLOGY)), params or None)
        except (ValueError, specmod.SpecError) as e:
            p.add(f"topology.defaults.labels.{ex.L_TOPOLOGY}", f"cannot load the topology: {e}")
            return p
    if harness and _lab_dir(lab_labels) is None:
        p.add(f"topology.defaults.labels.{ex.L_LAB_DIR}", "harness mode: must name the lab directory (absolute)")
    if not mgmt:
        skip = doc.get("mgmt", {}).get("skip-when-unused") if isinstance(doc.get("mgmt"), dict) else None
        if skip is not True:
            p.add("mgmt.skip-when-unused", f"must be true when no management network is asked, got {skip!r}")
    missing, extra = sorted(set(topo.nodes) - set(nodes)), sorted(set(nodes) - set(topo.nodes))
    if missing or extra:
        p.add("topology.nodes", f"not the topology's nodes: missing {missing}, extra {extra}")
    ifmaps: dict[str, dict[str, str]] = {}
    for nname, entry in nodes.items():
        if nname in topo.nodes:
            ifmaps[nname] = _check_node(p, f"topology.nodes.{nname}", nname, entry, topo, phase, harness, mgmt,
                                        path, str(name), lab_labels)
    _check_links(p, topology.get("links"), topo, ifmaps)
    return p


def _check_node(p: _Problems, key: str, nname: str, entry: Any, topo: Topology, phase: int, harness: bool,
                mgmt: bool, path: Path, lab: str, lab_labels: dict[str, Any]) -> dict[str, str]:
    """Check one node; return its interface map (containerlab's name -> the topology's)."""
    if not isinstance(entry, dict):
        p.add(key, f"expected a mapping, got {type(entry).__name__}")
        return {}
    node = topo.nodes[nname]
    _check_container(p, key, entry, mgmt)
    labels: dict[str, Any] = entry["labels"] if isinstance(entry.get("labels"), dict) else {}
    if labels.get(ex.L_ROLE) != node.role:
        p.add(f"{key}.labels.{ex.L_ROLE}", f"must be {node.role!r}, got {labels.get(ex.L_ROLE)!r}")
    impl = labels.get(ex.L_IMPL)
    if not node.is_dmvpn and impl is not None:
        p.add(f"{key}.labels.{ex.L_IMPL}", f"a {node.role} runs no implementation, got {impl!r}")
    ifmap = {k[len(ex.L_IFNAME):]: str(v) for k, v in labels.items() if k.startswith(ex.L_IFNAME)}
    names = {ours: theirs for theirs, ours in ifmap.items()}
    binds = _check_binds(p, f"{key}.binds", entry.get("binds", []), path)
    part: ContainerPlan | None = None
    if node.is_dmvpn:
        try:
            part = ex.plan(topo, node, str(impl), phase, lab, names, harness, str(entry.get("image")))
        except ex.ExportError as e:
            p.add(f"{key}.labels.{ex.L_IMPL}", f"a {node.role} needs an implementation with a container part: {e}")
    for target, text in (part.files.items() if part else ()):
        _same_text(p, f"{key}.binds[{target}]", binds.get(target), text, f"{impl}'s container part")
    if harness:
        lab_dir = _lab_dir(lab_labels)
        same = [ClabNode(nname, ex.node_id(lab, nname)).run_dir, *([lab_dir] if lab_dir is not None else [])]
        _check_harness(p, key, entry, binds, part, str(impl), same)
    else:
        _check_standalone(p, key, entry, ex.standalone_exec(topo, node, names), part)
    return ifmap


def _check_container(p: _Problems, key: str, entry: dict[str, Any], mgmt: bool) -> None:
    """What containerlab runs: a plain linux container, not restarted, on the asked network."""
    for field, value in (("kind", "linux"), ("restart-policy", "no")):
        if entry.get(field) != value:
            p.add(f"{key}.{field}", f"must be {value!r}, got {entry.get(field)!r}")
    if not isinstance(entry.get("image"), str) or not entry["image"]:
        p.add(f"{key}.image", "missing")
    netmode = entry.get("network-mode")
    if not mgmt and netmode != "none":
        p.add(f"{key}.network-mode", f"must be 'none' (no management network asked), got {netmode!r}")
    if mgmt and netmode == "none":
        p.add(f"{key}.network-mode", "'none' keeps the management network away, but it was asked for")


def _check_harness(p: _Problems, key: str, entry: dict[str, Any], binds: dict[str, Path],
                   part: ContainerPlan | None, impl: str, same: list[Path]) -> None:
    """Harness mode: the container idles while the harness applies the underlay and runs
    the daemons, so it shares the host's pids and has directories `same` at the same path."""
    if entry.get("exec") is not None:
        p.add(f"{key}.exec", "harness mode: the harness applies the underlay itself; no exec")
    cmd = entry.get("cmd")
    if cmd != ex.IDLE:
        p.add(f"{key}.cmd", f"harness mode: must idle ({ex.IDLE!r}) while the harness runs daemons, got {cmd!r}")
    if entry.get("pid-mode") != "host":
        p.add(f"{key}.pid-mode", "harness mode: must be 'host' (drivers stop daemons by their pid files)")
    have = {Path(h) for c, h in binds.items() if Path(c) == Path(h)}
    for d in same:
        if d not in have:
            p.add(f"{key}.binds", f"harness mode: {d} must be bound at the same path")
    listed = entry.get("binds", []) if isinstance(entry.get("binds"), list) else []
    for b in (part.binds if part else ()):
        if b not in listed:
            p.add(f"{key}.binds", f"harness mode: {impl}'s container part binds {b}; missing")


def _check_standalone(p: _Problems, key: str, entry: dict[str, Any], want: list[str],
                      part: ContainerPlan | None) -> None:
    """Standalone mode: the node's own `exec` applies the underlay (`want`), then its
    implementation's container part runs as `cmd`."""
    execs = entry.get("exec")
    got: list[str] = execs if isinstance(execs, list) else []
    if got[:len(want)] != want:
        p.add(f"{key}.exec", f"must start with the node's underlay and link impairment {want}, "
              f"got {got[:len(want)]}")
    extra = list(part.exec) if part else []
    if got[len(want):] != extra:
        p.add(f"{key}.exec", f"after the underlay must come {extra}, got {got[len(want):]}")
    want_cmd = part.cmd if part else ex.IDLE
    cmd = entry.get("cmd")
    if cmd != want_cmd:
        p.add(f"{key}.cmd", f"must be {want_cmd!r} (None: the image's own), got {cmd!r}")


def _lab_dir(lab_labels: dict[str, Any]) -> Path | None:
    d = lab_labels.get(ex.L_LAB_DIR)
    return Path(d) if isinstance(d, str) and d.startswith("/") else None


def _check_binds(p: _Problems, key: str, binds: Any, path: Path) -> dict[str, Path]:
    """Each bind's host side exists; return container path -> host path."""
    if not isinstance(binds, list) or not all(isinstance(b, str) for b in binds):
        p.add(key, f"expected a list of host:container[:options] strings, got {binds!r}")
        return {}
    if len(set(binds)) != len(binds):
        p.add(key, "duplicate binds (containerlab's schema wants unique items)")
    out = {}
    for b in binds:
        parts = b.split(":")
        if len(parts) not in (2, 3) or not parts[1].startswith("/"):
            p.add(key, f"{b!r} is not host:container[:options] with an absolute container path")
            continue
        host = Path(parts[0]) if parts[0].startswith("/") else path.parent / parts[0]
        if not host.exists():
            p.add(key, f"{b!r}: host side {host} does not exist")
        out[parts[1]] = host
    return out


def _same_text(p: _Problems, key: str, host: Path | None, want: str, what: str) -> None:
    if host is None:
        p.add(key, "not bound")
        return
    try:
        got = host.read_bytes()
    except OSError as e:
        p.add(key, f"{host}: cannot read: {e.strerror}")
        return
    if got != want.encode():
        p.add(key, f"{host} differs from {what}")


def _endpoints(link: Any) -> list[tuple[str, str]] | None:
    """A link's (node, interface) pairs, brief (`a:if`) or extended veth form."""
    if not isinstance(link, dict) or not isinstance(link.get("endpoints"), list) or len(link["endpoints"]) != 2:
        return None
    out = []
    for e in link["endpoints"]:
        if isinstance(e, str) and e.count(":") == 1 and all(e.split(":")) and link.get("type") is None:
            n, i = e.split(":")
            if n in ex.SPECIAL_ENDPOINTS:
                return None         # containerlab would read it as a host/macvlan/mgmt-net link
        elif isinstance(e, dict) and link.get("type") == "veth" and set(e) == {"node", "interface"}:
            n, i = str(e["node"]), str(e["interface"])
        else:
            return None
        out.append((n, i))
    return out


def _check_links(p: _Problems, links: Any, topo: Topology, ifmaps: dict[str, dict[str, str]]) -> None:
    if not isinstance(links, list):
        p.add("topology.links", f"expected a list, got {type(links).__name__}")
        return
    seen: list[frozenset[str]] = []
    for idx, link in enumerate(links):
        key = f"topology.links[{idx}]"
        ends = _endpoints(link)
        if ends is None:
            p.add(f"{key}.endpoints", f"expected two 'node:interface' endpoints (or a veth link), got {link!r}")
            continue
        for n, i in ends:
            if n not in topo.nodes or n not in ifmaps:
                p.add(f"{key}.endpoints", f"{n}:{i}: no node {n!r} in this file and topology")
                continue
            ours = ifmaps[n].get(i, i)
            if ours not in {x.name for x in topo.nodes[n].ifaces}:
                p.add(f"{key}.endpoints", f"{n}:{i}: {n} has no interface {ours!r} in the topology "
                      f"(has {', '.join(x.name for x in topo.nodes[n].ifaces)})")
        (a, ia), (b, ib) = ends
        # Interfaces are named after the node at the other end.
        if ifmaps.get(a, {}).get(ia, ia) != b or ifmaps.get(b, {}).get(ib, ib) != a:
            p.add(f"{key}.endpoints", f"{a}:{ia} - {b}:{ib} is not the topology's link between {a} and {b}")
        seen.append(frozenset((a, b)))
    want = [frozenset((link.a, link.b)) for link in topo.links]
    for pair in want:
        if seen.count(pair) != 1:
            p.add("topology.links", f"the topology's link {'-'.join(sorted(pair))} appears {seen.count(pair)} times")
    for pair in set(seen) - set(want):
        p.add("topology.links", f"{'-'.join(sorted(pair))} is not a link of the topology")


__all__ = ["check_doc", "check_export"]
