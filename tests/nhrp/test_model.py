"""decode(): what it reports, what it tolerates, and the Message conveniences."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import GRE, IP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from dmvpnkit.nhrp import (
    NHRP,
    DecodeError,
    Message,
    NHRPExtension,
    NHRPExtForwardTransit,
    Op,
    cie,
    decode,
    from_layer,
    registration_request,
    resolution_reply,
    traffic_indication,
)
from tests.nhrp.cases import HUB, HUB_NBMA, SPOKE, SPOKE2, SPOKE2_NBMA, SPOKE_NBMA


def _rebuilt(data: bytes, **header: int) -> bytes:
    """``data`` with header fields replaced and pktsz/checksum recomputed."""
    pkt = NHRP(data)
    pkt.pktsz = pkt.chksum = None
    for name, value in header.items():
        setattr(pkt, name, value)
    return bytes(pkt)


def _with_extensions(data: bytes, *more: Packet) -> bytes:
    pkt = NHRP(data)
    pkt.payload.extensions = [*pkt.payload.extensions, *more]
    pkt.pktsz = pkt.chksum = None
    return bytes(pkt)


REG = bytes(registration_request(SPOKE_NBMA, SPOKE, HUB, 77, holding_time=600, unique=True,
                                 extensions=[NHRPExtForwardTransit(compulsory=1)]))


def test_registration_request_fields() -> None:
    msg = decode(REG)
    assert (msg.op, msg.op_type, msg.request_id, msg.flags) == ("registration-request", 3, 77, 0x8000)
    assert (msg.src_nbma, msg.src_proto, msg.dst_proto) == (SPOKE_NBMA, SPOKE, HUB)
    assert (msg.afn, msg.pro_type, msg.version, msg.chksum_ok) == (1, 0x0800, 1, True)
    assert [(c.holding_time, c.prefix_len) for c in msg.cies] == [(600, 0xFF)]
    assert [(e.type, e.compulsory) for e in msg.extensions] == [(4, True), (0, True)]
    assert msg.summary() == ("registration-request id=77 198.51.100.11->198.51.100.1 "
                             "flags=0x8000 code=0 hold=600")


def test_op_names_cover_every_type_and_unknown_ones() -> None:
    assert [decode(_rebuilt(REG, op_type=op)).op for op in Op] == [
        "resolution-request", "resolution-reply", "registration-request", "registration-reply",
        "purge-request", "purge-reply", "error-indication", "traffic-indication"]
    unknown = decode(_rebuilt(REG, op_type=42))
    assert unknown.op == "op42" and unknown.request_id == 77 and unknown.inner


def test_bad_checksum_decodes_and_shows() -> None:
    data = bytearray(REG)
    data[12] ^= 0x01
    msg = decode(bytes(data))
    assert not msg.chksum_ok and msg.summary().endswith("BAD-CHECKSUM")


def test_trailing_link_padding_is_ignored() -> None:
    assert decode(REG + b"\x00" * 12) == decode(REG)


def test_any_bytes_like_input() -> None:
    assert decode(bytearray(REG)) == decode(memoryview(REG)) == decode(REG)


def test_from_layer_finds_nhrp_under_gre() -> None:
    frame = Ether(bytes(Ether() / IP() / GRE(key_present=1, key=1) / NHRP(REG)))
    assert from_layer(frame) == decode(REG)
    with pytest.raises(ValueError):
        from_layer(Ether() / IP())


def test_indications() -> None:
    inner = IP(src=SPOKE, dst=SPOKE2) / b"payload"
    msg = decode(bytes(traffic_indication(inner, HUB_NBMA, HUB, traffic_code=3)))
    assert (msg.op, msg.traffic_code, msg.request_id, msg.dst_proto) == ("traffic-indication", 3, 0, SPOKE2)
    assert msg.inner == bytes(inner)
    assert msg.summary().startswith("traffic-indication id=0 198.51.100.1->198.51.100.12 flags=0x0000 code=3")


def test_ipv6_and_other_address_lengths() -> None:
    pkt = resolution_reply("2001:db8::1", "2001:db8:1::1", "2001:db8:1::2", 1, "", "2001:db8:1::2")
    pkt.payload.cies[0].client_nbma = b"\x47\x00\x05"         # an NSAP prefix, say
    pkt.payload.src_nbma_sub = b"\xab"
    msg = decode(bytes(pkt))
    assert (msg.afn, msg.pro_type, msg.src_nbma, msg.src_nbma_sub) == (2, 0x86DD, "2001:db8::1", "ab")
    assert (msg.cies[0].client_nbma, msg.cies[0].client_proto) == ("470005", "2001:db8:1::2")


def test_e164_type_bit_is_kept_and_not_taken_for_length() -> None:
    msg = decode(_rebuilt(REG, shtl=0x44))
    assert (msg.shtl, msg.src_nbma) == (0x44, SPOKE_NBMA)


def test_cie_extensions_are_decoded_and_unknown_payload_kept() -> None:
    pkt = resolution_reply(SPOKE_NBMA, SPOKE, SPOKE2, 5, SPOKE2_NBMA, SPOKE2, extensions=[
        NHRPExtForwardTransit(cies=[cie(HUB_NBMA, HUB)]),
        NHRPExtension(compulsory=1, type=0x1234, value=b"\x00\x01\x02")])
    fwd, unknown, end = decode(bytes(pkt)).extensions
    assert [c.client_proto for c in fwd.cies] == [HUB]
    assert (unknown.type, unknown.compulsory, unknown.payload, unknown.cies) == (
        0x1234, True, b"\x00\x01\x02", ())
    assert end.type == 0


@pytest.mark.parametrize("mutate, field, offset", [
    (lambda d: d[:19], "sstl", 19),
    (lambda d: d[:10] + struct.pack("!H", 19) + d[12:], "pktsz", 10),
    (lambda d: d[:10] + struct.pack("!H", len(d) + 1) + d[12:], "pktsz", 10),
    (lambda d: _rebuilt(d, extoff=500), "extoff", 14),
    (lambda d: _rebuilt(d, extoff=24), "extoff", 14),
    (lambda d: _rebuilt(d, extoff=30), "extoff", 14),               # inside src_nbma
    (lambda d: _rebuilt(d, shtl=60), "extoff", 14),                 # addresses run past it
    (lambda d: _rebuilt(d, shtl=60, extoff=0), "src_nbma", 28),
    (lambda d: _rebuilt(d[:40] + d[41:], extoff=51), "cies[0]", 40),
    (lambda d: _with_extensions(d, Raw(b"\x00\x00\x00")), "extensions[2]", len(REG)),
    (lambda d: _rebuilt(d[:-4] + b"\x80\x00\x00\x09"), "extensions[1].len", len(REG) - 2),
])
def test_structural_defects_raise_with_evidence(mutate: object, field: str, offset: int) -> None:
    with pytest.raises(DecodeError) as err:
        decode(mutate(REG))  # type: ignore[operator]
    assert (err.value.field, err.value.offset) == (field, offset)
    assert str(err.value).startswith(f"NHRP field {field} at offset {offset}: ")


def test_message_is_frozen() -> None:
    msg: Message = decode(REG)
    with pytest.raises(AttributeError):
        msg.hopcnt = 3  # type: ignore[misc]
