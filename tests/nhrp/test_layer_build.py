"""The scapy layer's bindings and computed fields, the builders, and malform()."""

from __future__ import annotations

import dataclasses

import pytest
from scapy.layers.inet import GRE, ICMP, IP
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether
from scapy.packet import Packet

from dmvpnkit.nhrp import (
    EXTENSION_CLASSES,
    NHRP,
    DecodeError,
    Malformation,
    Message,
    NHRPExtension,
    NHRPExtForwardTransit,
    NHRPRegistrationRequest,
    NHRPTrafficIndication,
    decode,
    encapsulate,
    error_indication,
    malform,
    registration_request,
    traffic_indication,
)
from tests.nhrp import cases

REG = registration_request(cases.SPOKE_NBMA, cases.SPOKE, cases.HUB, 9, unique=True,
                           extensions=[NHRPExtForwardTransit(compulsory=1)])


@pytest.mark.parametrize("outer", [
    Ether() / IP(src=cases.SPOKE_NBMA, dst=cases.HUB_NBMA) / GRE(key_present=1, key=0x2a),
    Ether() / IP() / GRE(),
    CookedLinux(proto=0x2001),          # tcpdump -i any on the GRE interface
    CookedLinuxV2(proto=0x2001),
], ids=["ether-ip-gre-key", "ether-ip-gre", "sll", "sll2"])
def test_dissects_under_every_link_layer(outer: Packet) -> None:
    frame = outer / REG
    again = type(outer)(bytes(frame))[NHRP]
    assert isinstance(again.payload, NHRPRegistrationRequest)
    assert bytes(again) == bytes(REG)
    if GRE in frame:
        assert frame[GRE].proto == 0x2001


def test_lengths_offsets_and_checksum_are_computed() -> None:
    data = bytes(REG)
    msg = decode(data)
    assert (msg.pktsz, msg.shtl, msg.sstl, msg.chksum_ok) == (len(data), 4, 0, True)
    assert msg.extoff == len(data) - 8                # two 4-byte extension headers
    assert decode(bytes(registration_request(cases.SPOKE_NBMA, cases.SPOKE, cases.HUB, 9))).extoff == 0


def test_explicit_values_are_kept() -> None:
    pkt = REG.copy()
    pkt.pktsz, pkt.extoff, pkt.chksum, pkt.shtl, pkt.afn = 999, 7, 0x1234, 0x44, 5
    pkt[NHRPRegistrationRequest].src_proto_len = 3
    data = bytes(pkt)
    assert (data[0:2], data[10:12], data[12:14], data[14:16], data[18], data[20]) == (
        b"\x00\x05", b"\x03\xe7", b"\x12\x34", b"\x00\x07", 0x44, 3)


def test_extension_table_and_fallback() -> None:
    for ext_type, cls in EXTENSION_CLASSES.items():
        ext = cls(compulsory=1)
        assert ext.type == ext_type
        assert type(NHRPExtension(bytes(ext))) is cls
    unknown = NHRPExtension(bytes(NHRPExtension(type=0x2F00, value=b"\x01\x02\x03")))
    assert (type(unknown), unknown.type, unknown.value) == (NHRPExtension, 0x2F00, b"\x01\x02\x03")


def test_builders_give_conformant_packets() -> None:
    for name, pkt in cases.builder_cases().items():
        msg = decode(bytes(pkt))
        assert msg.chksum_ok and msg.version == 1, name
        if msg.extensions:
            assert (msg.extensions[-1].type, msg.extensions[-1].compulsory) == (0, True), name
    reg = decode(bytes(REG))
    assert (reg.flags, reg.cies[0].prefix_len) == (0x8000, 0xFF)   # U set: prefix 0xFF


def test_indication_builders_carry_their_packet() -> None:
    inner = IP(src=cases.SPOKE, dst=cases.SPOKE2) / ICMP()
    ti = NHRP(bytes(traffic_indication(inner, cases.HUB_NBMA, cases.HUB)))
    assert ti[NHRPTrafficIndication].dst_proto == cases.SPOKE2
    assert bytes(ti[NHRPTrafficIndication].packet) == bytes(inner)
    ei = decode(bytes(error_indication(bytes(REG), cases.HUB_NBMA, cases.HUB, cases.SPOKE, 3, 20)))
    assert (ei.error_code, ei.error_offset, decode(ei.inner)) == (3, 20, decode(bytes(REG)))


def test_encapsulate() -> None:
    frame = Ether(bytes(encapsulate(REG, cases.SPOKE_NBMA, cases.HUB_NBMA, key=7)))
    assert (frame[IP].src, frame[IP].dst, frame[GRE].key) == (cases.SPOKE_NBMA, cases.HUB_NBMA, 7)


def _differences(a: Message, b: Message) -> set[str]:
    return {f.name for f in dataclasses.fields(Message) if getattr(a, f.name) != getattr(b, f.name)}


@pytest.mark.parametrize("m, changed", [
    (Malformation.BAD_CHECKSUM, {"chksum", "chksum_ok"}),
    (Malformation.HOPCNT_ZERO, {"hopcnt", "chksum"}),
    (Malformation.WRONG_VERSION, {"version", "chksum"}),
    (Malformation.UNKNOWN_COMPULSORY_EXT, {"extensions", "pktsz", "chksum"}),
    (Malformation.UNKNOWN_NONCOMPULSORY_EXT, {"extensions", "pktsz", "chksum"}),
    (Malformation.TRANSIT_LOOP, {"extensions", "pktsz", "chksum"}),
])
def test_each_malformation_is_one_defect(m: Malformation, changed: set[str]) -> None:
    good = decode(bytes(REG))
    bad = decode(malform(REG, m, receiver_proto=cases.HUB))
    assert _differences(good, bad) == changed
    assert bad.chksum_ok == (m is not Malformation.BAD_CHECKSUM)
    if "extensions" in changed:
        (added,) = set(bad.extensions) - set(good.extensions)
        assert bad.extensions[-1] == good.extensions[-1]          # End stays last
        assert (added.type, added.compulsory) == {
            Malformation.UNKNOWN_COMPULSORY_EXT: (0x3800, True),
            Malformation.UNKNOWN_NONCOMPULSORY_EXT: (0x3800, False),
            Malformation.TRANSIT_LOOP: (4, True)}[m]


def test_malformations_that_break_the_structure() -> None:
    data = bytes(REG)
    past = malform(REG, Malformation.EXTOFF_PAST_PKTSZ, past=10)
    assert {i for i in range(len(data)) if data[i] != past[i]} <= {12, 13, 14, 15}  # chksum, extoff
    assert int.from_bytes(past[14:16], "big") == len(data) + 10
    with pytest.raises(DecodeError, match="extoff"):
        decode(past)
    truncated = malform(REG, Malformation.TRUNCATED_CIE, cut=2)
    assert len(truncated) == len(data) - 2
    with pytest.raises(DecodeError, match=r"cies\[0\]"):
        decode(truncated)


def test_malform_accepts_a_whole_frame_and_leaves_it_alone() -> None:
    frame = encapsulate(REG, cases.SPOKE_NBMA, cases.HUB_NBMA)
    before = bytes(frame)
    assert decode(malform(frame, Malformation.HOPCNT_ZERO)).hopcnt == 0
    assert bytes(frame) == before
    with pytest.raises(ValueError):
        malform(IP(), Malformation.HOPCNT_ZERO)
