"""dmvpnkit's own NHRP node (`dmvpnkit.nhrpd`) as a lab implementation.

What FRR gets from staticd, this driver installs itself by netlink before the node
starts: the summary routes to the NHS (and phase 2's spoke routes) onlink on the
tunnel. The node's config is JSON built from the topology; its views come from the
node's control socket, already in the normalised shape.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from ... import __version__
from .frr import IMAGE_IPTABLES, MCAST_NFLOG_GROUP, NFLOG_GROUP, FrrRouting, node_rules, node_rules6
from ..procs import kill_all
from ..underlay import MGRE, add_rules
from ..views import CacheEntry, NhsEntry, Shortcut
from . import VIEWS, ContainerPlan, Driver, ImplementationError, Setup
from .view import DmvpnView

RTNH_F_ONLINK, SCOPE_LINK = 4, 253
START_TIMEOUT = 30.0
# An nhrpd's start is CPU-bound (the interpreter and its imports): a hundred started
# at once in a one-CPU guest share it, and none is up within START_TIMEOUT. This many
# at a time keep the CPU busy and each start well within it.
PARALLEL_STARTS = 8

# As a containerlab node: an image built from containers/nhrpd/Dockerfile (default target).
IMAGE = f"dmvpnkit/nhrpd:{__version__}"
IMAGE_PYTHON = "/opt/dmvpnkit/bin/python"
IMAGE_BASE_PYTHON = Path("/usr/bin/python3.11")     # Debian 12's, which the image's venv is made from
CONFIG = "/etc/dmvpnkit/nhrpd.json"
CONTROL = "/run/dmvpnkit-nhrpd.sock"      # the daemon's default: `dmvpnkit nhrpd show` finds it
LOG = "/var/log/dmvpnkit-nhrpd.log"
READY = "/run/dmvpnkit-underlay.ready"     # the last exec line: the daemon needs gre1 first


def render(v: DmvpnView, faults: list[str] | None = None, ipsec: dict[str, str] | None = None) -> dict[str, Any]:
    """The node's nhrpd.json."""
    cfg: dict[str, Any] = {
        "role": v.role, "interface": v.interface, "protocol_address": str(v.tunnel_address),
        "nbma_address": str(v.nbma_address), "network_id": v.network_id,
        "holdtime": v.holdtime, "unique": False, "faults": list(faults or []),
        "lan_prefixes": [str(p) for p in v.lan_prefixes],
        "multicast": v.multicast,
    }
    if ipsec is not None:
        cfg["ipsec"] = ipsec
    if v.role == "hub":
        cfg["redirect"] = v.redirect
        cfg["routes"] = [{"prefix": str(r.prefix), "via": str(r.via)} for r in v.routes if r.kind == "spoke-lan"]
    else:
        cfg["nhs"] = [{"nbma": str(h.nbma), "protocol": str(h.protocol)} for h in v.nhs]
        cfg["shortcut"] = v.shortcut
    if v.ipv6 is not None:      # the daemon's second engine
        six = v.ipv6
        cfg["ipv6"] = {"protocol_address": str(six.tunnel_address), "lan_prefixes": [str(p) for p in six.lan_prefixes]}
        if v.role == "hub":
            cfg["ipv6"]["routes"] = [{"prefix": str(r.prefix), "via": str(r.via)} for r in six.routes
                                     if r.kind == "spoke-lan"]
        else:
            cfg["ipv6"]["nhs"] = [str(p) for p in six.nhs]
    return cfg


def argv(v: DmvpnView, python: str, config: str, control: str, log: str) -> list[str]:
    """The daemon's command line; the NFLOG groups are node_rules(v)'s."""
    out = [python, "-m", "dmvpnkit.nhrpd", "--config", config, "--control", control,
           "--nbma-interface", v.nbma_interface, "--log", log]
    if v.redirect:
        out += ["--nflog-group", str(NFLOG_GROUP)]
    if v.multicast:
        out += ["--multicast-nflog-group", str(MCAST_NFLOG_GROUP)]
    if v.routing != "static":
        out += ["--learn-routes"]
    return out


def static_routes(v: DmvpnView) -> list[tuple[str, str, int]]:
    """(prefix, via, metric) onlink on the tunnel: the view's routes, which FRR's staticd
    gets from its config; this driver installs them before the node starts."""
    six = v.ipv6.routes if v.ipv6 is not None else ()
    return [(str(r.prefix), str(r.via), 20 + 10 * r.preference) for routes in (v.routes, six) for r in routes
            if r.via is not None]


def tunnel_address(v: DmvpnView) -> tuple[str, int] | None:
    """(address, prefix length) the tunnel must have instead of the underlay's host
    address: the tunnel prefix's in phase 2 under OSPF (DmvpnView.subnet). None: as is."""
    return (str(v.tunnel_address), v.tunnel_prefix.prefixlen) if v.subnet else None


def link_routes(v: DmvpnView) -> list[str]:
    """Under BGP or OSPF, prefixes on-link on the tunnel (their neighbour entries carry
    them): a hub's tunnel prefix, for its sessions to the spokes; a spoke's NHSs, which
    zebra must see as directly reachable to resolve the routes learned from them (FRR's
    nhrpd adds such a host route per peer), or in phase 2 the whole tunnel prefix (the
    view's `tunnel` route: far spokes are next hops). Static routing needs none, nor
    does a tunnel that is one subnet (DmvpnView.subnet)."""
    if v.routing == "static" or v.subnet:
        return []
    if v.role == "hub":
        return [str(v.tunnel_prefix)]
    return [str(r.prefix) for r in v.routes if r.via is None] or [f"{h.protocol}/32" for h in v.nhs]


class NhrpdDriver(Driver):
    name = "nhrpd"
    unimplemented: Mapping[str, str] = {
        "purge-resolvers": "the NHS does not purge stations that resolved a binding that has since moved",
    }
    views = VIEWS
    ipsec_couplings = ("vici",)
    # Its fault switches that send GRE before IKE is done: the lab leaves charon's drop shunt out.
    unshunted_faults = frozenset({"ipsec-cleartext-first", "ipsec-register-in-clear-once"})

    def __init__(self, setup: Setup):
        super().__init__(setup)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # BGP or OSPF: FRR's zebra and routing daemon beside nhrpd on every node.
        self.routing = FrrRouting(setup) if self.topo.dmvpn.routing != "static" else None

    @classmethod
    def version(cls, variables: Mapping[str, str]) -> str:
        return f"dmvpnkit-nhrpd {__version__}"

    @classmethod
    def container(cls, v: DmvpnView, *, node_id: str, harness: bool, image: str | None) -> ContainerPlan:
        """Standalone: start()'s routes and rule as commands, then the image's daemon once
        they are in. Harness: start() runs `sys.executable -m dmvpnkit.nhrpd` unchanged in
        the image, so the venv (and the source tree of an editable install) is bound there."""
        files = {CONFIG: json.dumps(render(v), indent=2) + "\n"}
        if not harness:
            run = [f"ip address replace {a}/{n} dev {MGRE}; ip address del {a}/32 dev {MGRE}"
                   for a, n in filter(None, [tunnel_address(v)])]
            run += [f"ip route replace {p} via {via} dev {MGRE} onlink metric {metric}"
                    for p, via, metric in static_routes(v)]
            run += [f"ip route replace {p} dev {MGRE} scope link" for p in link_routes(v)]
            run += [shlex.join([IMAGE_IPTABLES, *r]) for r in node_rules(v)]
            daemon = argv(v, IMAGE_PYTHON, CONFIG, CONTROL, LOG)
            wait = f"until [ -e {READY} ]; do sleep 0.2; done; exec {shlex.join(daemon)}"
            return ContainerPlan(image or IMAGE, files, exec=(*run, f"touch {READY}"),
                                 cmd=shlex.join(["sh", "-c", wait]))
        if sys.prefix == sys.base_prefix:
            raise ImplementationError(f"harness mode runs nhrpd nodes with the harness's venv, but {sys.executable} "
                                      f"is not in one (scripts/bootstrap makes .venv)")
        if image is None and Path(sys.executable).resolve() != IMAGE_BASE_PYTHON:
            raise ImplementationError(
                f"harness mode runs {sys.executable} in {IMAGE}, whose python is {IMAGE_BASE_PYTHON}, but it is "
                f"{Path(sys.executable).resolve()} here: use a venv made by {IMAGE_BASE_PYTHON} "
                f"(scripts/bootstrap does), or an image with that python")
        prefix, src = Path(sys.prefix), Path(__file__).resolve().parents[3]    # .../src of dmvpnkit
        binds = [f"{prefix}:{prefix}:ro"] + ([] if src.is_relative_to(prefix) else [f"{src}:{src}:ro"])
        return ContainerPlan(image or IMAGE, files, binds=tuple(binds))

    def control(self, node: str) -> Path:
        return self.backend.node(node).run_dir / "nhrpd.sock"

    # ------------------------------------------------------------ configuration
    def config(self, node: str) -> dict[str, Any]:
        ipsec = self.setup.ipsec
        return render(self.setup.view(node), list(self.setup.nhrpd_faults),
                      ipsec.vici_config(node) if ipsec is not None else None)

    def write_configs(self) -> None:
        for name in self.nodes:
            d = self.dir / "nodes" / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "nhrpd.json").write_text(json.dumps(self.config(name), indent=2) + "\n")
        if self.routing is not None:
            self.routing.write_configs()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        starting: list[str] = []
        for name in self.nodes:
            ipr = self.backend.node(name).ipr()
            gre = ipr.link_lookup(ifname=MGRE)[0]
            v = self.setup.view(name)
            if (subnet := tunnel_address(v)) is not None:
                ipr.addr("add", index=gre, address=subnet[0], prefixlen=subnet[1])
                ipr.addr("del", index=gre, address=subnet[0], prefixlen=32)
            for prefix, via, metric in static_routes(v):
                ipr.route("replace", dst=prefix, gateway=via, oif=gre, flags=RTNH_F_ONLINK, priority=metric)
            for prefix in link_routes(v):
                ipr.route("replace", dst=prefix, oif=gre, scope=SCOPE_LINK)
            for rules, six in ((node_rules(v), False), (node_rules6(v), True)):
                if rules:
                    add_rules(self.backend.node(name), rules, self.dir / "nodes" / name, ipv6=six)
            self.start_daemon(name, wait=False)
            starting.append(name)
            if len(starting) == PARALLEL_STARTS:
                self._wait(starting.pop(0))
        for name in starting:
            self._wait(name)
        if self.routing is not None:
            # Into a settled tunnel: started before its routes and daemons, a spoke now and
            # then connected to the hub's listen range twice at once, and the session that
            # came up never carried an UPDATE either way (3 labs of 16; none of 5 since).
            self.routing.start()

    def start_daemon(self, node: str, daemon: str = "nhrpd", wait: bool = True) -> None:
        d = self.dir / "nodes" / node
        self.control(node).parent.mkdir(parents=True, exist_ok=True)
        self.control(node).unlink(missing_ok=True)
        daemon_argv = argv(self.setup.view(node), sys.executable, str(d / "nhrpd.json"), str(self.control(node)),
                           str(d / "nhrpd.log"))
        with open(d / "nhrpd.stderr", "ab") as err:
            self.procs[node] = self.backend.node(node).popen(daemon_argv, stderr=err, new_session=True,
                                                             in_image=True)
        if wait:
            self._wait(node)

    def _wait(self, node: str) -> None:
        p = self.procs[node]
        deadline = time.monotonic() + START_TIMEOUT
        while not self.control(node).exists():
            if p.poll() is not None or time.monotonic() > deadline:
                err = (self.dir / "nodes" / node / "nhrpd.stderr").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{node}: nhrpd did not start (exit {p.poll()}):\n{err}")
            time.sleep(0.05)

    def _pids(self, node: str) -> list[int]:
        """The node's nhrpd processes, found in its namespace (works from any process)."""
        found = []
        for pid in self.backend.node(node).pids():
            try:
                if b"dmvpnkit.nhrpd" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                pass
        return found

    def stop_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        pids = self._pids(node)
        if not pids:
            raise RuntimeError(f"{node}: nhrpd is not running")
        kill_all(pids)
        p = self.procs.pop(node, None)
        if p is not None:
            p.poll()            # reap our child
        self.control(node).unlink(missing_ok=True)

    def stop(self) -> None:
        if self.routing is not None:
            self.routing.stop()
        kill_all([pid for name in self.nodes for pid in self._pids(name)])
        for p in self.procs.values():
            p.poll()
        self.procs.clear()
        for name in self.nodes:
            self.control(name).unlink(missing_ok=True)

    # ------------------------------------------------------------ views
    def _view(self, node: str, what: str) -> list[dict[str, Any]]:
        """One view of the node, each family's entries: from its control socket."""
        return [e for family in self.families(node) for e in self._family_view(node, what, family)]

    def _family_view(self, node: str, what: str, family: int) -> list[dict[str, Any]]:
        """`{"show": what, "family": 4|6}` in, a JSON line out."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5.0)
            s.connect(str(self.control(node)))
            s.sendall(json.dumps({"show": what, "family": family}).encode())
            buf = b""
            while not buf.endswith(b"\n") and (chunk := s.recv(65536)):
                buf += chunk
        got = json.loads(buf)
        if isinstance(got, dict) and "error" in got:
            raise RuntimeError(f"{node}: nhrpd: {got['error']}")
        return list(got)

    def cache(self, node: str) -> list[CacheEntry]:
        return [CacheEntry(**e) for e in self._view(node, "cache")]

    def nhs(self, node: str) -> list[NhsEntry]:
        return [NhsEntry(**e) for e in self._view(node, "nhs")]

    def shortcuts(self, node: str) -> list[Shortcut]:
        return [Shortcut(**e) for e in self._view(node, "shortcuts")]
