"""OSPFv2 carried over the overlay (GRE, in the clear or in opened ESP), decoded with
scapy's contrib OSPF: the Hellos and the Router-LSAs of LS Updates, what the OSPF cases
assert on, from the wire. Multicast a hub copies to its spokes keeps its group (224.0.0.5)
as the inner destination; each copy is one event at each capture point that saw it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scapy.contrib import ospf as scapy_ospf
from scapy.layers.inet import IP
from scapy.packet import Packet

from .timeline import Event, Timeline

OSPF = 89
HELLO, LS_UPDATE = 1, 4
ROUTER_LSA = 1
# RFC 2328 A.4.2: the types of a Router-LSA's links
POINT_TO_POINT, TRANSIT, STUB, VIRTUAL = 1, 2, 3, 4


@dataclass(frozen=True)
class Hello:
    event: Event
    src: str                    # the sender's interface (tunnel) address
    router: str                 # its router ID
    mask: str
    priority: int
    dr: str                     # the designated router's interface address, as the sender sees it
    bdr: str

    def __str__(self) -> str:
        return (f"Hello {self.src} router={self.router} mask={self.mask} priority={self.priority} "
                f"dr={self.dr} bdr={self.bdr} [{self.event.ref or self.event.node}]")


@dataclass(frozen=True)
class Link:
    type: int                   # POINT_TO_POINT | TRANSIT | STUB | VIRTUAL
    id: str                     # transit: the DR's interface address; stub: the network
    data: str                   # transit, point-to-point: the router's own interface address; stub: the mask


@dataclass(frozen=True)
class RouterLsa:
    event: Event                # the LS Update that carried it
    src: str                    # the LS Update's sender (tunnel address)
    dst: str                    # its destination (a group when multicast)
    router: str                 # the advertising router
    links: tuple[Link, ...]

    def __str__(self) -> str:
        links = ", ".join(f"{t}:{lk.id}/{lk.data}" for lk in self.links
                          for t in [{1: "p2p", 2: "transit", 3: "stub", 4: "virtual"}.get(lk.type, str(lk.type))])
        return f"Router-LSA of {self.router} ({links}) in {self.src}>{self.dst} [{self.event.ref or self.event.node}]"


def _ospf(e: Event) -> tuple[IP, Packet] | None:
    """The overlay packet of `e` and its OSPF header, if it is OSPF."""
    if not e.overlay or len(e.overlay) < 20 or e.overlay[0] >> 4 != 4 or e.overlay[9] != OSPF:
        return None
    ip = IP(e.overlay)
    hdr = ip.getlayer(scapy_ospf.OSPF_Hdr)
    return (ip, hdr) if hdr is not None else None


def hellos(tl: Timeline) -> list[Hello]:
    """Every OSPF Hello on the overlay in `tl`, at every capture point."""
    out = []
    for e in tl.events:
        got = _ospf(e)
        if got is None or got[1].type != HELLO:
            continue
        ip, hdr = got
        h = hdr.getlayer(scapy_ospf.OSPF_Hello)
        if h is not None:
            out.append(Hello(e, str(ip.src), str(hdr.src), str(h.mask), int(h.prio), str(h.router),
                             str(h.backup)))
    return out


def router_lsas(tl: Timeline) -> list[RouterLsa]:
    """Every Router-LSA in an LS Update on the overlay in `tl`, at every capture point."""
    out = []
    for e in tl.events:
        got = _ospf(e)
        if got is None or got[1].type != LS_UPDATE:
            continue
        ip, hdr = got
        upd = hdr.getlayer(scapy_ospf.OSPF_LSUpd)
        for lsa in (upd.lsalist if upd is not None else None) or ():
            if isinstance(lsa, scapy_ospf.OSPF_Router_LSA):
                links = tuple(Link(int(lk.type), str(lk.id), str(lk.data)) for lk in lsa.linklist or ())
                out.append(RouterLsa(e, str(ip.src), str(ip.dst), str(lsa.adrouter), links))
    return out

