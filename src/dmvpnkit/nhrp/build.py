"""Builders for conformant NHRP packets, and deliberate malformations of them.

Builders return the NHRP layer (fixed header and mandatory part); ``encapsulate``
puts it in Ether/IP/GRE for a pcap or a raw socket. Defaults follow what DMVPN
peers (FRR, IOS) send: CIEs of Registration Requests carry no addresses (the
mandatory part names the registering client), MTU 0 means "the default MTU"
(RFC 2332 5.2.0.1). Given extensions are closed with a compulsory End extension.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Packet, Raw

from dmvpnkit.nhrp.layer import (
    EXPERIMENTAL_EXT_TYPE,
    NHRP,
    NHRPCIE,
    NHRPAddrField,
    NHRPBody,
    NHRPErrorIndication,
    NHRPExtEnd,
    NHRPExtension,
    NHRPExtForwardTransit,
    NHRPPurgeReply,
    NHRPPurgeRequest,
    NHRPRegistrationReply,
    NHRPRegistrationRequest,
    NHRPResolutionReply,
    NHRPResolutionRequest,
    NHRPTrafficIndication,
)


def _host_prefix(proto: str) -> int:
    return 8 * len(NHRPAddrField._packed(proto))


def cie(client_nbma: str = "", client_proto: str = "", *, code: int = 0,
        prefix_len: int | None = None, mtu: int = 0, holding_time: int = 0,
        preference: int = 0, client_nbma_sub: bytes = b"") -> NHRPCIE:
    """A CIE; ``prefix_len`` defaults to a host prefix for ``client_proto``."""
    return NHRPCIE(code=code,
                   prefix_len=_host_prefix(client_proto) if prefix_len is None else prefix_len,
                   mtu=mtu, holding_time=holding_time, preference=preference,
                   client_nbma=client_nbma, client_nbma_sub=client_nbma_sub,
                   client_proto=client_proto)


def _extensions(extensions: Sequence[Packet]) -> list[Packet]:
    exts = list(extensions)
    if exts and not isinstance(exts[-1], NHRPExtEnd):
        exts.append(NHRPExtEnd(compulsory=1))
    return exts


def _packet(body: NHRPBody, hopcnt: int, extensions: Sequence[Packet]) -> NHRP:
    body.extensions = _extensions(extensions)
    return NHRP(hopcnt=hopcnt) / body


def registration_request(src_nbma: str, src_proto: str, dst_proto: str, request_id: int,
                         holding_time: int = 7200, unique: bool = False, *, nat: bool = False,
                         mtu: int = 0, hopcnt: int = 1,
                         extensions: Sequence[Packet] = ()) -> NHRP:
    """RFC 2332 5.2.3; with U set the CIE prefix length is 0xFF (as FRR and IOS send it)."""
    flags = (0x8000 if unique else 0) | (0x0002 if nat else 0)
    entry = cie(prefix_len=0xFF if unique else _host_prefix(src_proto), mtu=mtu,
                holding_time=holding_time)
    return _packet(NHRPRegistrationRequest(flags=flags, request_id=request_id,
                                           src_nbma=src_nbma, src_proto=src_proto,
                                           dst_proto=dst_proto, cies=[entry]),
                   hopcnt, extensions)


def registration_reply(src_nbma: str, src_proto: str, dst_proto: str, request_id: int,
                       holding_time: int = 7200, code: int = 0, unique: bool = False, *,
                       nat: bool = False, mtu: int = 0, hopcnt: int = 64,
                       extensions: Sequence[Packet] = ()) -> NHRP:
    """RFC 2332 5.2.4: the request with type 4 and the CIE code filled in, so the
    addresses are the request's (``src_*`` is the registering client)."""
    flags = (0x8000 if unique else 0) | (0x0002 if nat else 0)
    entry = cie(code=code, prefix_len=0xFF if unique else _host_prefix(src_proto), mtu=mtu,
                holding_time=holding_time)
    return _packet(NHRPRegistrationReply(flags=flags, request_id=request_id,
                                         src_nbma=src_nbma, src_proto=src_proto,
                                         dst_proto=dst_proto, cies=[entry]),
                   hopcnt, extensions)


def resolution_request(src_nbma: str, src_proto: str, dst_proto: str, request_id: int, *,
                       flags: int | str = "Q", holding_time: int = 7200, mtu: int = 0,
                       hopcnt: int = 64, extensions: Sequence[Packet] = ()) -> NHRP:
    """RFC 2332 5.2.1; the CIE offers the requester's own binding for caching."""
    return _packet(NHRPResolutionRequest(flags=flags, request_id=request_id,
                                         src_nbma=src_nbma, src_proto=src_proto,
                                         dst_proto=dst_proto,
                                         cies=[cie(prefix_len=0, mtu=mtu,
                                                   holding_time=holding_time)]),
                   hopcnt, extensions)


def resolution_reply(src_nbma: str, src_proto: str, dst_proto: str, request_id: int,
                     client_nbma: str, client_proto: str, *, code: int = 0,
                     prefix_len: int | None = None, flags: int | str = "Q+A+S",
                     holding_time: int = 7200, mtu: int = 0, hopcnt: int = 64,
                     extensions: Sequence[Packet] = ()) -> NHRP:
    """RFC 2332 5.2.2: the request's addresses, the answer in the CIE."""
    answer = cie(client_nbma, client_proto, code=code, prefix_len=prefix_len, mtu=mtu,
                 holding_time=holding_time)
    return _packet(NHRPResolutionReply(flags=flags, request_id=request_id,
                                       src_nbma=src_nbma, src_proto=src_proto,
                                       dst_proto=dst_proto, cies=[answer]),
                   hopcnt, extensions)


def purge_request(src_nbma: str, src_proto: str, dst_proto: str, request_id: int,
                  purged: Sequence[str], *, no_reply: bool = False, hopcnt: int = 64,
                  extensions: Sequence[Packet] = ()) -> NHRP:
    """RFC 2332 5.2.5: one CIE per protocol address to purge."""
    return _packet(NHRPPurgeRequest(flags=0x8000 if no_reply else 0, request_id=request_id,
                                    src_nbma=src_nbma, src_proto=src_proto,
                                    dst_proto=dst_proto,
                                    cies=[cie(client_proto=a) for a in purged]),
                   hopcnt, extensions)


def purge_reply(src_nbma: str, src_proto: str, dst_proto: str, request_id: int,
                purged: Sequence[str], *, hopcnt: int = 64,
                extensions: Sequence[Packet] = ()) -> NHRP:
    """RFC 2332 5.2.6: the request with type 6."""
    return _packet(NHRPPurgeReply(request_id=request_id, src_nbma=src_nbma,
                                  src_proto=src_proto, dst_proto=dst_proto,
                                  cies=[cie(client_proto=a) for a in purged]),
                   hopcnt, extensions)


def error_indication(errored: Packet | bytes, src_nbma: str, src_proto: str, dst_proto: str,
                     code: int, offset: int = 0, *, hopcnt: int = 64) -> NHRP:
    """RFC 2332 5.2.7: ``errored`` is the offending NHRP packet (its fixed header
    first); ``offset`` points into it. Extensions are not allowed here."""
    inner = NHRP(bytes(errored)) if isinstance(errored, bytes) else errored
    return NHRP(hopcnt=hopcnt) / NHRPErrorIndication(
        error_code=code, error_offset=offset, src_nbma=src_nbma, src_proto=src_proto,
        dst_proto=dst_proto, errored_packet=inner)


def traffic_indication(inner_ip_packet: Packet, src_nbma: str, src_proto: str,
                       dst_proto: str | None = None, *, traffic_code: int = 0,
                       hopcnt: int = 1, extensions: Sequence[Packet] = ()) -> NHRP:
    """DMVPN redirect: ``src_*`` is the hub that forwarded the packet, ``dst_proto``
    the packet's destination (as FRR sends it)."""
    dst = dst_proto if dst_proto is not None else inner_ip_packet.dst
    return _packet(NHRPTrafficIndication(traffic_code=traffic_code, src_nbma=src_nbma,
                                         src_proto=src_proto, dst_proto=dst,
                                         packet=inner_ip_packet),
                   hopcnt, extensions)


def encapsulate(nhrp: Packet, nbma_src: str, nbma_dst: str, *, key: int | None = None,
                src_mac: str = "02:00:00:00:00:01", dst_mac: str = "02:00:00:00:00:02") -> Packet:
    """Ether/IP(v6)/GRE around ``nhrp``, as it crosses the NBMA network. The MACs are
    fixed so that building for a pcap does not try to resolve them."""
    ip = IPv6(src=nbma_src, dst=nbma_dst) if ":" in nbma_src else IP(src=nbma_src, dst=nbma_dst)
    gre = GRE(key_present=1, key=key) if key is not None else GRE()
    return Ether(src=src_mac, dst=dst_mac) / ip / gre / nhrp


class Malformation(enum.Enum):
    """One defect each; ``malform`` recomputes everything else (checksum included)."""

    BAD_CHECKSUM = "bad-checksum"
    HOPCNT_ZERO = "hopcnt-zero"
    EXTOFF_PAST_PKTSZ = "extoff-past-pktsz"
    TRUNCATED_CIE = "truncated-cie"
    UNKNOWN_COMPULSORY_EXT = "unknown-compulsory-ext"
    UNKNOWN_NONCOMPULSORY_EXT = "unknown-noncompulsory-ext"
    WRONG_VERSION = "wrong-version"
    TRANSIT_LOOP = "transit-loop"


def _insert_extension(body: NHRPBody, ext: Packet) -> None:
    exts = list(body.extensions)
    at = next((i for i, e in enumerate(exts) if isinstance(e, NHRPExtEnd)), len(exts))
    exts.insert(at, ext)
    body.extensions = _extensions(exts)


def malform(pkt: Packet, m: Malformation, **kw: Any) -> bytes:
    """The bytes of ``pkt``'s NHRP layer with exactly the defect ``m``.

    Keywords: BAD_CHECKSUM ``chksum`` (default: the right one with its low byte
    flipped); EXTOFF_PAST_PKTSZ ``past`` (bytes beyond pktsz, default 4);
    TRUNCATED_CIE ``cut`` (bytes taken off the last mandatory-part CIE, default 1);
    UNKNOWN_*_EXT ``ext_type`` (default EXPERIMENTAL_EXT_TYPE) and ``value``; WRONG_VERSION
    ``version`` (default 2); TRANSIT_LOOP ``receiver_proto`` (required) and
    ``receiver_nbma``: the receiver's own addresses, put in a Forward Transit NHS
    Record CIE.
    """
    hdr = pkt.getlayer(NHRP)
    if hdr is None:
        raise ValueError(f"no NHRP layer in {pkt.summary()}")
    out = hdr.copy()
    out.pktsz = out.extoff = out.chksum = None
    body = out.payload if isinstance(out.payload, NHRPBody) else None

    if m is Malformation.BAD_CHECKSUM:
        good = NHRP(bytes(out)).chksum
        # Any change below 0xFFFF keeps the one's complement sum off all-ones.
        out.chksum = kw.get("chksum", good ^ 0x00FF)
    elif m is Malformation.HOPCNT_ZERO:
        out.hopcnt = 0
    elif m is Malformation.WRONG_VERSION:
        out.version = kw.get("version", 2)
    elif m is Malformation.EXTOFF_PAST_PKTSZ:
        out.extoff = len(bytes(out)) + kw.get("past", 4)
    elif body is None:
        raise ValueError(f"{m.name} needs an NHRP packet with a mandatory part")
    elif m is Malformation.TRUNCATED_CIE:
        cies = list(getattr(body, "cies", []))
        if not cies:
            raise ValueError("TRUNCATED_CIE needs a packet with a CIE in its mandatory part")
        last = bytes(cies[-1])
        cies[-1] = Raw(last[:len(last) - kw.get("cut", 1)])
        body.cies = cies
    elif m in (Malformation.UNKNOWN_COMPULSORY_EXT, Malformation.UNKNOWN_NONCOMPULSORY_EXT):
        _insert_extension(body, NHRPExtension(
            compulsory=int(m is Malformation.UNKNOWN_COMPULSORY_EXT),
            type=kw.get("ext_type", EXPERIMENTAL_EXT_TYPE), value=kw.get("value", b"\x00" * 4)))
    elif m is Malformation.TRANSIT_LOOP:
        loop = cie(kw.get("receiver_nbma", ""), kw["receiver_proto"])
        fwd = next((e for e in body.extensions if isinstance(e, NHRPExtForwardTransit)), None)
        if fwd is None:
            _insert_extension(body, NHRPExtForwardTransit(compulsory=1, cies=[loop]))
        else:
            fwd.cies = list(fwd.cies) + [loop]
            fwd.len = None
    return bytes(out)
