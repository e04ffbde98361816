"""Reading capture files: classic pcap and pcapng, the link types lab captures use.

Struct-based readers rather than a library's: the timeline decodes every frame of
every node's capture, and per-packet scapy dissection costs ~50x more than this.
Of the pcapng readers measured (benchmarks/bench_decode.py), dpkt's reads only the
first interface of a file (one link type, one timestamp resolution), python-pcapng
is ~30x slower than this one, and scapy's RawPcapNgReader ~3x.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ETHERNET, RAW, LINUX_SLL, LINUX_SLL2 = 1, 101, 113, 276
ETH_IPV4, ETH_VLAN = 0x0800, 0x8100
LINKTYPES = {ETHERNET: "Ethernet", RAW: "raw IP", LINUX_SLL: "Linux cooked v1", LINUX_SLL2: "Linux cooked v2"}
# pcapng blocks (draft-ietf-opsawg-pcapng): section header, interface description,
# obsolete packet, simple packet, enhanced packet. Others (name resolution, statistics,
# decryption secrets, custom) carry no frames and are skipped.
SHB, IDB, OPB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
OPT_END, EPB_FLAGS, IF_TSRESOL, IF_TSOFFSET = 0, 2, 9, 14


SUFFIXES = (".pcap", ".pcapng")


def capture_files(directory: Path | str) -> list[Path]:
    """The capture files (pcap and pcapng) in a directory, sorted by name."""
    return sorted(p for suffix in SUFFIXES for p in Path(directory).glob(f"*{suffix}"))


class PcapError(ValueError):
    """A capture file we cannot read; the message names the file and the byte offset."""


@dataclass(frozen=True)
class Record:
    ts: float
    linktype: int
    data: bytes
    outgoing: bool | None = None     # known for SLL/SLL2 (packet type 4 = sent by us) and
                                     # for pcapng packets with a direction in epb_flags


def _linktype_note(path: Path, linktype: int, off: int) -> str:
    return (f"{path}: link type {linktype} at offset {off} is not one dmvpnkit decodes "
            f"({', '.join(f'{n} {t}' for t, n in LINKTYPES.items())}): its frames are skipped")


def read(path: Path, notes: list[str] | None = None) -> Iterator[Record]:
    """The frames of a pcap or pcapng file. What is read but cannot be used is said in
    `notes`, if given, one line each naming the file and the offset: a file cut short
    (what came before the cut is kept), an interface of a link type no decoder here reads."""
    notes = [] if notes is None else notes
    raw = Path(path).read_bytes()
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng(path, raw, notes)
        return
    if len(raw) < 24:
        if not raw:
            return                  # tcpdump killed before writing its header: no packets
        raise PcapError(f"{path}: {len(raw)} bytes, shorter than a pcap file header (24)")
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise PcapError(f"{path}: not a pcap file (magic {magic.hex()} at offset 0)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    scale = 1e-9 if nano else 1e-6
    linktype = struct.unpack_from(end + "I", raw, 20)[0] & 0x0FFFFFFF
    if linktype not in LINKTYPES:
        notes.append(_linktype_note(path, linktype, 20))
    rec = struct.Struct(end + "IIII")
    off = 24
    while off < len(raw):
        if off + 16 > len(raw):     # a capture cut short mid-header: keep what came before
            notes.append(f"{path}: cut short at offset {off}: {len(raw) - off} bytes of a 16-byte record header")
            return
        sec, frac, incl, _orig = rec.unpack_from(raw, off)
        data = raw[off + 16:off + 16 + incl]
        if len(data) < incl:
            notes.append(f"{path}: cut short at offset {off}: the record there holds {incl} bytes, "
                         f"{len(data)} present")
            return
        off += 16 + incl
        yield Record(sec + frac * scale, linktype, data, _outgoing(linktype, data))


def _outgoing(linktype: int, data: bytes) -> bool | None:
    if linktype == LINUX_SLL and len(data) >= 2:
        return data[0:2] == b"\x00\x04"
    if linktype == LINUX_SLL2 and len(data) >= 11:
        return data[10] == 4
    return None


def _options(raw: bytes, off: int, end: int, order: str) -> Iterator[tuple[int, bytes]]:
    while off + 4 <= end:
        code, length = struct.unpack_from(order + "HH", raw, off)
        if code == OPT_END:
            return
        yield code, raw[off + 4:off + 4 + length]
        off += 4 + (length + 3) // 4 * 4


def _interface(raw: bytes, body: int, end: int, order: str) -> tuple[int, int, float, int]:
    """An interface description: link type, snap length, seconds per timestamp unit
    (if_tsresol: 10^-n, or 2^-n with the high bit; default microseconds) and the
    if_tsoffset seconds added to every timestamp."""
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", raw, body)
    scale, offset = 1e-6, 0
    for code, value in _options(raw, body + 8, end, order):
        if code == IF_TSRESOL and value:
            scale = 2.0 ** -(value[0] & 0x7F) if value[0] & 0x80 else 10.0 ** -value[0]
        elif code == IF_TSOFFSET and len(value) == 8:
            offset = struct.unpack(order + "q", value)[0]
    return linktype & 0x0FFFFFFF, snaplen, scale, offset


def _pcapng(path: Path, raw: bytes, notes: list[str]) -> Iterator[Record]:
    """Every packet of every section, each with its own interface's link type and
    timestamp resolution; a file cut short mid-block keeps what came before it."""
    order, off, size = "<", 0, len(raw)
    head, epb = struct.Struct("<II"), struct.Struct("<IIIII")
    ifaces: list[tuple[int, int, float, int]] = []
    while off + 12 <= size:
        btype, blen = head.unpack_from(raw, off)
        if btype == SHB:            # the type reads the same in both byte orders
            bom = raw[off + 8:off + 12]
            if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                raise PcapError(f"{path}: pcapng section header at offset {off}: byte-order magic "
                                f"{bom.hex()}, not 1a2b3c4d in either order")
            order, ifaces = ("<" if bom[0] == 0x4D else ">"), []
            head, epb = struct.Struct(order + "II"), struct.Struct(order + "IIIII")
            blen = head.unpack_from(raw, off)[1]
        if blen < 12 or blen % 4:
            raise PcapError(f"{path}: pcapng block (type 0x{btype:x}) at offset {off}: total length {blen}, "
                            f"not a multiple of 4 of at least 12")
        if off + blen > size:
            notes.append(f"{path}: cut short at offset {off}: the pcapng block there (type 0x{btype:x}) "
                         f"is {blen} bytes, {size - off} present")
            return
        body, end = off + 8, off + blen - 4
        if btype == EPB:
            ifid, hi, lo, cap, _orig = epb.unpack_from(raw, body)
            data_at = body + 20
        elif btype == OPB:
            ifid, _drops, hi, lo, cap, _orig = struct.unpack_from(order + "HHIIII", raw, body)
            data_at = body + 20
        elif btype == SPB:          # interface 0, no timestamp, the rest of the block is the frame
            ifid, hi, lo, data_at = 0, 0, 0, body + 4
            cap = min(struct.unpack_from(order + "I", raw, body)[0], end - data_at,
                      ifaces[0][1] if ifaces and ifaces[0][1] else size)
        else:
            if btype == IDB:
                ifaces.append(_interface(raw, body, end, order))
                if ifaces[-1][0] not in LINKTYPES:
                    notes.append(_linktype_note(path, ifaces[-1][0], off))
            off += blen
            continue
        if ifid >= len(ifaces):
            raise PcapError(f"{path}: pcapng packet block at offset {off} names interface {ifid}; "
                            f"the section describes {len(ifaces)}")
        if data_at + cap > end:
            raise PcapError(f"{path}: pcapng packet block at offset {off}: captured length {cap} "
                            f"overruns the block ({blen} bytes)")
        linktype, _snaplen, scale, ts_offset = ifaces[ifid]
        data = raw[data_at:data_at + cap]
        outgoing = _outgoing(linktype, data)
        opts = data_at + (cap + 3) // 4 * 4
        if outgoing is None and btype == EPB and opts < end:
            for code, value in _options(raw, opts, end, order):
                if code == EPB_FLAGS and len(value) == 4:       # bits 0-1: 1 inbound, 2 outbound
                    outgoing = {1: False, 2: True}.get(struct.unpack(order + "I", value)[0] & 3)
        yield Record(((hi << 32) | lo) * scale + ts_offset, linktype, data, outgoing)
        off += blen
    if off < size:
        notes.append(f"{path}: cut short at offset {off}: {size - off} bytes, less than a pcapng block header")


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
