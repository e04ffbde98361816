"""OSPFv2 carried over the overlay (GRE, in the clear or in opened ESP), decoded with
scapy's contrib OSPF: the Hellos and the Router-LSAs of LS Updates, what the OSPF cases
assert on, from the wire. Multicast a hub copies to its spokes keeps its group (224.0.0.5)
as the inner destination; each copy is one event at each capture point that saw it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from scapy.contrib import ospf as scapy_ospf
from scapy.layers.inet import IP
from scapy.packet import Packet

from .timeline import Event, Timeline

OSPF = 89
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


def _packets(tl: Timeline, layer: type[Packet]) -> Iterator[tuple[Event, IP, Packet, Packet]]:
    """(event, overlay IP packet, OSPF header, `layer`) of each OSPF packet of that type
    on the overlay in `tl`, at every capture point."""
    for e in tl.events:
        if not e.overlay or len(e.overlay) < 20 or e.overlay[0] >> 4 != 4 or e.overlay[9] != OSPF:
            continue
        ip = IP(e.overlay)
        hdr = ip.getlayer(scapy_ospf.OSPF_Hdr)
        body = hdr.getlayer(layer) if hdr is not None else None
        if hdr is not None and body is not None:
            yield e, ip, hdr, body


def hellos(tl: Timeline) -> list[Hello]:
    """Every OSPF Hello on the overlay in `tl`, at every capture point."""
    return [Hello(e, str(ip.src), str(hdr.src), str(h.mask), int(h.prio), str(h.router), str(h.backup))
            for e, ip, hdr, h in _packets(tl, scapy_ospf.OSPF_Hello)]


def router_lsas(tl: Timeline) -> list[RouterLsa]:
    """Every Router-LSA in an LS Update on the overlay in `tl`, at every capture point."""
    return [RouterLsa(e, str(ip.src), str(ip.dst), str(lsa.adrouter),
                      tuple(Link(int(lk.type), str(lk.id), str(lk.data)) for lk in lsa.linklist or ()))
            for e, ip, _, upd in _packets(tl, scapy_ospf.OSPF_LSUpd)
            for lsa in upd.lsalist or () if isinstance(lsa, scapy_ospf.OSPF_Router_LSA)]
