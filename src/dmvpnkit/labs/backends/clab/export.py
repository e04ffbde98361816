"""A topology as a containerlab lab: `<out>/<lab>.clab.yml` plus per-node files in `<out>/<node>/`.

Two modes. Standalone (`lab export --format clab`): every node sets itself up with
`exec` (the underlay as shell commands, then what its implementation adds) and runs
its daemons, so `containerlab deploy -t FILE` is a working DMVPN. Harness (`--backend
clab`): the same nodes and links, idle, with binds that put the harness's paths (lab
directory, run directories, what the implementation names) at the same place inside each
container; the harness then applies the underlay and starts daemons through the Node API.
Everything implementation-specific (image, files, commands, binds) is the
implementation's container part (`implementations.ContainerPlan`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .... import __version__
from ... import implementations, underlay
from ...implementations import ContainerPlan, ImplementationError, container_plan
from ...implementations.view import DmvpnView, view
from ...impairment import tc_command
from ...spec import Node, Topology
from .node import ClabNode

# The harness's own image for the router, NAT boxes, LAN hosts and peers: built from
# containers/nhrpd/Dockerfile (`--target linux`). An implementation's image comes from
# its container part, or from DMVPNKIT_CLAB_<NAME>_IMAGE / `--image NAME=IMAGE`.
DEFAULT_LINUX_IMAGE = f"dmvpnkit/linux:{__version__}"
LINUX = "linux"                    # the key of that image among `images`
DOCKERFILE = "containers/nhrpd/Dockerfile"

PREFIX = "clab"                    # containers and namespaces are clab-<lab>-<node>
IDLE = "sleep infinity"
LAB_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-._]*$")      # containerlab's schema for `name`
# A brief link endpoint whose node is called so is a special link (host, macvlan,
# mgmt-net), not a veth: links touching such nodes use the extended veth form.
SPECIAL_ENDPOINTS = frozenset({"host", "macvlan", "mgmt-net"})

# Labels: per node, and lab-wide ones in topology.defaults.
L_ROLE, L_IMPL = "dmvpnkit.role", "dmvpnkit.impl"
L_MODE, L_PHASE, L_MGMT = "dmvpnkit.mode", "dmvpnkit.phase", "dmvpnkit.mgmt"
L_TOPOLOGY, L_PARAMS, L_VERSION = "dmvpnkit.topology", "dmvpnkit.params", "dmvpnkit.version"
L_LAB_DIR = "dmvpnkit.lab-dir"      # harness mode: bound at the same path everywhere
L_DIRS = "dmvpnkit.dirs"           # harness mode: host directories made for the node (JSON), removed with it
L_IFNAME = "dmvpnkit.ifname."      # + containerlab's interface name -> the topology's


class ExportError(ValueError):
    pass


def image_env(name: str) -> str:
    """The variable that chooses the image of implementation `name` (or LINUX) for --backend clab."""
    return f"DMVPNKIT_CLAB_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_IMAGE"


def lab_name(topo: Topology, name: str | None = None) -> str:
    lab = name if name is not None else topo.name.lower().replace("-", "_")
    if not LAB_NAME_RE.match(lab):
        raise ExportError(f"lab name {lab!r} (topology {topo.source or topo.name}): containerlab needs "
                          f"{LAB_NAME_RE.pattern}")
    return lab


def node_id(lab: str, node: str) -> str:
    """Container, network namespace and FRR pathspace of a node: clab-<lab>-<node>."""
    return f"{PREFIX}-{lab}-{node}"


def impl_of(topo: Topology, impl: Mapping[str, str], node: Node) -> str | None:
    """The node's implementation (None: not a DMVPN node)."""
    if not node.is_dmvpn:
        return None
    got = impl.get(node.role)
    try:
        implementations.get(str(got))
    except ImplementationError as e:
        raise ExportError(f"impl[{node.role!r}] = {got!r} for {node.name} of {topo.source or topo.name}: {e}") from None
    return got


def container_view(topo: Topology, node: Node, phase: int, names: Mapping[str, str]) -> DmvpnView:
    """The node's DMVPN view with its interfaces named as in the container."""
    v = view(topo, node, phase)
    return dataclasses.replace(v, nbma_interface=names.get(v.nbma_interface, v.nbma_interface))


def plan(topo: Topology, node: Node, impl: str, phase: int, lab: str, names: Mapping[str, str], harness: bool,
         image: str | None) -> ContainerPlan:
    """The container part of the node's implementation, for this node."""
    try:
        return container_plan(implementations.get(impl), container_view(topo, node, phase, names),
                              node_id=node_id(lab, node.name), harness=harness, image=image)
    except ImplementationError as e:
        raise ExportError(f"{node.name}: {e}") from None


def iface_names(topo: Topology, mgmt: bool) -> dict[str, dict[str, str]]:
    """Per node, the topology's interface name -> the one containerlab gets.

    The linux kind takes any name Linux does (up to 15 characters, no space or
    slash), except eth0 while the management network holds it; only such names are
    renamed (to ethN), and the export keeps the mapping in `dmvpnkit.ifname.*` labels.
    """
    out: dict[str, dict[str, str]] = {}
    for node in topo.nodes.values():
        taken = {i.name for i in node.ifaces} | ({"eth0"} if mgmt else set())
        names = {}
        n = 1
        for iface in node.ifaces:
            ok = len(iface.name) <= 15 and not any(c in iface.name for c in " /:") and not (
                mgmt and iface.name == "eth0")
            if not ok:
                while f"eth{n}" in taken:
                    n += 1
                taken.add(f"eth{n}")
                names[iface.name] = f"eth{n}"
            else:
                names[iface.name] = iface.name
        out[node.name] = names
    return out


def rename(steps: list[underlay.Step], names: Mapping[str, str]) -> list[underlay.Step]:
    """The underlay plan with interface names as containerlab made them."""
    def m(ifname: str) -> str:
        return names.get(ifname, ifname)
    out: list[underlay.Step] = []
    for s in steps:
        if isinstance(s, underlay.Up):
            s = underlay.Up(m(s.ifname))
        elif isinstance(s, underlay.Addr):
            s = underlay.Addr(m(s.ifname), s.address)
        elif isinstance(s, underlay.Ipv6):
            s = underlay.Ipv6(m(s.ifname), s.enabled)
        elif isinstance(s, underlay.Mgre):
            s = underlay.Mgre(s.ifname, m(s.link), s.key)
        elif isinstance(s, underlay.Iptables):
            args = list(s.args)
            for i in range(len(args) - 1):
                if args[i] in ("-i", "-o"):
                    args[i + 1] = m(args[i + 1])
            s = underlay.Iptables(tuple(args))
        out.append(s)
    return out


def impair_exec(topo: Topology, node: Node, names: Mapping[str, str]) -> list[str]:
    """The topology's link impairment of what the node sends, as tc commands."""
    return [tc_command(names.get(link.other(node.name), link.other(node.name)), link.impair[node.name])
            for link in topo.links if node.name in (link.a, link.b) and link.impair.get(node.name)]


def standalone_exec(topo: Topology, node: Node, names: Mapping[str, str]) -> list[str]:
    """The node's underlay and link impairment as commands (an implementation's follow)."""
    return underlay.commands(rename(underlay.plan(topo, node), names)) + impair_exec(topo, node, names)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _node(topo: Topology, node: Node, impl: str | None, phase: int, out_dir: Path, lab: str,
          names: Mapping[str, str], images: Mapping[str, str], harness: bool, lab_dir: Path | None,
          mgmt: bool) -> dict[str, Any]:
    part = plan(topo, node, impl, phase, lab, names, harness, images.get(impl)) if impl else None
    entry: dict[str, Any] = {"kind": "linux", "image": part.image if part else images.get(LINUX, DEFAULT_LINUX_IMAGE),
                             "restart-policy": "no"}
    if not mgmt:
        entry["network-mode"] = "none"
    labels = {L_ROLE: node.role, **({L_IMPL: impl} if impl else {})}
    labels.update({L_IFNAME + theirs: ours for ours, theirs in names.items() if ours != theirs})
    entry["labels"] = labels
    binds = [f"{_write(out_dir / node.name / target.lstrip('/'), text)}:{target}:ro"
             for target, text in (part.files.items() if part else ())]
    if harness:
        assert lab_dir is not None
        made = [ClabNode(node.name, node_id(lab, node.name)).run_dir, *(part.dirs if part else ())]
        for d in (lab_dir, *made):
            d.mkdir(parents=True, exist_ok=True)
        binds += [f"{lab_dir}:{lab_dir}", f"{made[0]}:{made[0]}", *(part.binds if part else ())]
        labels[L_DIRS] = json.dumps([str(d) for d in made])
        entry["pid-mode"] = "host"        # pid files the daemons write name host pids
        entry["cmd"] = IDLE
    else:
        entry["exec"] = standalone_exec(topo, node, names) + list(part.exec if part else ())
        if part is None or part.cmd is not None:
            entry["cmd"] = part.cmd if part else IDLE     # None: the image's own (FRR's watchfrr)
    if binds:
        entry["binds"] = list(dict.fromkeys(binds))
    return entry


def _links(topo: Topology, names: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = []
    for link in topo.links:
        # Interfaces are named after the node at the other end.
        ends = [(link.a, names[link.a][link.b]), (link.b, names[link.b][link.a])]
        if {link.a, link.b} & SPECIAL_ENDPOINTS:
            links.append({"type": "veth", "endpoints": [{"node": n, "interface": i} for n, i in ends]})
        else:
            links.append({"endpoints": [f"{n}:{i}" for n, i in ends]})
    return links


def export(topo: Topology, impl: Mapping[str, str], phase: int, out_dir: Path, *,
           images: Mapping[str, str] | None = None, harness: bool = False, lab_dir: Path | None = None,
           name: str | None = None, mgmt: bool = False) -> Path:
    """Write `<out_dir>/<lab>.clab.yml` and the node files it binds; return its path.

    `images` maps an implementation's name (or LINUX) to the image its nodes run,
    instead of its container part's default."""
    lab = lab_name(topo, name)
    if phase not in (1, 2, 3):
        raise ExportError(f"phase {phase!r}: DMVPN phases are 1, 2 and 3")
    if harness and lab_dir is None:
        raise ExportError("harness mode binds the lab directory into every container: give lab_dir")
    out_dir = out_dir.resolve()      # bind host paths must be absolute
    lab_dir = lab_dir.resolve() if lab_dir is not None else None
    names = iface_names(topo, mgmt)
    if harness:
        renamed = [f"{n}:{i}" for n, m in names.items() for i, c in m.items() if i != c]
        if renamed:
            raise ExportError(f"harness mode needs the topology's interface names, but containerlab cannot "
                              f"use {', '.join(renamed)} here (with mgmt: eth0 is the management interface)")
    nodes = {n.name: _node(topo, n, impl_of(topo, impl, n), phase, out_dir, lab, names[n.name], images or {},
                           harness, lab_dir, mgmt) for n in topo.nodes.values()}
    defaults = {L_MODE: "harness" if harness else "standalone", L_PHASE: str(phase),
                L_MGMT: "yes" if mgmt else "no", L_VERSION: __version__,
                L_TOPOLOGY: topo.source or topo.name, L_PARAMS: json.dumps(topo.params, sort_keys=True)}
    if lab_dir is not None and harness:
        defaults[L_LAB_DIR] = str(lab_dir)
    doc: dict[str, Any] = {"name": lab, "prefix": PREFIX}
    if not mgmt:
        doc["mgmt"] = {"skip-when-unused": True}
    doc["topology"] = {"defaults": {"labels": defaults}, "nodes": nodes, "links": _links(topo, names)}
    path = out_dir / f"{lab}.clab.yml"
    head = (f"# {topo.name} ({topo.source or 'no file'}) as a containerlab lab, {defaults[L_MODE]} mode, "
            f"phase {phase}; written by dmvpnkit {__version__}.\n# containerlab deploy -t {path}\n")
    _write(path, head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=10_000))
    return path


__all__ = ["DEFAULT_LINUX_IMAGE", "IDLE", "LINUX", "PREFIX", "ExportError", "container_view", "export",
           "iface_names", "image_env", "impair_exec", "lab_name", "node_id", "plan", "standalone_exec"]
