"""Hypothesis strategies for well-formed NHRP packets of every type, with every
extension type (and unknown ones), IPv4/IPv6/other-length addresses, subaddresses,
E.164 type bits and several CIEs."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from dmvpnkit.nhrp.layer import (
    BODY_CLASSES,
    EXTENSION_CLASSES,
    NHRP,
    NHRPCIE,
    NHRPExtAuthentication,
    NHRPExtEnd,
    NHRPExtension,
    NHRPExtVendorPrivate,
)

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
# Text for 4/16 bytes, raw bytes for other lengths (ATM NSAPs, MACs, nothing).
other = st.binary(max_size=20).filter(lambda b: len(b) not in (4, 16))
address = st.one_of(ipv4, ipv6, other)
subaddress = st.one_of(st.just(b""), st.binary(min_size=1, max_size=20))


def _length(addr: Any) -> int:
    if isinstance(addr, str):
        return len(ip_address(addr).packed) if addr else 0
    return len(addr)


@st.composite
def type_length(draw: st.DrawFn, addr: Any) -> int | None:
    """None (computed) or the explicit byte, possibly with the E.164 type bit."""
    if draw(st.booleans()):
        return None
    return (0x40 if draw(st.booleans()) else 0) | _length(addr)


@st.composite
def cies(draw: st.DrawFn, family: st.SearchStrategy[Any]) -> NHRPCIE:
    nbma, sub = draw(st.one_of(st.just(""), address)), draw(subaddress)
    return NHRPCIE(code=draw(u8), prefix_len=draw(u8), unused=draw(u16), mtu=draw(u16),
                   holding_time=draw(u16), preference=draw(u8),
                   client_nbma=nbma, cli_addr_tl=draw(type_length(nbma)),
                   client_nbma_sub=sub, cli_saddr_tl=draw(type_length(sub)),
                   client_proto=draw(st.one_of(st.just(""), family)))


UNKNOWN_TYPES = st.integers(0, 0x3FFF).filter(lambda t: t not in EXTENSION_CLASSES)


@st.composite
def extensions(draw: st.DrawFn, family: st.SearchStrategy[Any]) -> Packet:
    common: dict[str, Any] = {"compulsory": draw(st.integers(0, 1)), "u": draw(st.integers(0, 1))}
    kind = draw(st.sampled_from([*EXTENSION_CLASSES, -1]))     # -1: a type without a class
    if kind < 0:
        return NHRPExtension(type=draw(UNKNOWN_TYPES), value=draw(st.binary(max_size=24)), **common)
    cls = EXTENSION_CLASSES[kind]
    if cls is NHRPExtEnd:
        return cls(**common)
    if cls is NHRPExtAuthentication:
        return cls(reserved=draw(u16), spi=draw(u16), auth_data=draw(st.binary(max_size=24)), **common)
    if cls is NHRPExtVendorPrivate:
        return cls(vendor_id=draw(st.integers(0, 0xFFFFFF)), data=draw(st.binary(max_size=12)),
                   **common)
    return cls(cies=draw(st.lists(cies(family), max_size=2)), **common)


@st.composite
def inner_ip(draw: st.DrawFn, v6: bool) -> Packet:
    if v6:
        return IPv6(src=draw(ipv6), dst=draw(ipv6), hlim=draw(u8)) / UDP(sport=draw(u16), dport=53)
    return IP(src=draw(ipv4), dst=draw(ipv4), ttl=draw(u8), id=draw(u16)) / ICMP(seq=draw(u16))


@st.composite
def packets(draw: st.DrawFn, ops: tuple[int, ...] = tuple(BODY_CLASSES), depth: int = 1) -> NHRP:
    """An NHRP packet whose lengths, offsets and checksum are left to the build."""
    op = draw(st.sampled_from(ops))
    v6 = draw(st.booleans())
    family = ipv6 if v6 else ipv4
    nbma, sub = draw(address), draw(subaddress)
    fields: dict[str, Any] = {
        "src_nbma": nbma, "src_nbma_sub": sub,
        "src_proto": draw(st.one_of(family, st.just(""))), "dst_proto": draw(family),
        "extensions": draw(st.lists(extensions(family), max_size=4)),
    }
    if op == 7:
        inner = draw(packets(ops=(1, 2, 3, 4, 5, 6), depth=0)) if depth else None
        fields.update(unused=draw(u16), error_code=draw(u16), error_offset=draw(u16),
                      errored_packet=inner)
    elif op == 8:
        fields.update(unused=draw(u16), traffic_code=draw(u16), unused2=draw(u16),
                      packet=draw(inner_ip(v6)))
    else:
        fields.update(flags=draw(u16), request_id=draw(u32),
                      cies=draw(st.lists(cies(family), max_size=3)))
    header: dict[str, Any] = {"hopcnt": draw(u8), "version": draw(st.sampled_from([1, 1, 1, 0, 2, 255])),
              "pro_snap": draw(st.one_of(st.just(b"\0" * 5), st.binary(min_size=5, max_size=5))),
              "shtl": draw(type_length(nbma)), "sstl": draw(type_length(sub))}
    # The triggering packet is dissected by ar$pro.type, so it must match.
    header["pro_type"] = 0x86DD if v6 else 0x0800
    return NHRP(**header) / BODY_CLASSES[op](**fields)
