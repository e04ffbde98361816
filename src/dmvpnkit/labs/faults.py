"""Faults a case injects into a running lab; each one undoes itself.

Every fault is a context manager: whatever happens inside the `with` block (a failed
assertion, Ctrl-C), the lab is put back as it was, so the next case in the module
starts from a working network.
"""

from __future__ import annotations

import contextlib
import time
from ipaddress import IPv4Address, IPv4Network
from typing import Iterator

from .impairment import Impairment, check_direction
from .lab import Lab
from .underlay import IPTABLES


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
                self.lab.node(node).run([IPTABLES, "-I", *r, "-j", "DROP"])
                added.append(r)
            yield
        finally:
            for r in added:
                self.lab.node(node).run([IPTABLES, "-D", *r, "-j", "DROP"], check=False)

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
        up, me = self.lab.node(upstream).ipr(), self.lab.node(node).ipr()
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

    @contextlib.contextmanager
    def impair(self, target: str, *, delay: float = 0.0, jitter: float = 0.0, loss: float = 0.0, rate: int = 0,
               direction: str = "both") -> Iterator["Impaired"]:
        """Impair a node's uplink (`target` a node name) or one link (`"spoke1:inet"`),
        netem-style: `delay`/`jitter` in ms, `loss` in %, `rate` in kbit/s, applied to
        what each end sends (`direction` both, `out` of the node, or `in` to it).
        Yields a handle whose `mark` was taken before anything changed and whose
        `set()` changes the impairment in place; on exit the link is back to the
        topology's default."""
        a, b = self._ends(target)
        ends = {"both": [(a, b), (b, a)], "out": [(a, b)], "in": [(b, a)]}[check_direction(direction)]
        handle = Impaired(self.lab, ends)
        try:
            handle.set(delay=delay, jitter=jitter, loss=loss, rate=rate)
            handle.mark = handle.changed
            yield handle
        finally:
            for n, p in handle.applied:
                self.lab.backend.impair(n, p, None)

    def _ends(self, target: str) -> tuple[str, str]:
        topo = self.lab.topo
        a, sep, b = target.partition(":")
        if not sep:
            node = topo.nodes.get(a)
            b = (node.nbma_iface or node.public_iface or (node.ifaces[0].name if node.ifaces else "")) \
                if node is not None else ""
        try:
            topo.link(a, b)
        except KeyError:
            raise FaultError(f"impair {target!r}: lab {self.lab.name} has no such "
                             f"{'link' if sep else 'node with an uplink'} "
                             f"(links: {', '.join(f'{x.a}:{x.b}' for x in topo.links)})") from None
        return a, b


class Impaired:
    """An impairment in effect on one or both ends of a link."""

    def __init__(self, lab: Lab, ends: list[tuple[str, str]]):
        self.lab = lab
        self.ends = ends
        self.applied: list[tuple[str, str]] = []
        self.mark = 0.0             # time.time() before the impairment was first applied
        self.changed = 0.0          # ... before it was last changed
        self.impairment = Impairment()

    def set(self, *, delay: float = 0.0, jitter: float = 0.0, loss: float = 0.0, rate: int = 0) -> None:
        """Replace the impairment on every end this handle covers."""
        imp = Impairment(delay=delay, jitter=jitter, loss=loss, rate=rate)
        self.changed = time.time()
        for n, p in self.ends:
            self.lab.backend.impair(n, p, imp)
            if (n, p) not in self.applied:
                self.applied.append((n, p))
        self.impairment = imp

