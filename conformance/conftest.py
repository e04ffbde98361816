"""Helpers the cases share: traffic between LAN hosts, the lab's address book."""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from dmvpnkit.capture import Timeline
from dmvpnkit.labs.impairment import NoNetem
from dmvpnkit.labs.lab import wait_quietly


@dataclass(frozen=True, repr=False)     # an assertion shows repr(): the line below
class Ping:
    count: int                  # probes asked for
    sent: int                   # probes ping sent (more than `count` while replies lag)
    received: int
    answered: frozenset[int]    # icmp_seq of the probes that got a reply
    output: str

    @property
    def lossless(self) -> bool:
        """Every one of the `count` probes was answered."""
        return self.count > 0 and self.answered >= frozenset(range(1, self.count + 1))

    def __str__(self) -> str:
        got = len(self.answered & frozenset(range(1, self.count + 1)))
        return f"{got} of {self.count} probes answered ({self.sent} sent)\n{self.output}"

    __repr__ = __str__


def ping(lab: Any, src: str, dst: str, count: int, interval: float = 0.2, wait: float = 1.0) -> Ping:
    """`ping` from node `src` to address `dst`. With a deadline (`-w`) ping waits for a
    late reply instead of giving up two round trips after the last probe (it sends
    further probes meanwhile, which are not counted): a probe counts as lost only if
    no reply came back before the deadline, however slow the lab kernel is."""
    deadline = math.ceil(count * interval + wait)
    out = lab.node(src).run(["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait),
                             "-w", str(deadline), dst], check=False, timeout=deadline + 30).out
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    answered = frozenset(int(seq) for seq in re.findall(r"bytes from .*icmp_seq=(\d+)", out))
    return Ping(count, int(m[1]) if m else 0, int(m[2]) if m else 0, answered, out)


def lan_host(lab: Any, spoke: str) -> str:
    """The address of a spoke's LAN host (`spoke1` -> 10.1.1.10)."""
    h = lab.topo.nodes[f"{spoke}_h"]
    return str(h.iface(spoke).address.ip)


def bringup(lab: Any) -> Timeline:
    """What the lab's NBMA interfaces carried from before the daemons started until now."""
    return lab.bringup.timeline()


def nbma(lab: Any, node: str) -> str:
    return str(lab.topo.nodes[node].nbma)


def cleartext_gre(e: Any) -> bool:
    """An event of GRE (NHRP or overlay data) that crossed the NBMA network outside ESP."""
    return e.gre and not e.esp


def nat_public(lab: Any, nat: str = "nat1") -> str:
    n = lab.topo.nodes[nat]
    return str(n.iface(n.public_iface).address.ip)


def tunnel(lab: Any, node: str) -> str:
    return str(lab.topo.nodes[node].tunnel)


def route_via(lab: Any, node: str, dst: str) -> str | None:
    """The gateway `node`'s kernel forwards `dst` to (None: straight onto the link)."""
    return lab.node(node).ipr().route("get", dst=dst)[0].get_attr("RTA_GATEWAY")


def traffic(lab: Any, tag: str, count: int, interval: float, src: str = "spoke1",
            dst: str = "spoke2") -> dict[str, Any]:
    """One burst between two spokes' LAN hosts, captured on every DMVPN node."""
    with _capture(lab, tag) as cap:
        result = ping(lab, f"{src}_h", lan_host(lab, dst), count, interval)
        return {"ping": result, "timeline": cap.timeline()}


def expect_direct(lab: Any, tl: Timeline, src: str = "spoke1", dst: str = "spoke2") -> None:
    """The later burst of `hairpin()` went spoke to spoke: none of it crossed the hub
    once the last Resolution Reply was a second old, and all of it arrived at `dst`
    straight from `src`."""
    from dmvpnkit.capture import expect_all, expect_none
    last_reply = expect_all(tl, "Resolution Replies", op="resolution-reply")[-1]
    expect_none(tl, "data crossing the hub once the shortcut is up", node="hub1", data="icmp",
                after=last_reply.ts + 1.0)
    expect_all(tl, f"the later burst arriving at {dst} straight from {src}", at_least=10, node=dst,
               data="icmp type 8", src=nbma(lab, src))


def hairpin(lab: Any, tag: str, src: str = "spoke1", dst: str = "spoke2") -> dict[str, Any]:
    """The phase 3 scenario: traffic between two spokes' LAN hosts that first hairpins
    through the hub, then (once the spoke has resolved) a second, faster burst."""
    with _capture(lab, tag) as cap:
        first = ping(lab, f"{src}_h", lan_host(lab, dst), 5, 0.5)
        # Traffic Indication follows the first hairpinned packet after ~1 s of NFLOG
        # batching; the second burst goes once the spoke has resolved and installed it.
        settle_shortcut(lab, src, dst)
        later = ping(lab, f"{src}_h", lan_host(lab, dst), 10, 0.1)
        return {"first": first, "later": later, "timeline": cap.timeline()}


SHORTCUT_WITHIN = 10.0      # s: indication batching (~1 s), resolution and IKE, with slack


def has_shortcut(lab: Any, src: str, dst: str) -> bool:
    """`src` holds a shortcut to `dst`'s LAN: in its shortcut view, or, for an
    implementation without one, in its kernel (the route to the LAN host goes via `dst`)."""
    if "shortcuts" in lab.driver.of(src).views:
        lan = str(lab.topo.nodes[dst].lan)
        return any(c.prefix == lan for c in lab.driver.shortcuts(src))
    route = lab.node(src).run(["ip", "route", "get", lan_host(lab, dst)], check=False).out
    return f" via {tunnel(lab, dst)} " in route


def settle_shortcut(lab: Any, src: str, dst: str) -> None:
    """Until `src` holds its shortcut to `dst`'s LAN and, with IPsec, the SA under it is
    up (a trap policy drops the packet that starts IKE: one ping, not the measured
    burst, pays for it); no longer than SHORTCUT_WITHIN. A node that never installs one
    is left to the cases to judge."""
    lan = str(lab.topo.nodes[dst].lan)
    if not wait_quietly(f"{src}'s shortcut to {lan}", lambda: has_shortcut(lab, src, dst), SHORTCUT_WITHIN):
        return
    if lab.driver.ipsec is not None and nbma(lab, dst) not in lab.driver.ipsec.established(src):
        ping(lab, f"{src}_h", lan_host(lab, dst), 1, 0.2, wait=2.0)
        wait_quietly(f"{src}'s SA with {dst}", lambda: nbma(lab, dst) in lab.driver.ipsec.established(src),
                     SHORTCUT_WITHIN)


@contextlib.contextmanager
def needs_netem() -> Iterator[None]:
    """Link impairment where the lab kernel has netem; SKIP, with the reason, where not."""
    try:
        yield
    except NoNetem as e:
        pytest.skip(f"needs link impairment: {e}")


@contextlib.contextmanager
def arp_pinned(lab: Any, node: str) -> Iterator[None]:
    """`node`'s neighbour entry at its upstream pinned (PERMANENT, the node's own MAC)
    for the block. Under loss toward the node the upstream's ARP for it fails, and a
    packet queued behind the INCOMPLETE entry goes out when the loss is lifted,
    bypassing it; how long such a queue lives depends on how often the implementation
    retries. Pinned, nothing ever waits behind ARP."""
    from pyroute2.netlink.rtnl.ndmsg import NUD_PERMANENT

    from dmvpnkit.labs.node import link_mac
    n = lab.topo.nodes[node]
    iface = n.nbma_iface or n.public_iface
    mac = link_mac(lab.node(node), iface)
    ipr = lab.node(iface).ipr()     # the upstream node is named like the node's uplink
    oif = ipr.route("get", dst=str(n.nbma))[0].get_attr("RTA_OIF")
    ipr.neigh("replace", dst=str(n.nbma), lladdr=mac, ifindex=oif, state=NUD_PERMANENT)
    try:
        yield
    finally:
        ipr.neigh("del", dst=str(n.nbma), ifindex=oif)


def _capture(lab: Any, tag: str) -> Any:
    from dmvpnkit.labs.tap import LabCapture
    return LabCapture(lab, lab.lab_dir / "pcaps" / tag)
