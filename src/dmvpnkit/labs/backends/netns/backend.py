"""The netns backend (the embedded default): one network namespace per node, built
in-process over netlink.

veth pairs are created inside one node with the peer placed straight into the
other, so no lab interface ever exists in the root namespace. Link impairment is tc
netem through pyroute2.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import ClassVar

from pyroute2 import NetlinkError
from pyroute2.netlink.rtnl import TC_H_ROOT

from ...backend import BackendError
from ...impairment import Impairment, ImpairmentError, NoNetem
from ...spec import Topology
from .namespaces import create_netns, ns_prefix, reap, running_labs
from .node import RUN_ROOT, NamespaceNode


class NetnsBackend:
    name: ClassVar[str] = "netns"
    in_lab_kernel: ClassVar[bool] = True

    def __init__(self, lab: str, topo: Topology, lab_dir: Path):
        self.lab = lab
        self.topo = topo
        self.lab_dir = lab_dir
        self.prefix = ns_prefix(lab)
        self._nodes: dict[str, NamespaceNode] = {}

    @classmethod
    def available(cls) -> str | None:
        return None if os.geteuid() == 0 else "network namespaces need root"

    def node(self, name: str) -> NamespaceNode:
        if name not in self._nodes:
            if name not in self.topo.nodes:
                raise BackendError(f"lab {self.lab} has no node {name!r} "
                                   f"(nodes: {', '.join(self.topo.nodes)})")
            self._nodes[name] = NamespaceNode(name, self.prefix + name)
        return self._nodes[name]

    def build(self) -> None:
        for name in self.topo.nodes:
            create_netns(self.prefix + name)
            self.node(name).run_dir.mkdir(parents=True, exist_ok=True)
        for link in self.topo.links:
            self.node(link.a).ipr().link("add", ifname=link.b, kind="veth",
                                         peer={"ifname": link.a, "net_ns_fd": self.prefix + link.b})
        for link in self.topo.links:
            for a, b in ((link.a, link.b), (link.b, link.a)):
                if link.impair.get(a):
                    self.impair(a, b, link.impair[a])

    def attach(self) -> None:
        """Nothing to do: every node is reached by its namespace's name."""

    def impair(self, node: str, peer: str, imp: Impairment | None) -> None:
        imp = imp if imp is not None else self.topo.link(node, peer).impair.get(node)
        set_netem(self.node(node), peer, imp)

    def destroy(self) -> list[str]:
        for n in self._nodes.values():
            n.close()
        self._nodes.clear()
        return self.reap(self.lab)

    @classmethod
    def reap(cls, lab: str) -> list[str]:
        removed = reap(ns_prefix(lab))
        for d in RUN_ROOT.glob(f"{ns_prefix(lab)}*") if RUN_ROOT.is_dir() else []:
            shutil.rmtree(d, ignore_errors=True)
        return removed

    @classmethod
    def running(cls) -> set[str]:
        return running_labs()

    def cli(self) -> int:
        raise BackendError("the netns backend has no lab console: use `dmvpnkit lab shell NODE` "
                           "(or --backend mininet for Mininet's CLI)")


def set_netem(node: NamespaceNode, ifname: str, imp: Impairment | None) -> None:
    """Replace the root qdisc of `ifname` with netem for `imp` (none: the default)."""
    ipr = node.ipr()
    idx = ipr.link_lookup(ifname=ifname)
    if not idx:
        raise ImpairmentError(f"{node.name} has no interface {ifname!r}")
    try:
        ipr.tc("del", index=idx[0], handle=0, parent=TC_H_ROOT)
    except NetlinkError as e:
        if e.code not in (errno.ENOENT, errno.EINVAL):      # nothing there to delete
            raise
    if imp is None or imp.none:
        return
    kw: dict[str, object] = {"delay": int(imp.delay * 1000), "jitter": int(imp.jitter * 1000), "loss": imp.loss}
    if imp.rate:
        kw["rate"] = f"{imp.rate}kbit"
    try:
        ipr.tc("add", "netem", index=idx[0], handle="1:", **kw)
    except NetlinkError as e:
        if e.code == errno.ENOENT:
            raise NoNetem(f"{node.name}:{ifname}: this kernel ({os.uname().release}) has no netem "
                                  f"qdisc (sch_netem); impairment needs the UML lab kernel (--kernel uml) "
                                  f"or a kernel with sch_netem") from None
        raise ImpairmentError(f"{node.name}:{ifname}: tc netem {imp.describe()} failed: {e}") from None


__all__ = ["NetnsBackend", "set_netem"]
