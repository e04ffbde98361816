"""The DMVPN underlay of every node: addresses, routes, the mGRE interface, NAT rules,
sysctls. One plan per node, the same on every backend.

`plan()` says what a node needs; `apply()` does it through the Node API (netlink
in-process, no `ip` forks: each costs ~25 ms in the UML lab kernel); `commands()`
says the same as shell commands, for a containerlab file that sets itself up.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Sequence, Union

from .node import Node as LabNode
from .spec import Node, Topology

IPTABLES = "iptables-legacy"   # the UML kernel has no nft IPv4 tables
IFA_F_NODAD = 0x02             # an IPv6 address usable at once (a lab has no duplicates to detect)
IPTABLES_RESTORE = "iptables-legacy-restore"
IP6TABLES_RESTORE = "ip6tables-legacy-restore"
GRE_KEY = 0x2000               # key-present flag (GRE_KEY), big-endian on the wire as in the kernel
GRE_TTL = 64
MGRE = "gre1"


@dataclass(frozen=True)
class Sysctl:
    key: str                  # net/ipv4/ip_forward
    value: str


@dataclass(frozen=True)
class Up:
    ifname: str


@dataclass(frozen=True)
class Addr:
    ifname: str
    address: IPv4Interface | IPv6Interface


@dataclass(frozen=True)
class DefaultRoute:
    gateway: IPv4Address | IPv6Address


@dataclass(frozen=True)
class Ipv6:
    """IPv6 on one interface, set before it is up. Off in an IPv4 lab: a link-local
    address finishing DAD after the daemons start is an address change on the NBMA
    interface, and FRR 8.4's nhrpd then drops every binding it holds (seen: a hub that
    dropped a spoke's registration just after accepting it; the spoke, answered, sent
    its next one a third of the hold time later)."""
    ifname: str
    enabled: bool

    @property
    def sysctl(self) -> Sysctl:
        return Sysctl(f"net/ipv6/conf/{self.ifname}/disable_ipv6", "0" if self.enabled else "1")


@dataclass(frozen=True)
class Mgre:
    """`ip link add gre1 type gre key K ttl 64 dev ETH`: no remote (mGRE) and no local
    either, as FRR documents it: outer sources follow the NBMA interface's address,
    so renumbering that interface needs no change to the tunnel."""
    ifname: str
    link: str
    key: int | None


@dataclass(frozen=True)
class Iptables:
    args: tuple[str, ...]


Step = Union[Sysctl, Up, Addr, DefaultRoute, Ipv6, Mgre, Iptables]


def plan(topo: Topology, node: Node) -> list[Step]:
    steps: list[Step] = [Sysctl("net/ipv4/ip_forward", "0" if node.role == "host" else "1"),
                         Sysctl("net/ipv4/conf/all/rp_filter", "0"),
                         Sysctl("net/ipv4/conf/default/rp_filter", "0"), Up("lo")]
    if topo.dmvpn.tunnel_prefix6 is not None:
        steps.append(Sysctl("net/ipv6/conf/all/forwarding", "0" if node.role == "host" else "1"))
    for iface in node.ifaces:
        steps += [Ipv6(iface.name, iface.address6 is not None), Addr(iface.name, iface.address)]
        if iface.address6 is not None:
            steps.append(Addr(iface.name, iface.address6))
        steps.append(Up(iface.name))
    for gw in (node.gateway, node.gateway6):
        if gw is not None:
            steps.append(DefaultRoute(gw))
    if (node.is_dmvpn or node.role == "peer") and node.nbma_iface:
        # A peer's tunnel makes its kernel accept the GRE it gets.
        steps += [Mgre(MGRE, node.nbma_iface, topo.dmvpn.gre_key), Addr(MGRE, IPv4Interface(f"{node.tunnel}/32"))]
        if node.tunnel6 is not None:
            # FRR 8.4's nhrpd takes the interface's shortest IPv6 prefix and wants a host
            # one: no link-local /64s (addr_gen_mode none, set before IPv6 is on).
            steps += [Sysctl(f"net/ipv6/conf/{MGRE}/addr_gen_mode", "1"), Ipv6(MGRE, True),
                      Addr(MGRE, IPv6Interface(f"{node.tunnel6}/128"))]
        else:
            steps.append(Ipv6(MGRE, False))
        steps += [Up(MGRE),
                  # The hub forwards spoke-to-spoke traffic out the interface it came in
                  # on; ICMP redirects there would race NHRP's own (Traffic Indication).
                  Sysctl(f"net/ipv4/conf/{MGRE}/send_redirects", "0"),
                  Sysctl("net/ipv4/conf/all/send_redirects", "0")]
    if node.role == "nat" and node.public_iface:
        steps.append(Iptables(("-t", "nat", "-A", "POSTROUTING", "-o", node.public_iface, "-j", "MASQUERADE")))
    return steps


def apply(node: LabNode, steps: list[Step]) -> None:
    ipr = node.ipr()

    def index(ifname: str) -> int:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise RuntimeError(f"{node.name}: no interface {ifname!r} for the underlay")
        return int(found[0])

    for s in steps:
        if isinstance(s, Ipv6):
            s = s.sysctl
        if isinstance(s, Sysctl):
            node.sysctl({s.key: s.value})
        elif isinstance(s, Up):
            ipr.link("set", index=index(s.ifname), state="up")
        elif isinstance(s, Addr):
            v6 = {"flags": IFA_F_NODAD} if s.address.version == 6 else {}
            ipr.addr("add", index=index(s.ifname), address=str(s.address.ip), prefixlen=s.address.network.prefixlen,
                     **v6)
        elif isinstance(s, DefaultRoute):
            default = "::/0" if s.gateway.version == 6 else "0.0.0.0/0"
            ipr.route("replace", dst=default, gateway=str(s.gateway))
        elif isinstance(s, Mgre):
            keys = {} if s.key is None else dict(gre_ikey=s.key, gre_okey=s.key, gre_iflags=GRE_KEY,
                                                 gre_oflags=GRE_KEY)
            ipr.link("add", ifname=s.ifname, kind="gre", gre_ttl=GRE_TTL, gre_link=index(s.link), **keys)
        else:
            node.run([IPTABLES, *s.args])


def commands(steps: list[Step], iptables: str = "iptables") -> list[str]:
    """The plan as shell commands (iproute2, sysctl, iptables)."""
    out = []
    for s in steps:
        if isinstance(s, Ipv6):
            s = s.sysctl
        if isinstance(s, Sysctl):
            out.append(f"sysctl -qw {s.key.replace('/', '.')}={s.value}")
        elif isinstance(s, Up):
            out.append(f"ip link set {s.ifname} up")
        elif isinstance(s, Addr):
            out.append(f"ip addr add {s.address} dev {s.ifname}" + (" nodad" if s.address.version == 6 else ""))
        elif isinstance(s, DefaultRoute):
            out.append(("ip -6" if s.gateway.version == 6 else "ip") + f" route replace default via {s.gateway}")
        elif isinstance(s, Mgre):
            key = f" key {s.key}" if s.key is not None else ""
            out.append(f"ip link add {s.ifname} type gre{key} ttl {GRE_TTL} dev {s.link}")
        else:
            out.append(" ".join((iptables, *s.args)))
    return out


def add_rules(node: LabNode, rules: Sequence[Sequence[str]], scratch: Path, ipv6: bool = False) -> None:
    """Append iptables rules (`-t TABLE` first where not filter) with one
    iptables-restore (`ipv6`: ip6tables-restore), not one iptables per rule (~0.2 s
    each in the UML lab kernel). The rules file is kept in `scratch`, the node's directory."""
    tables: dict[str, list[str]] = {}
    for rule in map(list, rules):
        table, args = (rule[1], rule[2:]) if rule[:1] == ["-t"] else ("filter", rule)
        tables.setdefault(table, []).append(shlex.join(args))
    path = scratch / ("ip6tables.rules" if ipv6 else "iptables.rules")
    path.write_text("".join(f"*{t}\n" + "\n".join(lines) + "\nCOMMIT\n" for t, lines in tables.items()))
    node.run([IP6TABLES_RESTORE if ipv6 else IPTABLES_RESTORE, "--noflush", str(path)])


def configure(topo: Topology, node: LabNode) -> None:
    apply(node, plan(topo, topo.nodes[node.name]))


__all__ = ["plan", "apply", "commands", "configure", "add_rules", "Step", "Ipv6", "IPTABLES", "MGRE"]
