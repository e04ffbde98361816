"""Builder packets for the oracle and garbage tests: every packet type, every
extension type, IPv4 and IPv6, and every Malformation (documentation addresses)."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from dmvpnkit.nhrp import (
    NHRP,
    Malformation,
    NHRPExtAuthentication,
    NHRPExtension,
    NHRPExtForwardTransit,
    NHRPExtNATAddress,
    NHRPExtResponderAddress,
    NHRPExtReverseTransit,
    NHRPExtVendorPrivate,
    cie,
    error_indication,
    malform,
    purge_reply,
    purge_request,
    registration_reply,
    registration_request,
    resolution_reply,
    resolution_request,
    traffic_indication,
)

SPOKE_NBMA, HUB_NBMA, SPOKE2_NBMA = "192.0.2.11", "192.0.2.1", "192.0.2.12"
SPOKE, HUB, SPOKE2 = "198.51.100.11", "198.51.100.1", "198.51.100.12"
SPOKE_NBMA6, HUB_NBMA6 = "2001:db8::11", "2001:db8::1"
SPOKE6, HUB6, SPOKE26 = "2001:db8:100::11", "2001:db8:100::1", "2001:db8:100::12"
CISCO_AUTH = b"dmvpn\x00\x00\x00"     # Cisco/FRR: SPI 1 (plaintext) and an 8-byte secret


def _request_exts(nat_nbma: str, nat_proto: str) -> list[Packet]:
    """What FRR puts in its requests: empty transit records and responder address,
    the Cisco NAT extension naming the NHS, and an authentication extension."""
    return [NHRPExtForwardTransit(compulsory=1), NHRPExtReverseTransit(compulsory=1),
            NHRPExtResponderAddress(compulsory=1),
            NHRPExtNATAddress(cies=[cie(nat_nbma, nat_proto, prefix_len=32)]),
            NHRPExtAuthentication(compulsory=1, auth_data=CISCO_AUTH)]


def _with_subaddress(pkt: NHRP) -> NHRP:
    pkt.payload.src_nbma_sub = b"\x0a\x0b\x0c"
    return pkt


def builder_cases() -> dict[str, NHRP]:
    reg = registration_request(SPOKE_NBMA, SPOKE, HUB, 0x101, unique=True, nat=True, mtu=1400,
                               extensions=_request_exts(HUB_NBMA, HUB))
    redirect = IP(src=SPOKE, dst=SPOKE2) / ICMP(id=7, seq=1)
    return {
        "registration-request": reg,
        "registration-reply": registration_reply(
            SPOKE_NBMA, SPOKE, HUB, 0x101, code=0, unique=True, nat=True,
            extensions=[NHRPExtResponderAddress(compulsory=1, cies=[cie(HUB_NBMA, HUB, holding_time=7200)]),
                        NHRPExtForwardTransit(compulsory=1),
                        NHRPExtReverseTransit(compulsory=1,
                                              cies=[cie(HUB_NBMA, HUB, holding_time=7200, mtu=1400)])]),
        "registration-refused": registration_reply(SPOKE_NBMA, SPOKE, HUB, 0x102, code=14),
        "resolution-request": resolution_request(
            SPOKE_NBMA, SPOKE, SPOKE2, 0x201, flags="Q+NAT", extensions=_request_exts(HUB_NBMA, HUB)),
        "resolution-reply": resolution_reply(
            SPOKE_NBMA, SPOKE, SPOKE2, 0x201, SPOKE2_NBMA, SPOKE2, prefix_len=24,
            extensions=[NHRPExtResponderAddress(compulsory=1, cies=[cie(SPOKE2_NBMA, SPOKE2)]),
                        NHRPExtVendorPrivate(vendor_id=0x00000C, data=b"\x01\x02"),
                        NHRPExtension(type=0x3801, value=b"kept intact")]),
        "resolution-nak": resolution_reply(SPOKE_NBMA, SPOKE, SPOKE2, 0x202, "", SPOKE2,
                                           code=12, flags=0),
        "purge-request": purge_request(HUB_NBMA, HUB, SPOKE, 0x301, [SPOKE2, "198.51.100.13"],
                                       extensions=[NHRPExtForwardTransit(compulsory=1)]),
        "purge-reply": purge_reply(HUB_NBMA, HUB, SPOKE, 0x301, [SPOKE2]),
        "error-indication": error_indication(reg, HUB_NBMA, HUB, SPOKE, code=3, offset=60),
        "traffic-indication": traffic_indication(redirect, HUB_NBMA, HUB),
        "source-subaddress": _with_subaddress(registration_request(SPOKE_NBMA, SPOKE, HUB, 0x103)),
        "resolution-request-ipv6": resolution_request(
            SPOKE_NBMA6, SPOKE6, SPOKE26, 0x601,
            extensions=[NHRPExtForwardTransit(compulsory=1, cies=[cie(HUB_NBMA6, HUB6)]),
                        NHRPExtAuthentication(compulsory=1, auth_data=CISCO_AUTH)]),
        "registration-request-ipv6-over-ipv4": registration_request(
            SPOKE_NBMA, SPOKE6, HUB6, 0x602, extensions=[NHRPExtNATAddress(cies=[cie(HUB_NBMA, HUB6)])]),
        "traffic-indication-ipv6": traffic_indication(
            IPv6(src=SPOKE6, dst=SPOKE26) / UDP(sport=5000, dport=53), HUB_NBMA6, HUB6),
    }


def malformed_cases() -> dict[Malformation, bytes]:
    """Each Malformation on a packet that shows it; TRUNCATED_CIE's CIE ends the
    packet so that Wireshark, which does not bound CIEs by their list, notices."""
    reg = registration_request(SPOKE_NBMA, SPOKE, HUB, 0x401, unique=True, nat=True,
                               extensions=_request_exts(HUB_NBMA, HUB))
    reply = resolution_reply(SPOKE_NBMA, SPOKE, SPOKE2, 0x402, SPOKE2_NBMA, SPOKE2)
    return {m: malform(reply if m is Malformation.TRUNCATED_CIE else reg, m, receiver_proto=HUB,
                       receiver_nbma=HUB_NBMA)
            for m in Malformation}
