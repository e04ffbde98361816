"""From a rendered spec to a `Topology`: the sections checked, each node addressed and
wired to the router or its NAT box, hubs and spokes given their LAN (and LAN host),
the link impairments applied, and the whole checked for clashes."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

from ..impairment import DIRECTIONS, Impairment, ImpairmentError
from .allocation import POOLS, Allocator, Wiring, lan6_of, twin6
from .model import Dmvpn, Node, Topology
from .validation import NODE_KEYS, SECTIONS, SpecError, Validator

# Where each role's automatic tunnel addresses start in dmvpn.tunnel_prefix. Peers:
# scapy NHRP stations the suite drives by hand; an NBMA address and a tunnel address
# to claim, no daemon, no mGRE interface.
TUNNEL_OFFSET = {"hub": 1, "spoke": 11, "peer": 101}


def topology(doc: Any, source: str, params: dict[str, Any]) -> Topology:
    """Check and address a rendered spec; raise `SpecError` with every issue found."""
    checks = Validator(source)
    doc = checks.document(doc)
    name, phase, dmvpn = checks.name(doc), checks.phase(doc), checks.dmvpn(doc)
    checks.dual_stack(dmvpn)
    pools = checks.pools(doc)
    router = checks.router(doc)
    sections = checks.sections(doc)
    names = checks.names(router, sections)
    wiring = Wiring(checks, Allocator(pools), router, sections["nat"])
    summary = pools["lan_pool"] or POOLS["lan_pool"]
    summary6 = checks.pools6(doc)["lan6_pool"] if dmvpn.tunnel_prefix6 is not None else None
    nodes = _Builder(checks, wiring, sections, names, dmvpn, summary6).build(summary)
    topo = Topology(name=name, description=str(doc.get("description", "")), phase=phase,
                    dmvpn=dmvpn, lan_summary=summary, nodes=nodes, links=tuple(wiring.links),
                    source=source, params=params, lan_summary6=summary6)
    if "ipsec" in doc:
        topo = dataclasses.replace(topo, ipsec=checks.ipsec(doc["ipsec"], names))
    if checks.issues:
        raise SpecError(source, checks.issues)
    return topo


class _Builder:
    """The nodes of one spec, in this order: router, NAT boxes, then each hub, spoke and
    peer (a LAN host just before its node)."""

    def __init__(self, checks: Validator, wiring: Wiring, sections: dict[str, dict[str, Any]],
                 names: dict[str, str], dmvpn: Dmvpn, lan_pool6: IPv6Network | None):
        self.checks = checks
        self.wiring = wiring
        self.sections = sections
        self.names = names
        self.tunnel_prefix = dmvpn.tunnel_prefix
        self.tunnel_prefix6 = dmvpn.tunnel_prefix6
        self.lan_pool6 = lan_pool6       # None: IPv4 only
        self.nodes: dict[str, Node] = {}

    def build(self, summary: IPv4Network) -> dict[str, Node]:
        for n, spec in self.sections["nat"].items():
            self._nat(n, spec)
        for role, offset in TUNNEL_OFFSET.items():
            for idx, (n, spec) in enumerate(self.sections[role].items()):
                self._station(role, n, spec, offset + idx)
        for role in SECTIONS:
            for n, spec in self.sections[role].items():
                if isinstance(spec, dict) and "impair" in spec:
                    self._impair(n, spec["impair"], f"{role}s.{n}.impair")
        ifaces = self.wiring.ifaces
        nodes = {n: dataclasses.replace(node, ifaces=tuple(ifaces.get(n, []))) for n, node in self.nodes.items()}
        self._check_nats(nodes)
        router = self.wiring.router
        nodes = {router: Node(router, "router", ifaces=tuple(ifaces[router])), **nodes}
        self._check_lans(nodes, summary)
        return nodes

    def _nat(self, n: str, spec: Any) -> None:
        spec = self.checks.mapping(spec, f"nats.{n}", NODE_KEYS["nat"])
        iface, gw = self.wiring.uplink(n, spec, "public", f"nats.{n}")
        self.nodes[n] = Node(n, "nat", gateway=gw, public_iface=iface)

    def _station(self, role: str, n: str, spec: Any, offset: int) -> None:
        """A hub, spoke or peer: its NBMA uplink and tunnel address; a hub's or spoke's LAN."""
        path = f"{role}s.{n}"
        spec = self.checks.mapping(spec, path, NODE_KEYS[role])
        iface, gw = self.wiring.uplink(n, spec, "nbma", path)
        tun = self._tunnel(path, spec, offset)
        tun6 = None
        if tun is not None:
            self.wiring.claim(tun, f"{path}.tunnel")
            if self.tunnel_prefix6 is not None:
                tun6 = twin6(tun, self.tunnel_prefix, self.tunnel_prefix6)
        if role == "peer":
            self.nodes[n] = Node(n, role, gateway=gw, nbma_iface=iface, tunnel=tun, tunnel6=tun6)
            return
        subnets = self.wiring.subnets
        lan = self.checks.prefix(spec["lan"], f"{path}.lan") if "lan" in spec else subnets.take("lan_pool", 24)
        lan6 = None
        if lan is not None:
            subnets.reserve(lan)
            lan6 = lan6_of(lan, self.lan_pool6) if self.lan_pool6 is not None else None
        nhs = self._nhs(path, spec) if role == "spoke" else ()
        self._lan_host(n, path, spec, lan, lan6)
        self.nodes[n] = Node(n, role, gateway=gw, nbma_iface=iface, tunnel=tun, lan=lan, nhs=nhs,
                             tunnel6=tun6, lan6=lan6)

    def _tunnel(self, path: str, spec: dict[str, Any], offset: int) -> IPv4Address | None:
        """The spec's tunnel address, or the role's next one in dmvpn.tunnel_prefix."""
        prefix = self.tunnel_prefix
        if "tunnel" in spec:
            tun = self.checks.address(spec["tunnel"], f"{path}.tunnel")
            if tun is not None and tun not in prefix:
                self.checks.err(f"{path}.tunnel", f"{tun} is outside dmvpn.tunnel_prefix {prefix}")
            return tun
        if offset < prefix.num_addresses - 1:
            return prefix.network_address + offset
        self.checks.err(path, "no tunnel address left in dmvpn.tunnel_prefix", "use a larger prefix")
        return None

    def _nhs(self, path: str, spec: dict[str, Any]) -> tuple[str, ...]:
        """A spoke's next hop servers, in preference order (default: every hub)."""
        hubs = self.sections["hub"]
        raw = spec.get("nhs", list(hubs))
        if not isinstance(raw, list) or not raw:
            self.checks.err(f"{path}.nhs", "must be a non-empty list of hub names")
            raw = []
        for i, h in enumerate(raw):
            if h not in hubs:
                self.checks.err(f"{path}.nhs[{i}]", f"no hub named {h!r}", f"hubs: {', '.join(hubs) or 'none'}")
        return tuple(h for h in raw if h in hubs)

    def _lan_host(self, n: str, path: str, spec: dict[str, Any], lan: IPv4Network | None,
                  lan6: IPv6Network | None) -> None:
        """`<node>_h` on the node's LAN (unless `lan_host: false`): .1 the node, .10 the
        host (and in a dual-stack LAN ::1 and ::10)."""
        lan_host = spec.get("lan_host", True)
        if not isinstance(lan_host, bool):
            self.checks.err(f"{path}.lan_host", f"must be true or false, got {lan_host!r}")
        if lan is None or lan_host is not True:
            return
        h = f"{n}_h"
        if h in self.names:
            self.checks.err(path, f"LAN host name {h} is already a node name")
        gw_ip, host_ip = lan.network_address + 1, lan.network_address + 10
        if lan.num_addresses < 16:
            self.checks.err(f"{path}.lan", f"{lan} is too small for a LAN host", "use /28 or larger")
            return
        self.wiring.link(n, h, lan, gw_ip, host_ip, f"{path}.lan", lan6)
        self.nodes[h] = Node(h, "host", gateway=gw_ip, gateway6=lan6.network_address + 1 if lan6 else None)

    def _impair(self, node: str, doc: Any, path: str) -> None:
        """`impair: {delay: 75, loss: 1, direction: both}` on a node: its uplink's default."""
        doc = dict(doc) if isinstance(doc, dict) else doc
        direction = doc.pop("direction", "both") if isinstance(doc, dict) else "both"
        if direction not in DIRECTIONS:
            self.checks.err(f"{path}.direction", f"{direction!r} is not one of {', '.join(DIRECTIONS)}")
            return
        try:
            imp = Impairment.from_dict(doc, path)
        except ImpairmentError as e:
            where, _, msg = str(e).partition(": ")
            self.checks.err(where, msg)
            return
        links = self.wiring.links
        i = next((i for i, link in enumerate(links) if link.a == node), None)
        if i is None:
            return
        up = links[i].b
        ends = {"both": (node, up), "out": (node,), "in": (up,)}[direction]
        links[i] = dataclasses.replace(links[i], impair={**links[i].impair, **{e: imp for e in ends}})

    def _check_nats(self, nodes: dict[str, Node]) -> None:
        hubs, spokes = self.sections["hub"], self.sections["spoke"]
        for n, node in nodes.items():
            if node.role == "nat" and not any(i.peer in spokes or i.peer in hubs for i in node.ifaces):
                self.checks.err(f"nats.{n}", "NAT box has nothing behind it", "give a spoke `behind: " + n + "`")

    def _check_lans(self, nodes: dict[str, Node], summary: IPv4Network) -> None:
        """Spokes route the LAN summary to the hub: each LAN inside it, no two overlapping."""
        for member in nodes.values():
            if member.lan is not None and not member.lan.subnet_of(summary):
                self.checks.err(f"{member.role}s.{member.name}.lan",
                                f"{member.lan} is outside addressing.lan_pool {summary}",
                                "spokes route the LAN summary to the hub")
        lans = [n.lan for n in nodes.values() if n.lan is not None]
        for i, x in enumerate(lans):
            for y in lans[i + 1:]:
                if x.overlaps(y):
                    self.checks.err("lan", f"LAN prefixes {x} and {y} overlap")
        by_lan6: dict[IPv6Network, IPv4Network] = {}
        for member in nodes.values():
            if member.lan6 is not None and member.lan is not None:
                if (other := by_lan6.setdefault(member.lan6, member.lan)) != member.lan:
                    self.checks.err(f"{member.role}s.{member.name}.lan",
                                    f"{member.lan} and {other} would share the IPv6 LAN {member.lan6}",
                                    "dual-stack LANs take their /64 from their /24: give each its own /24")

