"""Reading pcap files: classic libpcap format, the link types lab captures use.

A struct-based reader rather than scapy's: the timeline decodes every frame of every
node's capture, and per-packet scapy dissection costs ~50x more than this.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ETHERNET, RAW, LINUX_SLL, LINUX_SLL2 = 1, 101, 113, 276
ETH_IPV4, ETH_VLAN = 0x0800, 0x8100


class PcapError(ValueError):
    """A capture file we cannot read; the message names the file and the byte offset."""


@dataclass(frozen=True)
class Record:
    ts: float
    linktype: int
    data: bytes
    outgoing: bool | None = None     # known only for SLL/SLL2 (packet type 4 = sent by us)


def read(path: Path) -> Iterator[Record]:
    raw = Path(path).read_bytes()
    if len(raw) < 24:
        if not raw:
            return                  # tcpdump killed before writing its header: no packets
        raise PcapError(f"{path}: {len(raw)} bytes, shorter than a pcap file header (24)")
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        raise PcapError(f"{path}: pcapng is not supported; convert with `editcap -F pcap`")
    else:
        raise PcapError(f"{path}: not a pcap file (magic {magic.hex()} at offset 0)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    scale = 1e-9 if nano else 1e-6
    linktype = struct.unpack_from(end + "I", raw, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(end + "IIII")
    off = 24
    while off < len(raw):
        if off + 16 > len(raw):
            return                  # a capture cut short mid-header: keep what came before
        sec, frac, incl, _orig = rec.unpack_from(raw, off)
        off += 16
        data = raw[off:off + incl]
        off += incl
        if len(data) < incl:
            return
        outgoing = None
        if linktype == LINUX_SLL and len(data) >= 2:
            outgoing = struct.unpack_from(">H", data, 0)[0] == 4
        elif linktype == LINUX_SLL2 and len(data) >= 11:
            outgoing = data[10] == 4
        yield Record(sec + frac * scale, linktype, data, outgoing)


def ipv4_payload(r: Record) -> bytes | None:
    """The IPv4 packet a frame carries, or None for anything else (ARP, IPv6, …)."""
    d = r.data
    if r.linktype == ETHERNET:
        off, etype = 14, struct.unpack_from(">H", d, 12)[0] if len(d) >= 14 else 0
        while etype == ETH_VLAN and len(d) >= off + 4:
            etype = struct.unpack_from(">H", d, off + 2)[0]
            off += 4
    elif r.linktype == LINUX_SLL:
        off, etype = 16, struct.unpack_from(">H", d, 14)[0] if len(d) >= 16 else 0
    elif r.linktype == LINUX_SLL2:
        off, etype = 20, struct.unpack_from(">H", d, 0)[0] if len(d) >= 20 else 0
    elif r.linktype == RAW:
        off, etype = 0, ETH_IPV4 if d[:1] and d[0] >> 4 == 4 else 0
    else:
        return None
    return d[off:] if etype == ETH_IPV4 else None
