"""NHRP messages as frozen dataclasses, and a fast decoder that needs no scapy.

What ``decode`` reports and what it tolerates
---------------------------------------------
It raises ``DecodeError`` only when the field boundaries themselves are in doubt:
fewer than 20 bytes, ar$pktsz below 20 or past the end of the data, ar$extoff past
ar$pktsz or inside the mandatory part, an address, CIE or extension running past the
end of its region, a CIE list (mandatory part or extension types 3, 4, 5, 9) with
bytes left over that cannot hold a CIE, or trailing bytes that cannot hold an
extension header. Everything that is wrong but still readable decodes, so the suite
can see and judge it: a bad checksum (``chksum_ok`` False), any version, hop count,
flags or code, unknown packet types (addresses decoded as in RFC 2332 5.2.0.1, the
rest of the mandatory part kept in ``inner``), unknown or misplaced extensions
(TLVs after End are decoded too), a missing End extension, extensions in an Error
Indication. Bytes after ar$pktsz (link-layer padding) are ignored.

Addresses are text: IPv4/IPv6 for 4/16-byte values, hex for other lengths, "" when
absent. Types 7 and 8 have no request ID (``request_id`` is 0); their first 16 bits,
the RFC's "unused" field, are kept in ``flags`` (FRR copies the errored packet's
flags there). The second unused field of a Traffic Indication is not modelled.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scapy.packet import Packet


class Op(enum.IntEnum):
    RESOLUTION_REQUEST = 1
    RESOLUTION_REPLY = 2
    REGISTRATION_REQUEST = 3
    REGISTRATION_REPLY = 4
    PURGE_REQUEST = 5
    PURGE_REPLY = 6
    ERROR_INDICATION = 7
    TRAFFIC_INDICATION = 8


OP_NAMES = {op.value: op.name.lower().replace("_", "-") for op in Op}
CIE_EXTENSIONS = frozenset({3, 4, 5, 9})   # responder, forward/reverse transit, Cisco NAT


class DecodeError(ValueError):
    """The bytes are not a readable NHRP packet; ``offset`` is from the fixed header."""

    def __init__(self, field: str, offset: int, detail: str) -> None:
        super().__init__(f"NHRP field {field} at offset {offset}: {detail}")
        self.field = field
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Cie:
    code: int
    prefix_len: int
    mtu: int
    holding_time: int
    preference: int
    client_nbma: str
    client_nbma_sub: str
    client_proto: str
    unused: int = 0
    cli_addr_tl: int = 0        # raw type/length bytes: bit 0x40 = E.164, low 6 bits = length
    cli_saddr_tl: int = 0


@dataclass(frozen=True, slots=True)
class Extension:
    type: int                   # 14-bit type, compulsory and unused bits removed
    compulsory: bool
    payload: bytes
    cies: tuple[Cie, ...] = ()  # decoded for types 3, 4, 5 and 9


@dataclass(frozen=True, slots=True)
class Message:
    afn: int
    pro_type: int
    pro_snap: bytes
    hopcnt: int
    pktsz: int
    chksum: int
    extoff: int
    version: int
    op_type: int
    flags: int
    request_id: int
    src_nbma: str
    src_nbma_sub: str
    src_proto: str
    dst_proto: str
    cies: tuple[Cie, ...]
    extensions: tuple[Extension, ...]
    error_code: int = 0
    error_offset: int = 0
    traffic_code: int = 0
    inner: bytes = b""          # type 7: the errored packet; type 8: the triggering packet
    chksum_ok: bool = True
    shtl: int = 0               # raw type/length bytes of the source NBMA (sub)address
    sstl: int = 0

    @property
    def op(self) -> str:
        return OP_NAMES.get(self.op_type, f"op{self.op_type}")

    def summary(self) -> str:
        if self.op_type == Op.ERROR_INDICATION:
            code: int | str = self.error_code
        elif self.op_type == Op.TRAFFIC_INDICATION:
            code = self.traffic_code
        else:
            code = self.cies[0].code if self.cies else "-"
        hold = self.cies[0].holding_time if self.cies else "-"
        bad = "" if self.chksum_ok else " BAD-CHECKSUM"
        return (f"{self.op} id={self.request_id} {self.src_proto or '-'}->{self.dst_proto or '-'}"
                f" flags=0x{self.flags:04x} code={code} hold={hold}{bad}")


@lru_cache(maxsize=4096)
def _addr(raw: bytes) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))     # same text as the rest of the code base
    return raw.hex()


_FIXED = struct.Struct("!HH5sBHHHBBBB")
_MANDATORY = struct.Struct("!BBHI")
_INDICATION = struct.Struct("!BBHHH")
_CIE = struct.Struct("!BBHHHBBBB")
_EXT = struct.Struct("!HH")
_FIXED_FIELDS = ((0, "afn"), (2, "pro_type"), (4, "pro_snap"), (9, "hopcnt"), (10, "pktsz"),
                 (12, "chksum"), (14, "extoff"), (16, "version"), (17, "op_type"),
                 (18, "shtl"), (19, "sstl"))
_REQUEST_FIELDS = ((20, "src_proto_len"), (21, "dst_proto_len"), (22, "flags"), (24, "request_id"))
_INDICATION_FIELDS = {7: ((20, "src_proto_len"), (21, "dst_proto_len"), (22, "unused"),
                          (24, "error_code"), (26, "error_offset")),
                      8: ((20, "src_proto_len"), (21, "dst_proto_len"), (22, "unused"),
                          (24, "traffic_code"), (26, "unused2"))}


def _first_missing(fields: tuple[tuple[int, str], ...], end: int) -> tuple[int, str]:
    """The field holding byte ``end``, i.e. the first one cut off (fields ascend)."""
    return [f for f in fields if f[0] <= end][-1]


def _checksum_ok(pkt: bytes) -> bool:
    # RFC 1071 over 16-bit words: the one's complement sum is the number modulo 0xFFFF
    # (2**16 == 1 mod 0xFFFF); a correct packet sums to all ones, i.e. 0 mod 0xFFFF.
    if len(pkt) & 1:
        pkt += b"\x00"
    total = int.from_bytes(pkt, "big")
    return total != 0 and total % 0xFFFF == 0


def _cies(data: bytes, o: int, end: int, where: str) -> tuple[Cie, ...]:
    out: list[Cie] = []
    while o < end:
        if end - o < 12:
            raise DecodeError(f"{where}[{len(out)}]", o,
                              f"{end - o} bytes left, a CIE needs at least 12")
        code, plen, unused, mtu, hold, atl, stl, cpl, pref = _CIE.unpack_from(data, o)
        alen, slen = atl & 0x3F, stl & 0x3F
        a = o + 12
        if a + alen + slen + cpl > end:
            for name, at, n in (("client_nbma", a, alen), ("client_nbma_sub", a + alen, slen),
                                ("client_proto", a + alen + slen, cpl)):
                if at + n > end:
                    raise DecodeError(f"{where}[{len(out)}].{name}", at,
                                      f"{n} bytes run past the end of the CIE list at {end}")
        b, c, o = a + alen, a + alen + slen, a + alen + slen + cpl
        out.append(Cie(code, plen, mtu, hold, pref,
                       _addr(data[a:b]) if alen else "",
                       data[b:c].hex() if slen else "",
                       _addr(data[c:o]) if cpl else "",
                       unused, atl, stl))
    return tuple(out)


def _extensions(data: bytes, o: int, end: int) -> tuple[Extension, ...]:
    out: list[Extension] = []
    while o < end:
        if end - o < 4:
            raise DecodeError(f"extensions[{len(out)}]", o,
                              f"{end - o} bytes left, an extension header needs 4")
        tc, length = _EXT.unpack_from(data, o)
        v = o + 4
        if v + length > end:
            raise DecodeError(f"extensions[{len(out)}].len", o + 2,
                              f"length {length} runs past pktsz ({end}) by {v + length - end}")
        ext_type = tc & 0x3FFF
        payload = data[v:v + length]
        cies = (_cies(data, v, v + length, f"extensions[{len(out)}].cies")
                if ext_type in CIE_EXTENSIONS and length else ())
        out.append(Extension(ext_type, bool(tc & 0x8000), payload, cies))
        o = v + length
    return tuple(out)


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Decode one NHRP packet starting at its fixed header; see the module docstring
    for what raises ``DecodeError`` and what decodes with the defect visible."""
    if type(data) is not bytes:
        data = bytes(data)      # slices must hash for the address cache
    n = len(data)
    if n < 20:
        at, name = _first_missing(_FIXED_FIELDS, n)
        raise DecodeError(name, at, f"packet is {n} bytes, the fixed header needs 20")
    (afn, pro_type, snap, hopcnt, pktsz, chksum, extoff, version, op_type, shtl,
     sstl) = _FIXED.unpack_from(data)
    if pktsz < 20:
        raise DecodeError("pktsz", 10, f"{pktsz} is shorter than the 20-byte fixed header")
    if pktsz > n:
        raise DecodeError("pktsz", 10, f"claims {pktsz} bytes, only {n} present")
    if pktsz < n:
        data = data[:pktsz]
    if extoff > pktsz:
        raise DecodeError("extoff", 14, f"points past pktsz ({extoff} > {pktsz})")
    end = extoff or pktsz

    if end < 28:
        if extoff:
            raise DecodeError("extoff", 14, f"{extoff} cuts into the mandatory part (ends at 28)")
        at, name = _first_missing(_INDICATION_FIELDS.get(op_type, _REQUEST_FIELDS), end)
        raise DecodeError(name, at, f"mandatory part truncated at {end}, needs 8 bytes from 20")
    error_code = error_offset = traffic_code = request_id = 0
    if op_type == 7:
        spl, dpl, flags, error_code, error_offset = _INDICATION.unpack_from(data, 20)
    elif op_type == 8:
        spl, dpl, flags, traffic_code, _ = _INDICATION.unpack_from(data, 20)
    else:
        spl, dpl, flags, request_id = _MANDATORY.unpack_from(data, 20)

    shl, ssl = shtl & 0x3F, sstl & 0x3F
    a = 28
    b, c, d, o = a + shl, a + shl + ssl, a + shl + ssl + spl, a + shl + ssl + spl + dpl
    if o > end:
        for name, at, size in (("src_nbma", a, shl), ("src_nbma_sub", b, ssl),
                               ("src_proto", c, spl), ("dst_proto", d, dpl)):
            if at + size > end:
                if extoff:
                    raise DecodeError("extoff", 14, f"{extoff} cuts into {name} ({at}..{at + size})")
                raise DecodeError(name, at, f"{size} bytes run past pktsz ({pktsz})")

    if 1 <= op_type <= 6:
        cies, inner = _cies(data, o, end, "cies"), b""
    else:
        cies, inner = (), data[o:end]
    return Message(
        afn, pro_type, snap, hopcnt, pktsz, chksum, extoff, version, op_type, flags, request_id,
        _addr(data[a:b]) if shl else "",
        data[b:c].hex() if ssl else "",
        _addr(data[c:d]) if spl else "",
        _addr(data[d:o]) if dpl else "",
        cies,
        _extensions(data, extoff, pktsz) if extoff else (),
        error_code, error_offset, traffic_code, inner,
        _checksum_ok(data), shtl, sstl)


def from_layer(pkt: Packet) -> Message:
    """Decode the first NHRP layer of a scapy packet (via its bytes)."""
    from dmvpnkit.nhrp.layer import NHRP

    layer = pkt.getlayer(NHRP)
    if layer is None:
        raise ValueError(f"no NHRP layer in {pkt.summary()}")
    return decode(bytes(layer))
