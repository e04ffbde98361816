"""NHRP (RFC 2332, plus the DMVPN Traffic Indication and Cisco NAT extension) for scapy.

Layout on the wire, and the classes that carry it:

    NHRP                    fixed header, 20 bytes (ar$afn ... ar$sstl)
    NHRP<Type>              mandatory part of one packet type, bound by ``op_type``;
                            its trailing ``extensions`` field holds the extension TLVs
    NHRPCIE                 Client Information Entry
    NHRPExtension           extension TLV; unknown types keep their bytes in ``value``;
                            known types get the subclasses in ``EXTENSION_CLASSES``

Every length, offset and checksum field defaults to None and is computed on build;
giving it a value disables the computation, which is how malformed packets are made.
Address fields take text ("192.0.2.1", "2001:db8::1") or raw bytes and dissect to
text for 4- and 16-byte values, bytes otherwise.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from typing import Any

from scapy.compat import raw
from scapy.fields import (
    BitEnumField,
    BitField,
    ByteEnumField,
    ByteField,
    FieldLenField,
    FlagsField,
    IntField,
    PacketLenField,
    PacketListField,
    ShortEnumField,
    ShortField,
    StrFixedLenField,
    StrLenField,
    X3BytesField,
    XShortEnumField,
    XShortField,
)
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2
from scapy.packet import Packet, Raw, bind_layers
from scapy.utils import checksum

NHRP_PROTO = 0x2001             # GRE protocol type / SLL protocol of NHRP
FIXED_LEN = 20                  # fixed header
MANDATORY_LEN = 8               # src/dst proto len, flags (or code), request ID
TL_LEN_MASK = 0x3F              # ar$shtl, ar$sstl, Cli Addr T/L, Cli SAddr T/L: length bits
TL_E164 = 0x40                  # ... and the type bit: 0 = NSAP, 1 = native E.164
EXT_COMPULSORY = 0x8000
EXT_TYPE_MASK = 0x3FFF
EXPERIMENTAL_EXT_TYPE = 0x3800  # RFC 2332 5.3: 0x3800-0x3FFF are for experimental use

AFN = {1: "IPv4", 2: "IPv6"}
PRO_TYPES = {0x0800: "IPv4", 0x86DD: "IPv6"}
OP_TYPES = {1: "resolution-request", 2: "resolution-reply", 3: "registration-request",
            4: "registration-reply", 5: "purge-request", 6: "purge-reply",
            7: "error-indication", 8: "traffic-indication"}
# RFC 2332 5.2.7
ERROR_CODES = {1: "unrecognized-extension", 3: "loop-detected",
               6: "protocol-address-unreachable", 7: "protocol-error",
               8: "sdu-size-exceeded", 9: "invalid-extension",
               10: "invalid-resolution-reply", 11: "authentication-failure",
               15: "hop-count-exceeded"}
# RFC 2332 5.2.2 / 5.2.4 / 5.2.6
CIE_CODES = {0: "success", 4: "administratively-prohibited", 5: "insufficient-resources",
             12: "no-binding", 13: "binding-not-unique", 14: "already-registered"}
EXT_TYPES = {0: "end", 3: "responder-address", 4: "forward-transit-nhs",
             5: "reverse-transit-nhs", 7: "authentication", 8: "vendor-private",
             9: "cisco-nat-address"}
# 0x0002 is Cisco's NAT bit, carried by FRR and IOS in all request/reply types.
RESOLUTION_FLAGS = {0x8000: "Q", 0x4000: "A", 0x2000: "D", 0x1000: "U", 0x0800: "S",
                    0x0002: "NAT"}
REGISTRATION_FLAGS = {0x8000: "U", 0x0002: "NAT"}
PURGE_FLAGS = {0x8000: "N", 0x0002: "NAT"}


class NHRPAddrField(StrLenField):
    """An NBMA or protocol address: text for IPv4/IPv6, bytes for anything else."""

    def any2i(self, pkt: Packet | None, x: Any) -> Any:
        # Keep what the user gave (text or bytes); StrField would encode text to bytes.
        return x

    def i2m(self, pkt: Packet | None, x: Any) -> bytes:
        return self._packed(x)

    def m2i(self, pkt: Packet | None, x: bytes) -> Any:
        return str(ipaddress.ip_address(x)) if len(x) in (4, 16) else x

    def i2len(self, pkt: Packet | None, x: Any) -> int:
        return len(self._packed(x))

    def i2repr(self, pkt: Packet | None, x: Any) -> str:
        return x if isinstance(x, str) else repr(x)

    @staticmethod
    def _packed(x: Any) -> bytes:
        if x is None:
            return b""
        if isinstance(x, str):
            return ipaddress.ip_address(x).packed if x else b""
        if isinstance(x, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return x.packed
        return bytes(x)


class NHRPCIE(Packet):
    """Client Information Entry (RFC 2332 5.2.0.1)."""

    name = "NHRP CIE"
    fields_desc = [
        ByteEnumField("code", 0, CIE_CODES),
        ByteField("prefix_len", 0),
        ShortField("unused", 0),
        ShortField("mtu", 0),
        ShortField("holding_time", 0),
        FieldLenField("cli_addr_tl", None, length_of="client_nbma", fmt="B"),
        FieldLenField("cli_saddr_tl", None, length_of="client_nbma_sub", fmt="B"),
        FieldLenField("cli_proto_len", None, length_of="client_proto", fmt="B"),
        ByteField("preference", 0),
        NHRPAddrField("client_nbma", b"", length_from=lambda p: p.cli_addr_tl & TL_LEN_MASK),
        StrLenField("client_nbma_sub", b"", length_from=lambda p: p.cli_saddr_tl & TL_LEN_MASK),
        NHRPAddrField("client_proto", b"", length_from=lambda p: p.cli_proto_len),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _ext_header(ext_type: int) -> list[Any]:
    return [BitField("compulsory", 0, 1),
            BitField("u", 0, 1),        # RFC 2332 5.3: unused, must be zero
            BitEnumField("type", ext_type, 14, EXT_TYPES),
            ShortField("len", None)]


class NHRPExtension(Packet):
    """Extension TLV (RFC 2332 5.3); also the fallback for types without a class,
    keeping their bytes in ``value``. Built bare, it is of an experimental type."""

    name = "NHRP Extension"
    fields_desc = _ext_header(EXPERIMENTAL_EXT_TYPE) + [
        StrLenField("value", b"", length_from=lambda p: p.len),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if _pkt and len(_pkt) >= 2:
            ext_type = struct.unpack("!H", _pkt[:2])[0] & EXT_TYPE_MASK
            return EXTENSION_CLASSES.get(ext_type, NHRPExtension)
        return cls

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.len is None:
            p = p[:2] + struct.pack("!H", len(p) - 4) + p[4:]
        return p + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class NHRPExtEnd(NHRPExtension):
    name = "NHRP End of Extensions"
    # RFC 2332 5.3.0 has it compulsory with length 0; a value is kept if present.
    fields_desc = _ext_header(0) + [
        StrLenField("value", b"", length_from=lambda p: p.len),
    ]


def _cie_ext(ext_type: int) -> list[Any]:
    return _ext_header(ext_type) + [
        PacketListField("cies", [], NHRPCIE, length_from=lambda p: p.len),
    ]


class NHRPExtResponderAddress(NHRPExtension):
    name = "NHRP Responder Address Extension"
    fields_desc = _cie_ext(3)


class NHRPExtForwardTransit(NHRPExtension):
    name = "NHRP Forward Transit NHS Record Extension"
    fields_desc = _cie_ext(4)


class NHRPExtReverseTransit(NHRPExtension):
    name = "NHRP Reverse Transit NHS Record Extension"
    fields_desc = _cie_ext(5)


class NHRPExtAuthentication(NHRPExtension):
    """RFC 2332 5.3.4; ``auth_data`` starts with the RFC's Src Addr, which Cisco and
    FRR leave out (they send SPI 1, "plaintext", and an 8-byte password)."""

    name = "NHRP Authentication Extension"
    fields_desc = _ext_header(7) + [
        ShortField("reserved", 0),
        ShortField("spi", 1),
        StrLenField("auth_data", b"", length_from=lambda p: max(p.len - 4, 0)),
    ]


class NHRPExtVendorPrivate(NHRPExtension):
    name = "NHRP Vendor-Private Extension"
    fields_desc = _ext_header(8) + [
        X3BytesField("vendor_id", 0),
        StrLenField("data", b"", length_from=lambda p: max(p.len - 3, 0)),
    ]


class NHRPExtNATAddress(NHRPExtension):
    name = "Cisco NAT Address Extension"
    fields_desc = _cie_ext(9)


EXTENSION_CLASSES: dict[int, type[NHRPExtension]] = {
    0: NHRPExtEnd, 3: NHRPExtResponderAddress, 4: NHRPExtForwardTransit,
    5: NHRPExtReverseTransit, 7: NHRPExtAuthentication, 8: NHRPExtVendorPrivate,
    9: NHRPExtNATAddress,
}


def _fixed(pkt: Packet) -> NHRP | None:
    under = pkt.underlayer
    return under if isinstance(under, NHRP) else None


def _tl_len(pkt: Packet, field: str) -> int:
    hdr = _fixed(pkt)
    return int(hdr.getfieldval(field) or 0) & TL_LEN_MASK if hdr is not None else 0


def _records_len(pkt: Packet) -> int:
    """Bytes between the destination protocol address and the extensions: the CIE
    list, or the packet an indication carries."""
    hdr = _fixed(pkt)
    if hdr is None:
        return 0
    end: int = hdr.extoff or hdr.pktsz or 0
    used: int = (FIXED_LEN + MANDATORY_LEN + (hdr.shtl & TL_LEN_MASK) + (hdr.sstl & TL_LEN_MASK)
                 + pkt.src_proto_len + pkt.dst_proto_len)
    return max(end - used, 0)


def _proto_lens() -> list[Any]:
    return [FieldLenField("src_proto_len", None, length_of="src_proto", fmt="B"),
            FieldLenField("dst_proto_len", None, length_of="dst_proto", fmt="B")]


def _addresses() -> list[Any]:
    return [
        NHRPAddrField("src_nbma", b"", length_from=lambda p: _tl_len(p, "shtl")),
        StrLenField("src_nbma_sub", b"", length_from=lambda p: _tl_len(p, "sstl")),
        NHRPAddrField("src_proto", b"", length_from=lambda p: p.src_proto_len),
        NHRPAddrField("dst_proto", b"", length_from=lambda p: p.dst_proto_len),
    ]


def _extensions() -> PacketListField:
    # Everything after the records: the fixed header cut the packet at ar$pktsz.
    return PacketListField("extensions", [], NHRPExtension)


class NHRPBody(Packet):
    """Base of the mandatory parts; gives the fixed header the lengths it computes."""

    def nbma_lens(self) -> tuple[int, int]:
        return (self.get_field("src_nbma").i2len(self, self.src_nbma),
                len(self.src_nbma_sub or b""))

    def ext_offset(self) -> int:
        """Offset of the first extension from the fixed header, 0 without extensions."""
        if not self.extensions:
            return 0
        ext = sum(len(raw(e)) for e in self.extensions)
        return FIXED_LEN + len(self.self_build()) - ext


def _request_reply(flags: dict[int, str]) -> list[Any]:
    return _proto_lens() + [
        FlagsField("flags", 0, 16, flags),
        IntField("request_id", 0),
    ] + _addresses() + [
        PacketListField("cies", [], NHRPCIE, length_from=_records_len),
        _extensions(),
    ]


class NHRPResolutionRequest(NHRPBody):
    name = "NHRP Resolution Request"
    fields_desc = _request_reply(RESOLUTION_FLAGS)


class NHRPResolutionReply(NHRPBody):
    name = "NHRP Resolution Reply"
    fields_desc = _request_reply(RESOLUTION_FLAGS)


class NHRPRegistrationRequest(NHRPBody):
    name = "NHRP Registration Request"
    fields_desc = _request_reply(REGISTRATION_FLAGS)


class NHRPRegistrationReply(NHRPBody):
    name = "NHRP Registration Reply"
    fields_desc = _request_reply(REGISTRATION_FLAGS)


class NHRPPurgeRequest(NHRPBody):
    name = "NHRP Purge Request"
    fields_desc = _request_reply(PURGE_FLAGS)


class NHRPPurgeReply(NHRPBody):
    name = "NHRP Purge Reply"
    fields_desc = _request_reply(PURGE_FLAGS)


def _errored_packet(s: bytes, _parent: Packet | None = None) -> Packet:
    return NHRP(s)


class NHRPErrorIndication(NHRPBody):
    """RFC 2332 5.2.7: the errored packet follows the addresses."""

    name = "NHRP Error Indication"
    fields_desc = _proto_lens() + [
        XShortField("unused", 0),
        ShortEnumField("error_code", 0, ERROR_CODES),
        ShortField("error_offset", 0),
    ] + _addresses() + [
        PacketLenField("errored_packet", None, _errored_packet,  # type: ignore[arg-type]
                       length_from=_records_len),
        _extensions(),
    ]


def _triggering_packet(s: bytes, _parent: Packet | None = None) -> Packet:
    hdr = _fixed(_parent) if _parent is not None else None
    cls: Callable[[bytes], Packet] = {0x0800: IP, 0x86DD: IPv6}.get(
        hdr.pro_type if hdr is not None else 0, Raw)
    return cls(s)


class NHRPTrafficIndication(NHRPBody):
    """Cisco/FRR DMVPN redirect (type 8). FRR fills the header as for an Error
    Indication (nhrp_protocol.h: the code sits where the error code does) and
    carries the packet that triggered it after the addresses."""

    name = "NHRP Traffic Indication"
    fields_desc = _proto_lens() + [
        XShortField("unused", 0),
        ShortField("traffic_code", 0),
        XShortField("unused2", 0),
    ] + _addresses() + [
        PacketLenField("packet", None, _triggering_packet,  # type: ignore[arg-type]
                       length_from=_records_len),
        _extensions(),
    ]


BODY_CLASSES: dict[int, type[NHRPBody]] = {
    1: NHRPResolutionRequest, 2: NHRPResolutionReply, 3: NHRPRegistrationRequest,
    4: NHRPRegistrationReply, 5: NHRPPurgeRequest, 6: NHRPPurgeReply,
    7: NHRPErrorIndication, 8: NHRPTrafficIndication,
}


def _patch(p: bytes, at: int, fmt: str, value: int) -> bytes:
    return p[:at] + struct.pack(fmt, value) + p[at + struct.calcsize(fmt):]


class NHRP(Packet):
    """NHRP fixed header (RFC 2332 5.2.0.1)."""

    name = "NHRP"
    fields_desc = [
        ShortEnumField("afn", None, AFN),
        XShortEnumField("pro_type", None, PRO_TYPES),
        StrFixedLenField("pro_snap", b"\x00" * 5, 5),
        ByteField("hopcnt", 64),
        ShortField("pktsz", None),
        XShortField("chksum", None),
        ShortField("extoff", None),
        ByteField("version", 1),
        ByteEnumField("op_type", 1, OP_TYPES),
        ByteField("shtl", None),
        ByteField("sstl", None),
    ]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        body = self.payload if isinstance(self.payload, NHRPBody) else None
        nbma, sub = body.nbma_lens() if body is not None else (0, 0)
        if self.afn is None:
            p = _patch(p, 0, "!H", 2 if nbma == 16 else 1)
        if self.pro_type is None:
            proto = body.get_field("src_proto").i2len(body, body.src_proto) if body is not None else 4
            p = _patch(p, 2, "!H", 0x86DD if proto == 16 else 0x0800)
        if self.extoff is None:
            p = _patch(p, 14, "!H", body.ext_offset() if body is not None else 0)
        if self.shtl is None:
            p = _patch(p, 18, "B", nbma)
        if self.sstl is None:
            p = _patch(p, 19, "B", sub)
        pkt = p + pay
        if self.pktsz is None:
            pkt = _patch(pkt, 10, "!H", len(pkt))
        if self.chksum is None:
            size = struct.unpack("!H", pkt[10:12])[0]
            pkt = _patch(pkt, 12, "!H", checksum(pkt[:size] if size <= len(pkt) else pkt))
        return pkt

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        # ar$pktsz bounds the packet; what follows (link-layer padding) is not NHRP.
        if self.pktsz is not None and self.pktsz >= FIXED_LEN:
            cut = self.pktsz - FIXED_LEN
            return s[:cut], s[cut:]
        return s, b""

    def mysummary(self) -> str:
        return self.sprintf("NHRP %op_type%")


for _op, _cls in BODY_CLASSES.items():
    bind_layers(NHRP, _cls, op_type=_op)
bind_layers(GRE, NHRP, proto=NHRP_PROTO)
bind_layers(CookedLinux, NHRP, proto=NHRP_PROTO)
bind_layers(CookedLinuxV2, NHRP, proto=NHRP_PROTO)
