"""NHRP on the wire for the daemon: RFC 2332 plus the Cisco/FRR Traffic Indication,
NAT address and authentication extensions; IPv4 NBMA, IPv4 or IPv6 protocol addresses.

This codec is deliberately independent of ``dmvpnkit.nhrp`` (the scapy-side model):
a differential test runs both over the same bytes, so a bug has to be made twice,
the same way, to go unnoticed.

``decode`` raises only ``CodecError`` (field name and offset from the fixed header,
ready to become an Error Indication's Error Offset); ``encode`` raises ``EncodeError``
when *we* asked for something that cannot be put on the wire. ``encode`` fills in
ar$pktsz, ar$extoff and ar$chksum; the values ``decode`` read are kept on the
``Packet`` for evidence but take no part in comparisons.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias, TypeVar

AFN_IPV4 = 1                # ar$afn: IANA address family 1
PRO_IPV4 = 0x0800           # ar$pro.type: EtherType of IPv4
PRO_IPV6 = 0x86DD           # ar$pro.type: EtherType of IPv6
PROTO_LEN = {PRO_IPV4: 4, PRO_IPV6: 16}     # ar$pro.type -> its protocol addresses' length
NHRP_VERSION = 1            # ar$op.version: "1 NHRP as defined in this document"
FIXED_LEN = 20
MANDATORY_LEN = 8           # src/dst proto lengths, flags, request ID (or code/offset)
CIE_LEN = 12
EXT_HEADER_LEN = 4
COMPULSORY = 0x8000

# ar$flags (RFC 2332 5.2.1 .. 5.2.6); NAT is Cisco's, carried by FRR and IOS.
FLAG_Q = 0x8000             # Resolution: source is a router
FLAG_A = 0x4000             # Resolution: authoritative
FLAG_D = 0x2000             # Resolution Reply: destination stable
FLAG_U_RESOLUTION = 0x1000  # Resolution: uniqueness
FLAG_S = 0x0800             # Resolution: source stable
FLAG_U_REGISTRATION = 0x8000
FLAG_N = 0x8000             # Purge Request: no reply expected
FLAG_NAT = 0x0002


class Op(enum.IntEnum):
    """ar$op.type (5.2.0.1), with 8 the Cisco/FRR Traffic Indication."""

    RESOLUTION_REQUEST = 1
    RESOLUTION_REPLY = 2
    REGISTRATION_REQUEST = 3
    REGISTRATION_REPLY = 4
    PURGE_REQUEST = 5
    PURGE_REPLY = 6
    ERROR_INDICATION = 7
    TRAFFIC_INDICATION = 8


REQUESTS = frozenset({Op.RESOLUTION_REQUEST, Op.REGISTRATION_REQUEST, Op.PURGE_REQUEST})
REPLIES = frozenset({Op.RESOLUTION_REPLY, Op.REGISTRATION_REPLY, Op.PURGE_REPLY})


class ErrorCode(enum.IntEnum):
    """Error Indication codes (5.2.7)."""

    UNRECOGNIZED_EXTENSION = 1
    LOOP_DETECTED = 3
    PROTOCOL_ADDRESS_UNREACHABLE = 6
    PROTOCOL_ERROR = 7
    SDU_SIZE_EXCEEDED = 8
    INVALID_EXTENSION = 9
    INVALID_RESOLUTION_REPLY = 10
    AUTHENTICATION_FAILURE = 11
    HOP_COUNT_EXCEEDED = 15


class CieCode(enum.IntEnum):
    """CIE codes of replies (5.2.2, 5.2.4, 5.2.6)."""

    SUCCESS = 0
    ADMINISTRATIVELY_PROHIBITED = 4
    INSUFFICIENT_RESOURCES = 5
    NO_BINDING_EXISTS = 12
    BINDING_NOT_UNIQUE = 13
    UNIQUE_ALREADY_REGISTERED = 14


class ExtType(enum.IntEnum):
    """Extension types (5.3); 9 is Cisco's NAT address extension."""

    END = 0
    RESPONDER_ADDRESS = 3
    FORWARD_TRANSIT_NHS = 4
    REVERSE_TRANSIT_NHS = 5
    AUTHENTICATION = 7
    VENDOR_PRIVATE = 8
    NAT_ADDRESS = 9


class CodecError(ValueError):
    """The peer's bytes are not an NHRP packet we can read. ``offset`` counts from the
    fixed header (as an Error Indication's Error Offset does); ``field`` names what is
    wrong in the RFC's terms."""

    def __init__(self, field: str, offset: int, detail: str) -> None:
        super().__init__(f"NHRP {field} at offset {offset}: {detail}")
        self.field = field
        self.offset = offset
        self.detail = detail


class EncodeError(ValueError):
    """We asked to encode something that has no wire form (our bug, not the peer's)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"cannot encode {field}: {detail}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Cie:
    """Client Information Entry (5.2.0.1); addresses are text or "" (absent): the NBMA
    address IPv4, the protocol address of the packet's ar$pro.type."""

    code: int = 0
    prefix_length: int = 0
    mtu: int = 0
    holding_time: int = 0
    preference: int = 0
    client_nbma: str = ""
    client_proto: str = ""


# -- extensions (5.3): one class per type, UnknownExtension for the rest ---------------

@dataclass(frozen=True, slots=True)
class End:
    """End of Extensions (5.3.0): compulsory, length 0."""

    compulsory: bool = True
    type: ClassVar[int] = ExtType.END


@dataclass(frozen=True, slots=True)
class ResponderAddress:
    """5.3.1: empty in a request, the responder's CIE in the reply."""

    cies: tuple[Cie, ...] = ()
    compulsory: bool = True
    type: ClassVar[int] = ExtType.RESPONDER_ADDRESS


@dataclass(frozen=True, slots=True)
class ForwardTransit:
    """5.3.2: one CIE per NHS a request (or indication) has crossed."""

    cies: tuple[Cie, ...] = ()
    compulsory: bool = True
    type: ClassVar[int] = ExtType.FORWARD_TRANSIT_NHS


@dataclass(frozen=True, slots=True)
class ReverseTransit:
    """5.3.3: one CIE per NHS a reply has crossed."""

    cies: tuple[Cie, ...] = ()
    compulsory: bool = True
    type: ClassVar[int] = ExtType.REVERSE_TRANSIT_NHS


@dataclass(frozen=True, slots=True)
class Authentication:
    """5.3.4 in the form Cisco and FRR use: a 32-bit SPI (1, "plaintext") and the
    password, without the RFC's Src Addr."""

    password: bytes = b""
    spi: int = 1
    compulsory: bool = True
    type: ClassVar[int] = ExtType.AUTHENTICATION


@dataclass(frozen=True, slots=True)
class VendorPrivate:
    """5.3.5: a 24-bit IEEE OUI and opaque data."""

    vendor_id: int = 0
    data: bytes = b""
    compulsory: bool = False
    type: ClassVar[int] = ExtType.VENDOR_PRIVATE


@dataclass(frozen=True, slots=True)
class NatAddress:
    """Cisco NAT address extension: CIEs binding a protocol address to the NBMA
    address it is seen at (post-NAT)."""

    cies: tuple[Cie, ...] = ()
    compulsory: bool = False
    type: ClassVar[int] = ExtType.NAT_ADDRESS


@dataclass(frozen=True, slots=True)
class UnknownExtension:
    """Any other type, kept byte for byte (5.3: returned unchanged in the reply)."""

    type: int
    payload: bytes = b""
    compulsory: bool = False


Extension: TypeAlias = (End | ResponderAddress | ForwardTransit | ReverseTransit | Authentication
                        | VendorPrivate | NatAddress | UnknownExtension)
CieExtension: TypeAlias = ResponderAddress | ForwardTransit | ReverseTransit | NatAddress
_CIE_EXTENSIONS: dict[int, type[CieExtension]] = {
    ExtType.RESPONDER_ADDRESS: ResponderAddress, ExtType.FORWARD_TRANSIT_NHS: ForwardTransit,
    ExtType.REVERSE_TRANSIT_NHS: ReverseTransit, ExtType.NAT_ADDRESS: NatAddress,
}
KNOWN_EXTENSIONS = frozenset(int(t) for t in ExtType)
Ext = TypeVar("Ext")


@dataclass(frozen=True, slots=True)
class Packet:
    """One NHRP packet. Types 1-6 use ``flags``, ``request_id`` and ``cies``; type 7
    uses ``error_code``/``error_offset`` and carries the errored packet in ``payload``;
    type 8 uses ``traffic_code`` and carries the triggering packet in ``payload``
    (``flags`` then holds the 16 "unused" bits before the code). Protocol addresses,
    the CIEs' included, are of ``pro_type``'s family."""

    op_type: int
    src_nbma: str = ""
    src_proto: str = ""
    dst_proto: str = ""
    flags: int = 0
    request_id: int = 0
    cies: tuple[Cie, ...] = ()
    extensions: tuple[Extension, ...] = ()
    hopcnt: int = 64
    version: int = NHRP_VERSION
    error_code: int = 0
    error_offset: int = 0
    traffic_code: int = 0
    payload: bytes = b""
    pro_type: int = PRO_IPV4
    # As read by decode(); encode() computes its own.
    pktsz: int = field(default=0, compare=False)
    extoff: int = field(default=0, compare=False)
    chksum: int = field(default=0, compare=False)
    chksum_ok: bool = field(default=True, compare=False)
    ext_offsets: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def extension(self, kind: type[Ext]) -> Ext | None:
        """The first extension of class ``kind``, if any."""
        for ext in self.extensions:
            if isinstance(ext, kind):
                return ext
        return None


# -- RFC 1071 checksum --------------------------------------------------------------

def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``, zero-padded to an even length:
    the value to store in ar$chksum when that field is zero in ``data``."""
    if len(data) & 1:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def checksum_ok(data: bytes) -> bool:
    """5.1: the one's complement sum over the whole packet, ar$chksum included, is
    all ones (i.e. the checksum of it is 0)."""
    return checksum(data) == 0


# -- encoding -----------------------------------------------------------------------

def _ip(text: str, pro_type: int, where: str) -> bytes:
    """An address of ``pro_type``'s family (NBMA addresses: PRO_IPV4) as bytes."""
    if not text:
        return b""
    try:
        packed = ipaddress.ip_address(text).packed
    except ValueError as e:
        raise EncodeError(where, f"{text!r} is not an IP address ({e})") from None
    if len(packed) != PROTO_LEN[pro_type]:
        raise EncodeError(where, f"{text!r} is not an address of ar$pro.type 0x{pro_type:04x}")
    return packed


def _pack(fmt: str, where: str, *values: int | bytes) -> bytes:
    try:
        return struct.pack(fmt, *values)
    except struct.error as e:
        raise EncodeError(where, f"{values} do not fit {fmt!r} ({e})") from None


def _encode_cie(c: Cie, pro_type: int, where: str) -> bytes:
    nbma = _ip(c.client_nbma, PRO_IPV4, f"{where}.client_nbma")
    proto = _ip(c.client_proto, pro_type, f"{where}.client_proto")
    return _pack("!BBHHHBBBB", where, c.code, c.prefix_length, 0, c.mtu, c.holding_time,
                 len(nbma), 0, len(proto), c.preference) + nbma + proto


def _encode_cies(cies: tuple[Cie, ...], pro_type: int, where: str) -> bytes:
    return b"".join(_encode_cie(c, pro_type, f"{where}[{i}]") for i, c in enumerate(cies))


def _extension_value(ext: Extension, pro_type: int, where: str) -> bytes:
    if isinstance(ext, End):
        return b""
    if isinstance(ext, (ResponderAddress, ForwardTransit, ReverseTransit, NatAddress)):
        return _encode_cies(ext.cies, pro_type, f"{where}.cies")
    if isinstance(ext, Authentication):
        return _pack("!I", f"{where}.spi", ext.spi) + ext.password
    if isinstance(ext, VendorPrivate):
        if not 0 <= ext.vendor_id < 1 << 24:
            raise EncodeError(f"{where}.vendor_id", f"{ext.vendor_id} is not a 24-bit OUI")
        return ext.vendor_id.to_bytes(3, "big") + ext.data
    return ext.payload


def encode_extension(ext: Extension, where: str = "extension", pro_type: int = PRO_IPV4) -> bytes:
    """One extension TLV: C bit, type, length and value (5.3); CIEs in it carry protocol
    addresses of ``pro_type``."""
    value = _extension_value(ext, pro_type, where)
    if not 0 <= ext.type < 0x4000:
        raise EncodeError(f"{where}.type", f"{ext.type} is not a 14-bit type")
    return _pack("!HH", where, ext.type | (COMPULSORY if ext.compulsory else 0), len(value)) + value


def encode(p: Packet) -> bytes:
    """The bytes of ``p`` with ar$pktsz, ar$extoff and ar$chksum computed."""
    if p.pro_type not in PROTO_LEN:
        raise EncodeError("pro_type", f"0x{p.pro_type:04x} is neither IPv4 nor IPv6")
    src_nbma = _ip(p.src_nbma, PRO_IPV4, "src_nbma")
    src_proto, dst_proto = _ip(p.src_proto, p.pro_type, "src_proto"), _ip(p.dst_proto, p.pro_type, "dst_proto")
    if p.op_type == Op.ERROR_INDICATION:
        mandatory = _pack("!BBHHH", "mandatory", len(src_proto), len(dst_proto), p.flags,
                          p.error_code, p.error_offset)
        records = p.payload
    elif p.op_type == Op.TRAFFIC_INDICATION:
        mandatory = _pack("!BBHHH", "mandatory", len(src_proto), len(dst_proto), p.flags,
                          p.traffic_code, 0)
        records = p.payload
    else:
        mandatory = _pack("!BBHI", "mandatory", len(src_proto), len(dst_proto), p.flags,
                          p.request_id)
        records = _encode_cies(p.cies, p.pro_type, "cies") + p.payload
    body = mandatory + src_nbma + src_proto + dst_proto + records
    exts = b"".join(encode_extension(e, f"extensions[{i}]", p.pro_type) for i, e in enumerate(p.extensions))
    extoff = FIXED_LEN + len(body) if p.extensions else 0
    pktsz = FIXED_LEN + len(body) + len(exts)
    if pktsz > 0xFFFF:
        raise EncodeError("pktsz", f"{pktsz} bytes do not fit ar$pktsz")
    fixed = _pack("!HH5sBHHHBBBB", "fixed header", AFN_IPV4, p.pro_type, b"\x00" * 5, p.hopcnt,
                  pktsz, 0, extoff, p.version, p.op_type, len(src_nbma), 0)
    out = bytearray(fixed + body + exts)
    out[12:14] = struct.pack("!H", checksum(bytes(out)))
    return bytes(out)


# -- decoding -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Header:
    """What can be read of a packet's fixed header and addresses without trusting the
    rest; ``peek`` gives it for packets that ``decode`` rejects, so an Error
    Indication can still be addressed to the sender."""

    op_type: int
    version: int
    hopcnt: int
    pktsz: int
    src_nbma: str
    src_proto: str
    dst_proto: str
    request_id: int


def _addr(raw: bytes) -> str:
    """An IPv4 or IPv6 address's text; "" for no address (length 0)."""
    return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else ""


def peek(data: bytes) -> Header | None:
    """Best-effort fixed header and addresses; None when not even 20 bytes."""
    if len(data) < FIXED_LEN:
        return None
    hopcnt, pktsz, version, op_type, shtl = data[9], int.from_bytes(data[10:12], "big"), \
        data[16], data[17], data[18] & 0x3F
    src_nbma = src_proto = dst_proto = ""
    request_id = 0
    if len(data) >= FIXED_LEN + MANDATORY_LEN:
        spl, dpl = data[20], data[21]
        request_id = int.from_bytes(data[24:28], "big")
        a = FIXED_LEN + MANDATORY_LEN
        b, c = a + shtl + (data[19] & 0x3F), a + shtl + (data[19] & 0x3F) + spl
        src_nbma = _addr(data[a:a + shtl]) if shtl == 4 else ""
        src_proto = _addr(data[b:c]) if len(data[b:c]) == spl else ""
        dst_proto = _addr(data[c:c + dpl]) if len(data[c:c + dpl]) == dpl else ""
    return Header(op_type, version, hopcnt, pktsz, src_nbma, src_proto, dst_proto, request_id)


_CIE = struct.Struct("!BBHHHBBBB")


def _decode_cies(data: bytes, o: int, end: int, proto_len: int, where: str) -> tuple[Cie, ...]:
    """The CIEs in data[o:end], protocol addresses ``proto_len`` bytes long (or absent)."""
    out: list[Cie] = []
    while o < end:
        name = f"{where}[{len(out)}]"
        if end - o < CIE_LEN:
            raise CodecError(name, o, f"{end - o} bytes left, a CIE needs {CIE_LEN}")
        code, plen, _unused, mtu, hold, atl, stl, cpl, pref = _CIE.unpack_from(data, o)
        if atl not in (0, 4):
            raise CodecError(f"{name}.cli_addr_tl", o + 8, f"0x{atl:02x}: only IPv4 NBMA (4 or 0) is supported")
        if stl:
            raise CodecError(f"{name}.cli_saddr_tl", o + 9, f"0x{stl:02x}: NBMA subaddresses are not supported")
        if cpl not in (0, proto_len):
            raise CodecError(f"{name}.cli_proto_len", o + 10, f"{cpl}: ar$pro.type's addresses are {proto_len} (or 0)")
        a = o + CIE_LEN
        if a + atl + cpl > end:
            raise CodecError(f"{name}.client_{'nbma' if a + atl > end else 'proto'}",
                             a if a + atl > end else a + atl,
                             f"addresses run past the end of the CIE list at {end}")
        out.append(Cie(code, plen, mtu, hold, pref, _addr(data[a:a + atl]),
                       _addr(data[a + atl:a + atl + cpl])))
        o = a + atl + cpl
    return tuple(out)


def _decode_extension(data: bytes, o: int, i: int, kind: int, compulsory: bool,
                      v: int, length: int, plen: int) -> Extension:
    where = f"extensions[{i}]"
    value = data[v:v + length]
    if kind == ExtType.END:
        if length:
            raise CodecError(f"{where}.len", o + 2, f"End of Extensions has length {length}, not 0")
        return End(compulsory)
    cls = _CIE_EXTENSIONS.get(kind)
    if cls is not None:
        return cls(_decode_cies(data, v, v + length, plen, f"{where}.cies"), compulsory)
    if kind == ExtType.AUTHENTICATION:
        if length < 4:
            raise CodecError(f"{where}.spi", v, f"{length} bytes, the SPI alone needs 4")
        return Authentication(value[4:], int.from_bytes(value[:4], "big"), compulsory)
    if kind == ExtType.VENDOR_PRIVATE:
        if length < 3:
            raise CodecError(f"{where}.vendor_id", v, f"{length} bytes, the vendor ID needs 3")
        return VendorPrivate(int.from_bytes(value[:3], "big"), value[3:], compulsory)
    return UnknownExtension(kind, value, compulsory)


def _decode_extensions(data: bytes, o: int, end: int, plen: int) -> tuple[tuple[Extension, ...], tuple[int, ...]]:
    exts: list[Extension] = []
    offsets: list[int] = []
    while o < end:
        i = len(exts)
        if end - o < EXT_HEADER_LEN:
            raise CodecError(f"extensions[{i}]", o, f"{end - o} bytes left, an extension header needs 4")
        tc, length = struct.unpack_from("!HH", data, o)
        v = o + EXT_HEADER_LEN
        if v + length > end:
            raise CodecError(f"extensions[{i}].len", o + 2,
                             f"length {length} runs past ar$pktsz ({end}) by {v + length - end}")
        exts.append(_decode_extension(data, o, i, tc & 0x3FFF, bool(tc & COMPULSORY), v, length, plen))
        offsets.append(o)
        o = v + length
    return tuple(exts), tuple(offsets)


def decode(data: bytes) -> Packet:
    """Read one NHRP packet starting at its fixed header. Bytes after ar$pktsz are
    ignored; a bad checksum is reported in ``chksum_ok``, not raised. Everything else
    that is not a readable NHRP version 1 packet (IPv4 NBMA, IPv4 or IPv6 protocol
    addresses) raises ``CodecError``."""
    data = bytes(data)
    n = len(data)
    if n < FIXED_LEN:
        raise CodecError("fixed header", n, f"{n} bytes, the fixed header needs {FIXED_LEN}")
    afn, pro_type, _snap, hopcnt, pktsz, chksum, extoff, version, op_type, shtl, sstl = \
        struct.unpack_from("!HH5sBHHHBBBB", data)
    if afn != AFN_IPV4:
        raise CodecError("ar$afn", 0, f"{afn}: only IPv4 NBMA addresses (1) are supported")
    plen = PROTO_LEN.get(pro_type)
    if plen is None:
        raise CodecError("ar$pro.type", 2, f"0x{pro_type:04x}: only IPv4 (0x0800) and IPv6 (0x86dd) are supported")
    if pktsz < FIXED_LEN + MANDATORY_LEN:
        raise CodecError("ar$pktsz", 10, f"{pktsz} is shorter than the fixed header and mandatory part")
    if pktsz > n:
        raise CodecError("ar$pktsz", 10, f"claims {pktsz} bytes, {n} received")
    data = data[:pktsz]
    if version != NHRP_VERSION:
        raise CodecError("ar$op.version", 16, f"{version}: only NHRP version 1 is known")
    if not 1 <= op_type <= 8:
        raise CodecError("ar$op.type", 17, f"{op_type} is no NHRP packet type")
    if shtl not in (0, 4):
        raise CodecError("ar$shtl", 18, f"0x{shtl:02x}: only IPv4 NBMA addresses (4 or 0) are supported")
    if sstl:
        raise CodecError("ar$sstl", 19, f"0x{sstl:02x}: NBMA subaddresses are not supported")
    spl, dpl = data[20], data[21]
    if spl not in (0, plen):
        raise CodecError("src_proto_len", 20, f"{spl}: ar$pro.type's addresses are {plen} (or 0)")
    if dpl not in (0, plen):
        raise CodecError("dst_proto_len", 21, f"{dpl}: ar$pro.type's addresses are {plen} (or 0)")
    a = FIXED_LEN + MANDATORY_LEN
    b, c, d = a + shtl, a + shtl + spl, a + shtl + spl + dpl
    if extoff and not d <= extoff <= pktsz:
        raise CodecError("ar$extoff", 14, f"{extoff} is outside the extensions part ({d}..{pktsz})")
    end = extoff or pktsz
    if d > end:
        raise CodecError("ar$pktsz", 10, f"{pktsz} cuts into the addresses (which end at {d})")
    flags = int.from_bytes(data[22:24], "big")
    request_id = error_code = error_offset = traffic_code = 0
    cies: tuple[Cie, ...] = ()
    payload = b""
    if op_type == Op.ERROR_INDICATION:
        error_code, error_offset = struct.unpack_from("!HH", data, 24)
        payload = data[d:end]
    elif op_type == Op.TRAFFIC_INDICATION:
        traffic_code = int.from_bytes(data[24:26], "big")
        payload = data[d:end]
    else:
        request_id = int.from_bytes(data[24:28], "big")
        cies = _decode_cies(data, d, end, plen, "cies")
    exts, offsets = _decode_extensions(data, extoff, pktsz, plen) if extoff else ((), ())
    return Packet(op_type, _addr(data[a:b]), _addr(data[b:c]), _addr(data[c:d]), flags, request_id,
                  cies, exts, hopcnt, version, error_code, error_offset, traffic_code, payload,
                  pro_type, pktsz, extoff, chksum, checksum_ok(data), offsets)
