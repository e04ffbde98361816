"""A topology as a containerlab lab: `<out>/<lab>.clab.yml` plus per-node files in `<out>/<node>/`.

Two modes. Standalone (`lab export --format clab`): every node sets itself up with
`exec` (the underlay as shell commands, the hub's NFLOG rules, nhrpd's static
routes) and runs its daemons, so `containerlab deploy -t FILE` is a working DMVPN.
Harness (`--backend clab`): the same nodes and links, idle, with binds that put the
harness's paths (lab directory, run directories, venv) at the same place inside each
container; the harness then applies the underlay and starts daemons through the Node API.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .... import __version__
from ... import underlay
from ...implementations import frr, nhrpd
from ...implementations.view import view
from ...impairment import tc_command
from ...spec import Node, Topology
from .node import ClabNode

# Debian 12's FRR is 8.4.4 (what the FRR driver targets); quay.io has no 8.4.3/8.4.4
# image (FRR tags each pushed image docker/X.Y.Z: 8.4.0-8.4.2, 8.4.5-8.4.7), and
# nhrpd/ is identical in frr-8.4.2 and frr-8.4.4, while 8.4.5 changes it.
FRR_IMAGE_VERSION = "8.4.2"
DEFAULT_FRR_IMAGE = f"quay.io/frrouting/frr:{FRR_IMAGE_VERSION}"
# Built from containers/nhrpd/Dockerfile (default target, and `--target linux`).
DEFAULT_NHRPD_IMAGE = f"dmvpnkit/nhrpd:{__version__}"
DEFAULT_LINUX_IMAGE = f"dmvpnkit/linux:{__version__}"
DOCKERFILE = "containers/nhrpd/Dockerfile"

PREFIX = "clab"                    # containers and namespaces are clab-<lab>-<node>
IDLE = "sleep infinity"
IMPLS = ("frr", "nhrpd")
IPTABLES = "iptables"              # inside the images (legacy there, like the harness's)
LAB_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-._]*$")      # containerlab's schema for `name`
# A brief link endpoint whose node is called so is a special link (host, macvlan,
# mgmt-net), not a veth: links touching such nodes use the extended veth form.
SPECIAL_ENDPOINTS = frozenset({"host", "macvlan", "mgmt-net"})

# Labels: per node, and lab-wide ones in topology.defaults.
L_ROLE, L_IMPL = "dmvpnkit.role", "dmvpnkit.impl"
L_MODE, L_PHASE, L_MGMT = "dmvpnkit.mode", "dmvpnkit.phase", "dmvpnkit.mgmt"
L_TOPOLOGY, L_PARAMS, L_VERSION = "dmvpnkit.topology", "dmvpnkit.params", "dmvpnkit.version"
L_LAB_DIR = "dmvpnkit.lab-dir"      # harness mode: bound at the same path everywhere
L_IFNAME = "dmvpnkit.ifname."      # + containerlab's interface name -> the topology's

# Inside the containers.
FRR_ETC = "/etc/frr"
NHRPD_CONFIG = "/etc/dmvpnkit/nhrpd.json"
NHRPD_CONTROL = "/run/dmvpnkit-nhrpd.sock"      # the daemon's default: `dmvpnkit nhrpd show` finds it
NHRPD_LOG = "/var/log/dmvpnkit-nhrpd.log"
IMAGE_PYTHON = "/opt/dmvpnkit/bin/python"
# The last exec line: the nhrpd node's cmd waits for it, as the daemon needs gre1.
READY = "/run/dmvpnkit-underlay.ready"

# FRR 8.4's daemons file (tools/etc/frr/daemons); ours runs zebra, staticd and nhrpd.
FRR_DAEMONS = ("zebra", "staticd", "nhrpd")
FRR_OTHER_DAEMONS = ("bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "pim6d", "ldpd", "eigrpd",
                     "babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd")
VTYSH_CONF = "service integrated-vtysh-config\n"


class ExportError(ValueError):
    pass


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
    if got not in IMPLS:
        raise ExportError(f"impl[{node.role!r}] = {got!r} for {node.name} of {topo.source or topo.name}: "
                          f"use one of {', '.join(IMPLS)}")
    return got


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


def nhrpd_json(topo: Topology, node: Node, phase: int) -> str:
    """Byte for byte what NhrpdDriver.write_configs writes for the node."""
    return json.dumps(nhrpd.render(view(topo, node, phase)), indent=2) + "\n"


def daemons_file(node: Node) -> str:
    lines = [f"# /etc/frr/daemons of {node.name}, written by dmvpnkit: zebra, staticd and nhrpd."]
    lines += [f"{d}=yes" for d in FRR_DAEMONS] + [f"{d}=no" for d in FRR_OTHER_DAEMONS]
    lines += ["vtysh_enable=yes", 'zebra_options="  -A 127.0.0.1 -s 90000000"',
              'staticd_options="-A 127.0.0.1"', 'nhrpd_options="  -A 127.0.0.1"']
    return "\n".join(lines) + "\n"


def extra_exec(topo: Topology, node: Node, impl: str | None, phase: int) -> list[str]:
    """What the node's driver adds on top of the underlay, as commands: FRR hubs'
    NFLOG rules (FrrDriver.start), nhrpd's static routes and redirect rule
    (NhrpdDriver.start), then the marker nhrpd's cmd waits for."""
    if impl == "frr" and node.role == "hub":
        rules = frr.MCAST_RULES + ([frr.REDIRECT_RULE] if phase == 3 else [])
        return [shlex.join([IPTABLES, *r]) for r in rules]
    if impl != "nhrpd":
        return []
    out = [f"ip route replace {p} via {via} dev {underlay.MGRE} onlink metric {metric}"
           for p, via, metric in nhrpd.static_routes(view(topo, node, phase))]
    if node.role == "hub" and phase == 3:
        out.append(shlex.join([IPTABLES, *frr.REDIRECT_RULE]))
    return out + [f"touch {READY}"]


def impair_exec(topo: Topology, node: Node, names: Mapping[str, str]) -> list[str]:
    """The topology's link impairment of what the node sends, as tc commands."""
    return [tc_command(names.get(link.other(node.name), link.other(node.name)), link.impair[node.name])
            for link in topo.links if node.name in (link.a, link.b) and link.impair.get(node.name)]


def standalone_exec(topo: Topology, node: Node, impl: str | None, phase: int, names: Mapping[str, str]) -> list[str]:
    return (underlay.commands(rename(underlay.plan(topo, node), names)) + impair_exec(topo, node, names)
            + extra_exec(topo, node, impl, phase))


def nhrpd_cmd(node: Node, phase: int, names: Mapping[str, str]) -> str:
    """Standalone nhrpd node: wait for the underlay, then the daemon as NhrpdDriver runs it."""
    argv = [IMAGE_PYTHON, "-m", "dmvpnkit.nhrpd", "--config", NHRPD_CONFIG, "--control", NHRPD_CONTROL,
            "--nbma-interface", names.get(node.nbma_iface or "", node.nbma_iface or ""), "--log", NHRPD_LOG]
    if node.role == "hub" and phase == 3:
        argv += ["--nflog-group", str(frr.NFLOG_GROUP)]
    return shlex.join(["sh", "-c", f"until [ -e {READY} ]; do sleep 0.2; done; exec {shlex.join(argv)}"])


def source_tree() -> Path:
    """Where the harness imports dmvpnkit from (the repo's src/ for an editable install)."""
    import dmvpnkit
    return Path(dmvpnkit.__file__).resolve().parents[1]


def _same(path: Path, ro: bool = False) -> str:
    return f"{path}:{path}" + (":ro" if ro else "")


IMAGE_BASE_PYTHON = Path("/usr/bin/python3.11")     # Debian 12's, in DEFAULT_NHRPD_IMAGE


def _harness_binds(lab: str, node: Node, impl: str | None, lab_dir: Path, image: str) -> list[str]:
    """Binds that make the harness's paths the container's: what drivers write and read."""
    nid = node_id(lab, node.name)
    run_dir = ClabNode(node.name, nid).run_dir
    dirs = [lab_dir, run_dir] + ([frr.RUN_DIR / nid] if impl == "frr" else [])
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    binds = [_same(d) for d in dirs]
    if impl == "frr":
        # The image's FRR keeps vty sockets in /var/run/frr/<pathspace> (a link to
        # /run in Alpine; bound both ways in case it is not), pid files where -i says.
        binds.append(f"{frr.RUN_DIR / nid}:/var/run/frr/{nid}")
        # The harness chowns FRR's directories to its own frr user; the daemons in
        # the image must resolve `frr` to the same uid and gid.
        binds += [_same(Path("/etc/passwd"), ro=True), _same(Path("/etc/group"), ro=True)]
    if impl == "nhrpd":
        # `sys.executable -m dmvpnkit.nhrpd` unchanged: the venv (its python is the
        # host's Debian 12 /usr/bin/python3.11, as in the image) and the source tree.
        if sys.prefix == sys.base_prefix:
            raise ExportError(f"harness mode runs nhrpd nodes with the harness's venv, but {sys.executable} "
                              f"is not in one (scripts/bootstrap makes .venv)")
        if image == DEFAULT_NHRPD_IMAGE and Path(sys.executable).resolve() != IMAGE_BASE_PYTHON:
            raise ExportError(f"harness mode runs {sys.executable} in {image}, whose python is "
                              f"{IMAGE_BASE_PYTHON}, but it is {Path(sys.executable).resolve()} here: use a venv "
                              f"made by {IMAGE_BASE_PYTHON} (scripts/bootstrap does), or an image with that python")
        prefix, src = Path(sys.prefix), source_tree()
        binds.append(_same(prefix, ro=True))
        if not src.is_relative_to(prefix):
            binds.append(_same(src, ro=True))
    return binds


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _node(topo: Topology, node: Node, impl: str | None, phase: int, out_dir: Path, lab: str,
          names: Mapping[str, str], images: Mapping[str, str], harness: bool, lab_dir: Path | None,
          mgmt: bool) -> dict[str, Any]:
    image = images[impl] if impl else images["linux"]
    entry: dict[str, Any] = {"kind": "linux", "image": image, "restart-policy": "no"}
    if not mgmt:
        entry["network-mode"] = "none"
    labels = {L_ROLE: node.role, **({L_IMPL: impl} if impl else {})}
    labels.update({L_IFNAME + theirs: ours for ours, theirs in names.items() if ours != theirs})
    entry["labels"] = labels
    d = out_dir / node.name
    binds: list[str] = []
    if impl == "frr":
        for fname, text in (("daemons", daemons_file(node)), ("frr.conf", frr.render(view(topo, node, phase))),
                            ("vtysh.conf", VTYSH_CONF)):
            binds.append(f"{_write(d / fname, text)}:{FRR_ETC}/{fname}:ro")
    elif impl == "nhrpd":
        binds.append(f"{_write(d / 'nhrpd.json', nhrpd_json(topo, node, phase))}:{NHRPD_CONFIG}:ro")
    if harness:
        assert lab_dir is not None
        binds += _harness_binds(lab, node, impl, lab_dir, image)
        entry["pid-mode"] = "host"        # pid files the daemons write name host pids
        entry["cmd"] = IDLE
    else:
        entry["exec"] = standalone_exec(topo, node, impl, phase, names)
        if impl == "nhrpd":
            entry["cmd"] = nhrpd_cmd(node, phase, names)
        elif impl is None:
            entry["cmd"] = IDLE           # FRR nodes keep the image's own (watchfrr)
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
           image_frr: str = DEFAULT_FRR_IMAGE, image_nhrpd: str = DEFAULT_NHRPD_IMAGE,
           image_linux: str = DEFAULT_LINUX_IMAGE, harness: bool = False, lab_dir: Path | None = None,
           name: str | None = None, mgmt: bool = False) -> Path:
    """Write `<out_dir>/<lab>.clab.yml` and the node files it binds; return its path."""
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
    images = {"frr": image_frr, "nhrpd": image_nhrpd, "linux": image_linux}
    nodes = {n.name: _node(topo, n, impl_of(topo, impl, n), phase, out_dir, lab, names[n.name], images,
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


__all__ = ["DEFAULT_FRR_IMAGE", "DEFAULT_LINUX_IMAGE", "DEFAULT_NHRPD_IMAGE", "FRR_IMAGE_VERSION", "IDLE",
           "PREFIX", "ExportError", "daemons_file", "export", "extra_exec", "iface_names", "lab_name",
           "nhrpd_json", "node_id", "standalone_exec", "impair_exec"]
