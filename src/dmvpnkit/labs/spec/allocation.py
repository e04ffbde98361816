"""Address allocation: subnets handed out from the spec's pools, every address claimed
once, and each node's uplink (to the NBMA router, or to the NAT box it sits behind)
addressed and recorded as a link."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any, Protocol

from .model import Iface, Link

# The `addressing:` pools and what a spec that leaves one out gets.
POOLS = {"nbma_pool": IPv4Network("172.16.0.0/16"), "private_pool": IPv4Network("192.168.0.0/16"),
         "lan_pool": IPv4Network("10.0.0.0/12")}
POOLS6 = {"lan6_pool": IPv6Network("fd00:10::/48")}


def twin6(v4: IPv4Address, net4: IPv4Network, net6: IPv6Network) -> IPv6Address:
    """The IPv6 address numbered as `v4` is in `net4`, its host number's decimal digits
    read as hex: 10.255.0.11 in 10.255.0.0/16 is fd00:255::11 in fd00:255::/64, as an
    engineer reading a ladder would guess. Distinct hosts stay distinct."""
    return net6.network_address + int(str(int(v4) - int(net4.network_address)), 16)


def lan6_of(lan: IPv4Network, pool: IPv6Network) -> IPv6Network:
    """A LAN's /64: the pool's /48 with the LAN's second and third octets as the subnet
    ID, so 10.1.2.0/24 is fd00:10:0:102::/64 (two LANs in one /24 would share it)."""
    subnet = (int(lan.network_address) >> 8) & 0xFFFF
    return IPv6Network((int(pool.network_address) | subnet << 64, 64))


class Report(Protocol):
    """Where allocation problems go (the validator's issue list)."""
    def err(self, path: str, message: str, hint: str = "") -> None: ...


class Allocator:
    """Hands out subnets from the pools, skipping what the spec set explicitly."""

    def __init__(self, pools: dict[str, IPv4Network | None]):
        self.pools = pools
        self.taken: list[IPv4Network] = []
        self.iters: dict[tuple[str, int], Iterator[IPv4Network]] = {}

    def reserve(self, net: IPv4Network) -> None:
        self.taken.append(net)

    def take(self, pool: str, prefixlen: int) -> IPv4Network | None:
        base = self.pools.get(pool)
        if base is None or base.prefixlen > prefixlen:     # too small for even one: exhausted
            return None
        it = self.iters.setdefault((pool, prefixlen), base.subnets(new_prefix=prefixlen))
        for net in it:
            if not any(net.overlaps(t) for t in self.taken):
                self.taken.append(net)
                return net
        return None


class Wiring:
    """The underlay as it gets addressed: the links, each node's interfaces (named after
    the node at the other end), and where each address was claimed, to name duplicates."""

    def __init__(self, report: Report, subnets: Allocator, router: str, nats: dict[str, Any]):
        self.report = report
        self.subnets = subnets
        self.router = router
        self.nats = nats
        self.ifaces: dict[str, list[Iface]] = {router: []}
        self.links: list[Link] = []
        self.used: dict[IPv4Address, str] = {}

    def claim(self, addr: IPv4Address, path: str) -> None:
        if addr in self.used:
            self.report.err(path, f"duplicate address {addr}", f"already used at {self.used[addr]}")
        self.used[addr] = path

    def link(self, a: str, b: str, net: IPv4Network, a_ip: IPv4Address, b_ip: IPv4Address, path: str,
             net6: IPv6Network | None = None) -> None:
        """A link addressed from `net` (and in a dual-stack LAN from `net6`: each end the
        twin of its IPv4 address)."""
        self.claim(a_ip, f"{path} ({a})")
        self.claim(b_ip, f"{path} ({b})")
        for near, far, ip in ((a, b, a_ip), (b, a, b_ip)):
            ip6 = IPv6Interface((twin6(ip, net, net6), 64)) if net6 is not None else None
            self.ifaces.setdefault(near, []).append(Iface(far, IPv4Interface(f"{ip}/{net.prefixlen}"), far, ip6))
        self.links.append(Link(a, b, net))

    def uplink(self, node: str, spec: dict[str, Any], key: str, path: str) -> tuple[str, IPv4Address]:
        """Connect a node to the router (or its NAT box); return (iface, gateway)."""
        upstream = self._upstream(spec, path)
        explicit = spec.get(key)
        if explicit is not None:
            try:
                ifa = IPv4Interface(str(explicit) if "/" in str(explicit) else f"{explicit}/30")
            except ValueError:
                self.report.err(f"{path}.{key}", f"not an IPv4 address: {explicit!r}")
            else:
                self.subnets.reserve(ifa.network)
                gw = next(h for h in ifa.network.hosts() if h != ifa.ip)
                self.link(node, upstream, ifa.network, ifa.ip, gw, f"{path}.{key}")
                return upstream, gw
        # Behind a NAT box the uplink is private; on the router it is NBMA space.
        pool = "private_pool" if upstream != self.router else "nbma_pool"
        net = self.subnets.take(pool, 30)
        if net is None:
            self.report.err(f"{path}.{key}", f"address pool addressing.{pool} is exhausted", "use a larger pool")
            return upstream, IPv4Address(0)
        gw, ip = list(net.hosts())[:2]
        self.link(node, upstream, net, ip, gw, f"{path}.{key}")
        return upstream, gw

    def _upstream(self, spec: dict[str, Any], path: str) -> str:
        """The node's `behind:` NAT box, or the router."""
        behind = spec.get("behind")
        if behind is None:
            return self.router
        if behind not in self.nats:
            self.report.err(f"{path}.behind", f"no NAT box named {behind!r}",
                            f"declared NAT boxes: {', '.join(self.nats) or 'none'}")
            return self.router
        nat: str = behind
        return nat
