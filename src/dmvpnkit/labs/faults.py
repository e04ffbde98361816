"""Faults a case injects into a running lab; each one undoes itself.

Every fault is a context manager: whatever happens inside the `with` block (a failed
assertion, Ctrl-C), the lab is put back as it was, so the next case in the module
starts from a working network. Each yields a `Fault` whose `mark` was taken before it
acted and whose `lifted` is taken before it is undone: an implementation may react
before the fault hands control back (FRR registers from a new address on the netlink
event), so a case looks for effects after these marks, never after a time it takes itself.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Iterator

from .impairment import Impairment, check_direction
from .lab import Lab
from .spec import Node
from .underlay import IPTABLES


class FaultError(RuntimeError):
    pass


@dataclass
class Fault:
    """A fault in effect: `mark` is time.time() just before it acted, `lifted` just
    before it was undone (0.0 while it is in effect)."""
    mark: float = 0.0
    lifted: float = 0.0

    def act(self) -> None:
        self.mark = time.time()

    def lift(self) -> None:
        self.lifted = time.time()


@dataclass
class NbmaChange(Fault):
    address: IPv4Address | None = None      # the node's new NBMA address


class Faults:
    def __init__(self, lab: Lab):
        self.lab = lab

    def _node(self, name: str) -> Node:
        node = self.lab.topo.nodes.get(name)
        if node is None or node.nbma_iface is None:
            raise FaultError(f"{name!r} is not a DMVPN node of lab {self.lab.name}")
        return node

    @contextlib.contextmanager
    def link_loss(self, node: str) -> Iterator[Fault]:
        """Everything in or out of the node's NBMA interface is dropped, as when its
        uplink is cut; the interface and its routes stay as they were."""
        iface = str(self._node(node).nbma_iface)
        rules = [["INPUT", "-i", iface], ["OUTPUT", "-o", iface], ["FORWARD", "-i", iface],
                 ["FORWARD", "-o", iface]]
        added = []
        fault = Fault()
        try:
            fault.act()
            for r in rules:
                self.lab.node(node).run([IPTABLES, "-I", *r, "-j", "DROP"])
                added.append(r)
            yield fault
        finally:
            fault.lift()
            for r in added:
                self.lab.node(node).run([IPTABLES, "-D", *r, "-j", "DROP"], check=False)

    @contextlib.contextmanager
    def daemon_down(self, node: str, daemon: str = "nhrpd") -> Iterator[Fault]:
        self._node(node)
        fault = Fault()
        fault.act()
        self.lab.driver.stop_daemon(node, daemon)
        try:
            yield fault
        finally:
            fault.lift()
            self.lab.driver.start_daemon(node, daemon)

    def restart_daemon(self, node: str, daemon: str = "nhrpd") -> Fault:
        """Stop and start again: `mark` before the stop, `lifted` before the start."""
        with self.daemon_down(node, daemon) as fault:
            pass
        return fault

    @contextlib.contextmanager
    def nbma_change(self, node: str) -> Iterator[NbmaChange]:
        """Renumber the node's NBMA address into a fresh /30 (as a DHCP lease change
        would), yield it (`address`), and renumber it back afterwards."""
        n = self._node(node)
        upstream = str(n.nbma_iface)          # the veth is named after the peer node
        old = n.iface(upstream).address
        old_gw = n.gateway
        new_net = self._free_net(old.network)
        new_gw, new_ip = list(new_net.hosts())[:2]
        up, me = self.lab.node(upstream).ipr(), self.lab.node(node).ipr()
        up_idx = up.link_lookup(ifname=node)[0]
        me_idx = me.link_lookup(ifname=upstream)[0]
        plen = old.network.prefixlen
        fault = NbmaChange(address=new_ip)
        fault.act()
        # The old subnet goes away on both ends, as with a new lease: packets still sent
        # to the old address are then unroutable, not looped back by the upstream.
        up.addr("add", index=up_idx, address=str(new_gw), prefixlen=30)
        up.addr("del", index=up_idx, address=str(old_gw), prefixlen=plen)
        try:
            me.addr("add", index=me_idx, address=str(new_ip), prefixlen=30)
            me.route("replace", dst="0.0.0.0/0", gateway=str(new_gw))
            me.addr("del", index=me_idx, address=str(old.ip), prefixlen=plen)
            try:
                yield fault
            finally:
                fault.lift()
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
        Yields a Fault whose `set()` changes the impairment in place (`changed`: before
        the last change); on exit the link is back to the topology's default."""
        a, b = self._ends(target)
        ends = {"both": [(a, b), (b, a)], "out": [(a, b)], "in": [(b, a)]}[check_direction(direction)]
        handle = Impaired(self.lab, ends)
        try:
            handle.set(delay=delay, jitter=jitter, loss=loss, rate=rate)
            handle.mark = handle.changed
            yield handle
        finally:
            handle.lift()
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


class Impaired(Fault):
    """An impairment in effect on one or both ends of a link."""

    def __init__(self, lab: Lab, ends: list[tuple[str, str]]):
        super().__init__()
        self.lab = lab
        self.ends = ends
        self.applied: list[tuple[str, str]] = []
        self.changed = 0.0          # time.time() before it was last changed
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

