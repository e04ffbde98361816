"""The lab model a topology spec turns into: nodes by role, their interfaces, the links
between them, the DMVPN and IPsec settings. Every address is filled in."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any

from ..impairment import Impairment

ROLES = ("router", "hub", "spoke", "nat", "host")


@dataclass(frozen=True)
class Iface:
    name: str                 # named after the node at the other end
    address: IPv4Interface
    peer: str
    address6: IPv6Interface | None = None       # a LAN's, in a dual-stack overlay


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    ifaces: tuple[Iface, ...] = ()
    gateway: IPv4Address | None = None      # underlay default route
    gateway6: IPv6Address | None = None     # a dual-stack LAN host's IPv6 default route
    # DMVPN nodes (hub, spoke) only:
    nbma_iface: str | None = None
    tunnel: IPv4Address | None = None
    lan: IPv4Network | None = None
    nhs: tuple[str, ...] = ()               # hub names, in preference order
    # ... and in a dual-stack overlay (dmvpn.tunnel_prefix6), their IPv6 twins:
    tunnel6: IPv6Address | None = None
    lan6: IPv6Network | None = None
    # NAT boxes only: the interface that masquerades
    public_iface: str | None = None

    def iface(self, name: str) -> Iface:
        for i in self.ifaces:
            if i.name == name:
                return i
        raise KeyError(f"{self.name} has no interface {name!r}")

    @property
    def nbma(self) -> IPv4Address | None:
        return self.iface(self.nbma_iface).address.ip if self.nbma_iface else None

    @property
    def is_dmvpn(self) -> bool:
        return self.role in ("hub", "spoke")


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    prefix: IPv4Network
    # The topology's impairment of what each end sends (node name -> netem settings).
    impair: dict[str, Impairment] = field(default_factory=dict)

    def other(self, node: str) -> str:
        return self.b if node == self.a else self.a


@dataclass(frozen=True)
class Dmvpn:
    network_id: int = 1
    gre_key: int | None = 42
    holdtime: int = 60
    tunnel_prefix: IPv4Network = IPv4Network("10.255.0.0/16")
    routing: str = "static"     # how LAN routes cross the overlay: ROUTING
    # Set, the overlay is dual-stack: IPv6 tunnel and LAN addresses too (NBMA stays IPv4).
    tunnel_prefix6: IPv6Network | None = None


# static: configured per node (FRR: staticd); bgp: iBGP, the hub a route reflector;
# ospf: one area, the hub point-to-multipoint and the spokes point-to-point to it.
ROUTING = ("static", "bgp", "ospf")


@dataclass(frozen=True)
class Ipsec:
    """The topology's `ipsec:` section: IKEv2 with a pre-shared key or with certificates
    (`auth: cert`: a lab CA made at bring-up), ESP in transport mode for GRE.
    `node_psk` gives single nodes other credentials (an IKE failure on purpose): another
    key, or with certificates a certificate from another CA."""
    auth: str = "psk"
    psk: str = "dmvpnkit-lab-psk"
    ike_proposals: str = "aes128-sha256-modp2048"
    esp_proposals: str = "aes128gcm16"
    node_psk: dict[str, str] = field(default_factory=dict)

    def psk_of(self, node: str) -> str:
        return self.node_psk.get(node, self.psk)


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    phase: int
    dmvpn: Dmvpn
    lan_summary: IPv4Network
    nodes: dict[str, Node]
    links: tuple[Link, ...]
    source: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    ipsec: Ipsec | None = None
    lan_summary6: IPv6Network | None = None     # dual-stack: every LAN's IPv6 prefix is in it

    def role(self, role: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == role]

    @property
    def hubs(self) -> list[Node]:
        return self.role("hub")

    @property
    def spokes(self) -> list[Node]:
        return self.role("spoke")

    def link(self, a: str, b: str) -> Link:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        raise KeyError(f"topology {self.name} has no link between {a} and {b}")

    def lan_host(self, node: str) -> Node | None:
        return self.nodes.get(f"{node}_h")

    def nbma_names(self) -> dict[str, str]:
        """NBMA address -> node: each DMVPN node's own, and each NAT box's public one."""
        names = {str(n.nbma): n.name for n in self.nodes.values() if n.nbma_iface}
        names.update({str(n.iface(n.public_iface).address.ip): n.name
                      for n in self.nodes.values() if n.public_iface})
        return names


def to_dict(topo: Topology) -> dict[str, Any]:
    """JSON-ready form, for lab.json and `lab status`."""
    def conv(v: Any) -> Any:
        if isinstance(v, (IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if hasattr(v, "__dataclass_fields__"):
            return {k: conv(getattr(v, k)) for k in v.__dataclass_fields__}
        return v
    out: dict[str, Any] = conv(topo)
    return out
