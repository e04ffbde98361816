"""Just enough NHRP decoding for the first cases, read from the lab's pcaps.

Stop-gap until `dmvpnkit.capture` provides the merged timeline and `dmvpnkit.nhrp`
the full decoder; cases use only `frames()` and these fields so they move over
unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from scapy.layers.inet import GRE, ICMP, IP
from scapy.utils import RawPcapReader

OPS = {1: "resolution-request", 2: "resolution-reply", 3: "registration-request",
       4: "registration-reply", 5: "purge-request", 6: "purge-reply", 7: "error-indication",
       8: "traffic-indication"}


@dataclass(frozen=True)
class Cie:
    code: int
    prefix_len: int
    holding_time: int
    client_nbma: str
    client_proto: str


@dataclass(frozen=True)
class Nhrp:
    op: str
    hopcnt: int
    flags: int
    request_id: int
    src_nbma: str
    src_proto: str
    dst_proto: str
    cies: tuple[Cie, ...] = ()
    inner: bytes = b""          # Traffic Indication: the triggering packet


@dataclass(frozen=True)
class Frame:
    ts: float
    node: str
    src: str                    # outer (NBMA) addresses
    dst: str
    nhrp: Nhrp | None = None
    data: str = ""              # e.g. "icmp echo-request 10.1.1.10>10.1.2.10"

    def __str__(self) -> str:
        what = (f"NHRP {self.nhrp.op} id={self.nhrp.request_id} {self.nhrp.src_proto}->{self.nhrp.dst_proto}"
                if self.nhrp else self.data)
        return f"{self.ts:.6f} {self.node:<8} {self.src}>{self.dst} {what}"


def _addr(b: bytes) -> str:
    return str(IPv4Address(b)) if len(b) == 4 else b.hex()


def parse_nhrp(b: bytes) -> Nhrp:
    (_afn, _pt, _snap, hopcnt, pktsz, _ck, extoff, _ver, op, shtl, sstl,
     spl, dpl, flags, rid) = struct.unpack_from("!HH5sBHHHBBBBBBHI", b, 0)
    o = 28
    nb, o = b[o:o + (shtl & 0x3F)], o + (shtl & 0x3F) + (sstl & 0x3F)
    sp, o = b[o:o + spl], o + spl
    dp, o = b[o:o + dpl], o + dpl
    end = extoff or pktsz
    cies, inner = [], b""
    if op == 8:
        inner = b[o:end]
    elif op != 7:
        while o + 12 <= end:
            code, plen, _u, _mtu, hold, catl, cstl, cpl, _pref = struct.unpack_from("!BBHHHBBBB", b, o)
            o += 12
            cn, o = b[o:o + (catl & 0x3F)], o + (catl & 0x3F) + (cstl & 0x3F)
            cp, o = b[o:o + cpl], o + cpl
            cies.append(Cie(code, plen, hold, _addr(cn), _addr(cp)))
    return Nhrp(OPS.get(op, f"op{op}"), hopcnt, flags, rid, _addr(nb), _addr(sp), _addr(dp), tuple(cies), inner)


def frames(pcap_dir: Path) -> list[Frame]:
    """Every GRE frame in `<node>__<iface>.pcap` files, time-ordered across nodes."""
    out: list[Frame] = []
    for f in sorted(Path(pcap_dir).glob("*__*.pcap")):
        node = f.name.split("__")[0]
        if f.stat().st_size < 24:
            continue
        for raw, meta in RawPcapReader(str(f)):
            ts = meta.sec + meta.usec / 1e6
            ip = IP(raw[14:])
            if not ip.haslayer(GRE):
                continue
            gre = ip[GRE]
            payload = bytes(gre.payload)
            if gre.proto == 0x2001:
                out.append(Frame(ts, node, ip.src, ip.dst, nhrp=parse_nhrp(payload)))
            elif gre.proto == 0x0800:
                inner = IP(payload)
                kind = f"icmp type {inner[ICMP].type}" if inner.haslayer(ICMP) else f"proto {inner.proto}"
                out.append(Frame(ts, node, ip.src, ip.dst, data=f"{kind} {inner.src}>{inner.dst}"))
    return sorted(out, key=lambda fr: fr.ts)


def show(fs: list[Frame], limit: int = 40) -> str:
    """The timeline slice an assertion message carries as its evidence."""
    lines = [str(f) for f in fs[-limit:]]
    return "\n".join(lines) if lines else "(no GRE frames captured)"
