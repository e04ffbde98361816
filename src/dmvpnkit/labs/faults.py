"""Faults a case injects into a running lab; each one undoes itself.

Every fault is a context manager: whatever happens inside the `with` block (a failed
assertion, Ctrl-C), the lab is put back as it was, so the next case in the module
starts from a working network.
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv4Network
from typing import Iterator

from .lab import Lab
from .netns import IPTABLES


class FaultError(RuntimeError):
    pass


class Faults:
    def __init__(self, lab: Lab):
        self.lab = lab

    def _node(self, name: str):
        node = self.lab.topo.nodes.get(name)
        if node is None or node.nbma_iface is None:
            raise FaultError(f"{name!r} is not a DMVPN node of lab {self.lab.name}")
        return node

    @contextlib.contextmanager
    def link_loss(self, node: str) -> Iterator[None]:
        """Everything in or out of the node's NBMA interface is dropped, as when its
        uplink is cut; the interface and its routes stay as they were."""
        iface = self._node(node).nbma_iface
        rules = [["INPUT", "-i", iface], ["OUTPUT", "-o", iface], ["FORWARD", "-i", iface],
                 ["FORWARD", "-o", iface]]
        added = []
        try:
            for r in rules:
                self.lab.net.run(node, [IPTABLES, "-I", *r, "-j", "DROP"])
                added.append(r)
            yield
        finally:
            for r in added:
                self.lab.net.run(node, [IPTABLES, "-D", *r, "-j", "DROP"], check=False)

    @contextlib.contextmanager
    def daemon_down(self, node: str, daemon: str = "nhrpd") -> Iterator[None]:
        self._node(node)
        self.lab.driver.stop_daemon(node, daemon)
        try:
            yield
        finally:
            self.lab.driver.start_daemon(node, daemon)

    def restart_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        with self.daemon_down(node, daemon):
            pass

    @contextlib.contextmanager
    def nbma_change(self, node: str) -> Iterator[IPv4Address]:
        """Renumber the node's NBMA address into a fresh /30 (as a DHCP lease change
        would), yield the new address, and renumber it back afterwards."""
        n = self._node(node)
        upstream = n.nbma_iface               # the veth is named after the peer node
        old = n.iface(n.nbma_iface).address
        old_gw = n.gateway
        new_net = self._free_net(old.network)
        new_gw, new_ip = list(new_net.hosts())[:2]
        up, me = self.lab.net.ipr(upstream), self.lab.net.ipr(node)
        up_idx = up.link_lookup(ifname=node)[0]
        me_idx = me.link_lookup(ifname=n.nbma_iface)[0]
        plen = old.network.prefixlen
        # The old subnet goes away on both ends, as with a new lease: packets still sent
        # to the old address are then unroutable, not looped back by the upstream.
        up.addr("add", index=up_idx, address=str(new_gw), prefixlen=30)
        up.addr("del", index=up_idx, address=str(old_gw), prefixlen=plen)
        try:
            me.addr("add", index=me_idx, address=str(new_ip), prefixlen=30)
            me.route("replace", dst="0.0.0.0/0", gateway=str(new_gw))
            me.addr("del", index=me_idx, address=str(old.ip), prefixlen=plen)
            try:
                yield new_ip
            finally:
                me.addr("add", index=me_idx, address=str(old.ip), prefixlen=plen)
                up.addr("add", index=up_idx, address=str(old_gw), prefixlen=plen)
                me.route("replace", dst="0.0.0.0/0", gateway=str(old_gw))
                me.addr("del", index=me_idx, address=str(new_ip), prefixlen=30)
        finally:
            if not up.get_addr(index=up_idx, address=str(old_gw)):
                up.addr("add", index=up_idx, address=str(old_gw), prefixlen=plen)
            up.addr("del", index=up_idx, address=str(new_gw), prefixlen=30)

    def _free_net(self, near: IPv4Network) -> IPv4Network:
        """A /30 in the same /16 as `near` that no link of the topology uses."""
        used = [link.prefix for link in self.lab.topo.links]
        pool = near.supernet(new_prefix=16)
        for net in reversed(list(pool.subnets(new_prefix=30))):
            if not any(net.overlaps(u) for u in used):
                return net
        raise FaultError(f"no free /30 left in {pool} to renumber into")


