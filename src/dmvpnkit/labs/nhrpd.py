"""dmvpnkit's own NHRP node (`dmvpnkit.nhrpd`) as a lab implementation.

What FRR gets from staticd, this driver installs itself by netlink before the node
starts: the summary routes to the NHS (and phase 2's spoke routes) onlink on the
tunnel. The node's config is JSON built from the topology; its views come from the
node's control socket, already in the normalised shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from .backend import Backend
from .frr import NFLOG_GROUP, REDIRECT_RULE, _nhs_view
from .procs import kill_all
from .spec import Node, Topology
from .underlay import IPTABLES, MGRE
from .views import CacheEntry, NhsEntry, Shortcut

RTNH_F_ONLINK = 4
START_TIMEOUT = 30.0


def render(topo: Topology, node: Node, phase: int, faults: list[str] | None = None,
           ipsec: dict[str, str] | None = None) -> dict[str, Any]:
    """The node's nhrpd.json: its DMVPN role and addresses from the topology."""
    cfg: dict[str, Any] = {
        "role": node.role, "interface": MGRE, "protocol_address": str(node.tunnel),
        "nbma_address": str(node.nbma), "network_id": topo.dmvpn.network_id,
        "holdtime": topo.dmvpn.holdtime, "unique": False, "faults": list(faults or []),
        "lan_prefixes": [str(node.lan)] if node.lan is not None else [],
    }
    if ipsec is not None:
        cfg["ipsec"] = ipsec
    if node.role == "hub":
        cfg["redirect"] = phase == 3
        cfg["routes"] = [{"prefix": str(s.lan), "via": str(s.tunnel)}
                         for s in topo.spokes if node.name in s.nhs and s.lan is not None]
    else:
        cfg["nhs"] = [{"nbma": str(h["nbma_public"]), "protocol": str(h["tunnel"])}
                      for h in (_nhs_view(topo, topo.nodes[n]) for n in node.nhs)]
        cfg["shortcut"] = phase >= 2
    return cfg


def static_routes(topo: Topology, node: Node, phase: int) -> list[tuple[str, str, int]]:
    """(prefix, via, metric) onlink on the tunnel: what FRR's staticd config says for the
    same node, installed by the driver before the node starts."""
    if node.role == "hub":
        return [(str(s.lan), str(s.tunnel), 20) for s in topo.spokes if node.name in s.nhs and s.lan]
    routes = []
    for i, h in enumerate(node.nhs):
        via = str(topo.nodes[h].tunnel)
        routes += [(str(topo.lan_summary), via, 20 + 10 * i), (str(topo.dmvpn.tunnel_prefix), via, 20 + 10 * i)]
    if phase == 2:
        routes += [(str(s.lan), str(s.tunnel), 20) for s in topo.spokes if s.name != node.name and s.lan]
    return routes


class NhrpdDriver:
    name = "nhrpd"
    # Features the suite may ask for (`@pytest.mark.feature`) that this node lacks.
    UNIMPLEMENTED = {
        "multicast": "no multicast replication to registered spokes",
        "purge-resolvers": "the NHS does not purge stations that resolved a binding that has since moved",
    }

    def __init__(self, lab: Backend, lab_dir: Path, phase: int, nodes: list[str] | None = None,
                 faults: dict[str, list[str]] | None = None,
                 ipsec: dict[str, dict[str, str]] | None = None):
        self.lab = lab
        self.topo = lab.topo
        self.dir = lab_dir
        self.phase = phase
        self.nodes = nodes if nodes is not None else [n.name for n in self.topo.nodes.values() if n.is_dmvpn]
        self.faults = faults or {}         # node or role -> fault switch names
        self.ipsec = ipsec or {}           # node -> its `ipsec` config: charon's VICI socket & co.
        self.procs: dict[str, subprocess.Popen] = {}

    def version(self) -> str:
        return f"dmvpnkit-nhrpd {__version__}"

    def control(self, node: str) -> Path:
        return self.lab.node(node).run_dir / "nhrpd.sock"

    # ------------------------------------------------------------ configuration
    def config(self, node: Node) -> dict[str, Any]:
        return render(self.topo, node, self.phase, self.faults.get(node.name, self.faults.get(node.role, [])),
                      self.ipsec.get(node.name))

    def write_configs(self) -> None:
        for name in self.nodes:
            d = self.dir / "nodes" / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "nhrpd.json").write_text(json.dumps(self.config(self.topo.nodes[name]), indent=2) + "\n")

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for name in self.nodes:
            node = self.topo.nodes[name]
            ipr = self.lab.node(name).ipr()
            gre = ipr.link_lookup(ifname=MGRE)[0]
            for prefix, via, metric in static_routes(self.topo, node, self.phase):
                ipr.route("replace", dst=prefix, gateway=via, oif=gre, flags=RTNH_F_ONLINK, priority=metric)
            if node.role == "hub" and self.phase == 3:
                self.lab.node(name).run([IPTABLES, *REDIRECT_RULE])
            self.start_daemon(name, wait=False)
        for name in self.nodes:
            self._wait(name)

    def start_daemon(self, node: str, daemon: str = "nhrpd", wait: bool = True) -> None:
        n = self.topo.nodes[node]
        d = self.dir / "nodes" / node
        self.control(node).parent.mkdir(parents=True, exist_ok=True)
        self.control(node).unlink(missing_ok=True)
        argv = [sys.executable, "-m", "dmvpnkit.nhrpd", "--config", str(d / "nhrpd.json"),
                "--control", str(self.control(node)), "--nbma-interface", str(n.nbma_iface),
                "--log", str(d / "nhrpd.log")]
        if n.role == "hub" and self.phase == 3:
            argv += ["--nflog-group", str(NFLOG_GROUP)]
        with open(d / "nhrpd.stderr", "ab") as err:
            self.procs[node] = self.lab.node(node).popen(argv, stderr=err, new_session=True, in_image=True)
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
        for pid in self.lab.node(node).pids():
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
        kill_all([pid for name in self.nodes for pid in self._pids(name)])
        for p in self.procs.values():
            p.poll()
        self.procs.clear()
        for name in self.nodes:
            self.control(name).unlink(missing_ok=True)

    # ------------------------------------------------------------ views
    def _view(self, node: str, what: str) -> list[dict[str, Any]]:
        from ..nhrpd.linux import query     # the daemon's code, only when a node is asked
        got = query(self.control(node), what)
        if isinstance(got, dict) and "error" in got:
            raise RuntimeError(f"{node}: nhrpd: {got['error']}")
        return list(got)

    def cache(self, node: str) -> list[CacheEntry]:
        return [CacheEntry(**e) for e in self._view(node, "cache")]

    def nhs(self, node: str) -> list[NhsEntry]:
        return [NhsEntry(**e) for e in self._view(node, "nhs")]

    def shortcuts(self, node: str) -> list[Shortcut]:
        return [Shortcut(**e) for e in self._view(node, "shortcuts")]
