"""BGP UPDATEs carried over the overlay (GRE, in the clear or in opened ESP), decoded
with scapy's contrib BGP: what the routing cases assert on, from the wire.

Each TCP stream of a BGP session is read from the one capture point that saw it first,
so a segment captured at both ends counts once, and reassembled by sequence number:
an UPDATE may span segments, and a segment may carry several messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from scapy.contrib import bgp as scapy_bgp

from .timeline import Event, Timeline

BGP_PORT = 179
MARKER = b"\xff" * 16
HEADER_LEN = 19
UPDATE = 2
TCP = 6
NEXT_HOP = 3
# FRR (and every router since RFC 6793) negotiates 4-octet AS numbers: AS_PATH then
# carries 4-octet ASes, which scapy reads only with this set.
scapy_bgp.bgp_module_conf.use_2_bytes_asn = False

Stream = tuple[str, int, str, int]      # inner source, port, destination, port


@dataclass(frozen=True)
class Update:
    event: Event                        # the GRE packet whose segment completed it
    src: str                            # the BGP speaker's (tunnel) address
    dst: str
    nlri: tuple[IPv4Network, ...]
    withdrawn: tuple[IPv4Network, ...]
    next_hop: str | None

    def __str__(self) -> str:
        return (f"UPDATE {self.src}>{self.dst} nlri={[str(p) for p in self.nlri]} next_hop={self.next_hop} "
                f"withdrawn={[str(p) for p in self.withdrawn]} [{self.event.ref or self.event.node}]")


def _segment(ip: bytes) -> tuple[Stream, int, bytes] | None:
    """(stream, sequence number, payload) of a TCP segment to or from port 179."""
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != TCP:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack_from(">H", ip, 2)[0]
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack_from(">HHI", tcp)
    if BGP_PORT not in (sport, dport):
        return None
    return (str(IPv4Address(ip[12:16])), sport, str(IPv4Address(ip[16:20])), dport), seq, tcp[(tcp[12] >> 4) * 4:]


def _update(e: Event, stream: Stream, message: bytes) -> Update | None:
    """The UPDATE in `message`; None where scapy cannot read it as one."""
    u = scapy_bgp.BGPHeader(message).getlayer(scapy_bgp.BGPUpdate)
    if u is None:
        return None
    next_hop = next((str(a.attribute.next_hop) for a in u.path_attr or () if a.type_code == NEXT_HOP), None)
    return Update(e, stream[0], stream[2], tuple(IPv4Network(n.prefix) for n in u.nlri or ()),
                  tuple(IPv4Network(w.prefix) for w in u.withdrawn_routes or ()), next_hop)


def updates(tl: Timeline) -> list[Update]:
    """Every BGP UPDATE on the overlay in `tl`, in the order sent."""
    owner: dict[Stream, str] = {}
    expected: dict[Stream, int] = {}
    pending: dict[Stream, bytes] = {}
    out: list[Update] = []
    for e in tl.events:
        seg = _segment(e.overlay) if e.overlay else None
        if seg is None:
            continue
        stream, seq, data = seg
        if owner.setdefault(stream, e.node) != e.node or not data:
            continue
        nxt, end = expected.get(stream), seq + len(data)
        buf = pending.get(stream, b"")
        if nxt is not None and end <= nxt:
            continue                    # a retransmission of what was read
        if nxt is not None and seq < nxt:
            data = data[nxt - seq:]
        elif nxt is not None and seq > nxt:     # a segment not captured: go on at the next message
            at = data.find(MARKER)
            buf, data = b"", data[at:] if at >= 0 else b""
        expected[stream] = end
        buf += data
        while len(buf) >= HEADER_LEN and buf[:16] == MARKER:
            length = struct.unpack_from(">H", buf, 16)[0]
            if length < HEADER_LEN or len(buf) < length:
                break
            u = _update(e, stream, buf[:length]) if buf[18] == UPDATE else None
            if u is not None:
                out.append(u)
            buf = buf[length:]
        pending[stream] = buf
    return out
