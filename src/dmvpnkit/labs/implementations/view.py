"""A DMVPN node as an implementation configures it: the typed view every renderer (a
built-in driver, a profile's templates) gets, derived from the topology once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Generic, TypeVar

from ..spec import Node, Topology
from ..underlay import MGRE


@dataclass(frozen=True)
class Nhs:
    """A hub as its spokes know it."""
    name: str
    protocol: IPv4Address       # its tunnel address
    nbma: IPv4Address           # where spokes reach it: its NAT box's public address if behind one


Addr = TypeVar("Addr", IPv4Address, IPv6Address)
Net = TypeVar("Net", IPv4Network, IPv6Network)


@dataclass(frozen=True)
class Route(Generic[Net, Addr]):
    """A route on the tunnel that the node's configuration carries (FRR: staticd), of
    one address family."""
    prefix: Net
    via: Addr | None            # a tunnel address, reached onlink; None: the prefix is on-link itself
    kind: str                   # spoke-lan (hub to a spoke's LAN) | nhs (a spoke's, via an NHS) |
    #                             far-spoke (phase 2: a far spoke's LAN via that spoke) |
    #                             tunnel (phase 2 under BGP: every tunnel address on-link, via None)
    preference: int = 0         # 0 = the first NHS; an implementation maps it to its metric


@dataclass(frozen=True)
class Overlay6:
    """The IPv6 side of a dual-stack node (IPv6 over the IPv4 NBMA: NHRP with
    ar$pro.type 0x86DD): the same NHSs, roles and phase, its own addresses and routes."""
    tunnel_address: IPv6Address
    tunnel_prefix: IPv6Network
    lan_prefixes: tuple[IPv6Network, ...]
    lan_summary: IPv6Network
    nhs: tuple[IPv6Address, ...]    # each NHS's IPv6 tunnel address, in DmvpnView.nhs's order
    routes: tuple[Route[IPv6Network, IPv6Address], ...]


@dataclass(frozen=True)
class DmvpnView:
    name: str
    role: str                   # hub | spoke
    phase: int                  # 1, 2 or 3
    interface: str              # the mGRE interface
    tunnel_address: IPv4Address
    tunnel_prefix: IPv4Network
    nbma_address: IPv4Address
    nbma_interface: str
    network_id: int
    holdtime: int
    gre_key: int | None
    lan_prefixes: tuple[IPv4Network, ...]
    lan_summary: IPv4Network    # every spoke LAN and the hub's, one prefix
    nhs: tuple[Nhs, ...]        # a spoke's NHSes in preference order; empty on a hub
    routes: tuple[Route[IPv4Network, IPv4Address], ...]
    behind_nat: bool            # the node's NBMA address is translated on its way out
    redirect: bool              # a phase 3 hub: sends Traffic Indications
    shortcut: bool              # a phase 2/3 spoke: resolves and installs shortcuts
    multicast: bool             # copies multicast into the tunnel: a hub to its spokes, a spoke to its NHSs under OSPF
    routing: str = "static"     # static: `routes` carry the LANs; bgp or ospf learns them (spec.ROUTING)
    # Phase 2 under OSPF: the tunnel is one broadcast network, each address on it with
    # the tunnel prefix's length (the underlay's are host addresses): its hub the DR, a
    # far spoke's LAN routed via the far spoke. An implementation applies it itself.
    subnet: bool = False
    ipv6: Overlay6 | None = None    # a dual-stack overlay's IPv6 side

    def context(self) -> dict[str, Any]:
        """The view as plain values, for templates and JSON."""
        return asdict(self)


def nhs_of(topo: Topology, hub: Node) -> Nhs:
    public = hub.nbma
    upstream = topo.nodes.get(hub.nbma_iface or "")
    if upstream is not None and upstream.role == "nat" and upstream.public_iface:
        public = upstream.iface(upstream.public_iface).address.ip
    assert hub.tunnel is not None and public is not None
    return Nhs(hub.name, hub.tunnel, public)


def _routing_routes(topo: Topology, node: Node, phase: int, nhs: tuple[Nhs, ...],
                    subnet: bool) -> list[Route[IPv4Network, IPv4Address]]:
    """Under BGP or OSPF, only the way to the tunnel addresses; the LANs come from the
    routing protocol."""
    if subnet:      # one subnet: every tunnel address is on-link already
        return []
    if phase == 2 and node.role == "spoke":
        # BGP keeps the far spoke as the next hop of its LAN. With the tunnel prefix
        # on-link, zebra resolves that next hop on the tunnel itself (via the hub, it would
        # install the hub as next hop: phase 1), and the first packet misses its neighbour
        # entry, which NHRP resolves.
        return [Route(topo.dmvpn.tunnel_prefix, None, "tunnel")]
    # The NHSs' tunnel addresses: BGP's sessions, OSPF's neighbours.
    return [Route(topo.dmvpn.tunnel_prefix, h.protocol, "nhs", i) for i, h in enumerate(nhs)]


@dataclass(frozen=True)
class _Family(Generic[Net, Addr]):
    """One address family of the overlay, as static routes need it."""
    tunnel_prefix: Net
    lan_summary: Net
    tunnel: Callable[[Node], Addr | None]
    lan: Callable[[Node], Net | None]


def _static_routes(topo: Topology, node: Node, phase: int, fam: _Family[Net, Addr]) -> list[Route[Net, Addr]]:
    """A hub: each of its spokes' LANs via the spoke. A spoke: the LAN summary and the
    tunnel prefix via each NHS; in phase 2 also each far spoke's LAN via that spoke."""
    routes: list[Route[Net, Addr]] = []
    if node.role == "hub":
        for s in topo.spokes:
            lan, via = fam.lan(s), fam.tunnel(s)
            if node.name in s.nhs and lan is not None and via is not None:
                routes.append(Route(lan, via, "spoke-lan"))
        return routes
    for i, h in enumerate(node.nhs):
        if (via := fam.tunnel(topo.nodes[h])) is not None:
            routes += [Route(fam.lan_summary, via, "nhs", i), Route(fam.tunnel_prefix, via, "nhs", i)]
    if phase == 2:
        for s in topo.spokes:
            lan, via = fam.lan(s), fam.tunnel(s)
            if s.name != node.name and lan is not None and via is not None:
                routes.append(Route(lan, via, "far-spoke"))
    return routes


def _overlay6(topo: Topology, node: Node, phase: int) -> Overlay6 | None:
    prefix, summary = topo.dmvpn.tunnel_prefix6, topo.lan_summary6
    if prefix is None or summary is None or node.tunnel6 is None:
        return None
    fam: _Family[IPv6Network, IPv6Address] = _Family(prefix, summary, lambda n: n.tunnel6, lambda n: n.lan6)
    nhs = tuple(t for h in node.nhs if (t := topo.nodes[h].tunnel6) is not None)
    return Overlay6(node.tunnel6, prefix, (node.lan6,) if node.lan6 is not None else (), summary, nhs,
                    tuple(_static_routes(topo, node, phase, fam)))


def view(topo: Topology, node: Node, phase: int) -> DmvpnView:
    """The DMVPN view of `node` (a hub or a spoke) in `topo` at `phase`."""
    if not node.is_dmvpn or node.tunnel is None or node.nbma is None or node.nbma_iface is None:
        raise ValueError(f"{node.name}: not a DMVPN node (role {node.role})")
    nhs = tuple(nhs_of(topo, topo.nodes[h]) for h in node.nhs)
    routing = topo.dmvpn.routing
    subnet = routing == "ospf" and phase == 2
    fam: _Family[IPv4Network, IPv4Address] = _Family(topo.dmvpn.tunnel_prefix, topo.lan_summary,
                                                      lambda n: n.tunnel, lambda n: n.lan)
    routes = _routing_routes(topo, node, phase, nhs, subnet) if routing != "static" else \
        _static_routes(topo, node, phase, fam)
    upstream = topo.nodes.get(node.nbma_iface)
    return DmvpnView(
        name=node.name, role=node.role, phase=phase, interface=MGRE, tunnel_address=node.tunnel,
        tunnel_prefix=topo.dmvpn.tunnel_prefix, nbma_address=node.nbma, nbma_interface=node.nbma_iface,
        network_id=topo.dmvpn.network_id, holdtime=topo.dmvpn.holdtime, gre_key=topo.dmvpn.gre_key,
        lan_prefixes=(node.lan,) if node.lan is not None else (), lan_summary=topo.lan_summary, nhs=nhs,
        routes=tuple(routes), behind_nat=upstream is not None and upstream.role == "nat",
        redirect=node.role == "hub" and phase == 3, shortcut=node.role == "spoke" and phase >= 2,
        # OSPF's hellos are multicast; BGP and static routing need no spoke to send any.
        multicast=node.role == "hub" or routing == "ospf", routing=routing, subnet=subnet,
        ipv6=_overlay6(topo, node, phase))
