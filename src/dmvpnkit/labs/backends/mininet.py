"""The Mininet backend: Debian's Mininet 2.3 builds the lab.

Every lab node is a Mininet host (a shell in a network namespace of its own), every
link a `TCLink` between two of them: no switch, no controller, no NAT node (those
run in the root namespace). Mininet's `fixLimits()` (root sysctls and rlimits) is
never called, nor `mininet.clean` (host-wide killall, `rm /tmp/*.log`).

Each host's namespace is named `dk-<lab>-<node>` as soon as its shell exists, so the
harness reaches it like a netns node (backends.netns.NamespaceNode) from any process,
and teardown finds everything by that name, also after a SIGKILL of the process that
built the lab (Mininet's own shells die with it; daemons and namespaces stay for
`reap`). Link impairment is Mininet's: `TCIntf.config()` on the link's interfaces.
A process that did not build the lab (`dmvpnkit lab cli`) gets an attached Mininet:
hosts whose shells enter the named namespaces and links over the existing veths.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..backend import BackendError
from ..impairment import Impairment, ImpairmentError, NoNetem
from ..spec import Topology
from .netns import NETNS_DIR, NetnsBackend, name_netns

if TYPE_CHECKING:       # Mininet is imported only when a lab is built or attached
    from mininet.link import TCIntf
    from mininet.net import Mininet

STATE_DIR = Path("/run/dmvpnkit/mininet")
TOOLS = ("mnexec", "ifconfig")


def tc_params(imp: Impairment | None) -> dict[str, Any]:
    """Impairment -> TCIntf.config() keywords (Mininet: delay/jitter strings, loss %, bw Mbit/s)."""
    if imp is None or imp.none:
        return {}
    p: dict[str, Any] = {}
    if imp.delay:
        p["delay"] = f"{imp.delay:g}ms"
    if imp.jitter:
        p["jitter"] = f"{imp.jitter:g}ms"
    if imp.loss:
        p["loss"] = imp.loss
    if imp.rate:
        p["bw"] = imp.rate / 1000.0
    return p


class MininetBackend(NetnsBackend):
    """Mininet builds and impairs; nodes are reached, and reaped, as named namespaces."""

    name: ClassVar[str] = "mininet"

    def __init__(self, lab: str, topo: Topology, lab_dir: Path):
        super().__init__(lab, topo, lab_dir)
        self.net: Mininet | None = None

    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return "Mininet needs root"
        if importlib.util.find_spec("mininet") is None:
            return ("Debian's mininet package is not importable here (apt-get install --no-install-recommends "
                    "mininet; scripts/bootstrap links it into the venv)")
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            return f"{', '.join(missing)} not on PATH (Debian packages mininet, net-tools)"
        return None

    @property
    def state(self) -> Path:
        return STATE_DIR / self.lab

    # ------------------------------------------------------------ bring-up
    def build(self) -> None:
        net = self._mininet()
        self.state.mkdir(parents=True, exist_ok=True)
        for name in self.topo.nodes:
            host = net.addHost(name, ip=None)
            name_netns(self.prefix + name, host.pid)
            self.node(name).run_dir.mkdir(parents=True, exist_ok=True)
        (self.state / "hosts.json").write_text(json.dumps({h.name: h.pid for h in net.hosts}) + "\n")
        for link in self.topo.links:
            net.addLink(link.a, link.b, intfName1=link.b, intfName2=link.a)
        for link in self.topo.links:        # TCIntf.config() of each impaired end, its errors checked
            for a, b in ((link.a, link.b), (link.b, link.a)):
                if link.impair.get(a):
                    self.impair(a, b, link.impair[a])

    def _mininet(self, attached: bool = False) -> Mininet:
        from mininet.link import TCIntf, TCLink
        from mininet.net import Mininet
        from mininet.node import Host

        # Mininet.__init__ calls Mininet.init() (the base class's, whatever the
        # subclass), whose fixLimits() raises root sysctls and rlimits: mark it done.
        Mininet.inited = True

        class AttachedHost(Host):   # type: ignore[misc]
            """A host whose shell enters the lab's named namespace instead of a new one."""

            def _popen(self, cmd: list[str], **params: Any) -> Any:
                if cmd[:1] == ["mnexec"] and "bash" in cmd:
                    ns = NETNS_DIR / f"{self.params['dk_prefix']}{self.name}"
                    cmd = ["mnexec", cmd[1].replace("n", ""), "nsenter", f"--net={ns}", *cmd[2:]]
                return super()._popen(cmd, **params)

        class ExistingLink(TCLink):  # type: ignore[misc]
            """A TCLink over a veth pair that is already there."""

            @classmethod
            def makeIntfPair(cls, *args: Any, **kwargs: Any) -> None:
                return None

        if attached:
            net = Mininet(topo=None, controller=None, host=AttachedHost, link=ExistingLink, intf=TCIntf,
                         build=False)
            for name in self.topo.nodes:
                net.addHost(name, ip=None, dk_prefix=self.prefix)
            for link in self.topo.links:    # MACs stay: no addresses given
                net.addLink(link.a, link.b, intfName1=link.b, intfName2=link.a, addr1=None, addr2=None)
        else:
            net = Mininet(topo=None, controller=None, host=Host, link=TCLink, intf=TCIntf, build=False)
        self.net = net
        return net

    def attach(self) -> None:
        """Nodes are reached by name; Mininet's objects only when asked for (cli, impair)."""

    def mininet(self) -> Mininet:
        """The lab's Mininet: the one that built it, or one attached to it."""
        if self.net is None:
            if not (NETNS_DIR / f"{self.prefix}{next(iter(self.topo.nodes))}").exists():
                raise BackendError(f"lab {self.lab} is not running on Mininet")
            self._mininet(attached=True)
        assert self.net is not None
        return self.net

    def impair(self, node: str, peer: str, imp: Impairment | None) -> None:
        intf: TCIntf = self.mininet()[node].intf(peer)
        if intf is None or intf.name != peer:
            raise ImpairmentError(f"{node} has no interface {peer!r}")
        default = self.topo.link(node, peer).impair.get(node)
        # TCIntf.config() with nothing to set leaves the old qdisc: clear it first.
        intf.tc("%s qdisc del dev %s root")
        params = tc_params(imp if imp is not None else default)
        if params:
            result = intf.config(**params) or {}
            errors = " ".join(o for o in result.get("tcoutputs", []) if o.strip()).strip()
            if "qdisc kind is unknown" in errors:
                raise NoNetem(f"{node}:{peer}: this kernel ({os.uname().release}) lacks a qdisc TCLink needs "
                              f"(sch_netem, sch_htb): {errors}")
            if errors:
                raise ImpairmentError(f"{node}:{peer}: tc refused {params}: {errors}")

    # ------------------------------------------------------------ teardown
    def destroy(self) -> list[str]:
        if self.net is not None:
            for host in self.net.hosts:
                host.terminate()        # SIGHUP to the node's shell; reap takes the rest
            self.net = None
        return super().destroy()

    @classmethod
    def reap(cls, lab: str) -> list[str]:
        """Every process in the lab's named namespaces (shells, daemons), by PID, then
        the namespaces; Mininet's veths go with them."""
        removed = super().reap(lab)
        shutil.rmtree(STATE_DIR / lab, ignore_errors=True)
        return removed

    @classmethod
    def running(cls) -> set[str]:
        return {d.name for d in STATE_DIR.iterdir()} if STATE_DIR.is_dir() else set()

    def cli(self) -> int:
        from mininet.cli import CLI
        net = self.mininet()
        for host in net.hosts:          # the underlay set them behind Mininet's back
            for intf in host.intfList():
                intf.updateIP()
        CLI(net)
        return 0


__all__ = ["MininetBackend", "tc_params"]
