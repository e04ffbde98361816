"""nhrpd's own codec: round trips, checksums, and the field/offset of every refusal."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.codec import CodecError, Packet

from .strategies import packets


@settings(max_examples=300, deadline=None)
@given(packets())
def test_round_trip(p: Packet) -> None:
    data = codec.encode(p)
    q = codec.decode(data)
    assert q == p
    assert q.chksum_ok and q.pktsz == len(data)
    assert q.extoff == (0 if not p.extensions else q.ext_offsets[0])
    assert codec.encode(q) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_decode_raises_only_codec_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except CodecError as e:
        assert 0 <= e.offset < max(len(data), 20), e
        assert e.field


@settings(max_examples=300, deadline=None)
@given(packets(), st.data())
def test_decode_of_damaged_packets_raises_only_codec_error(p: Packet, data: st.DataObject) -> None:
    raw = bytearray(codec.encode(p))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(CodecError):
        codec.decode(bytes(raw[:cut]))


def test_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum (one's complement) to ddf2.
    assert codec.checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF
    # Odd length: padded with a zero byte (5.1).
    assert codec.checksum(b"\x01") == codec.checksum(b"\x01\x00")


def test_encode_fills_in_lengths_and_checksum() -> None:
    p = Packet(codec.Op.REGISTRATION_REQUEST, "172.16.0.11", "10.255.0.11", "10.255.0.1", 0x8002, 7,
               (codec.Cie(0, 255, 0, 60),), (codec.ResponderAddress(), codec.End()), hopcnt=1)
    data = codec.encode(p)
    afn, pro, hop, pktsz, _chk, extoff, version, op, shtl, sstl = struct.unpack_from("!HH5xBHHHBBBB", data)
    assert (afn, pro, hop, version, op, shtl, sstl) == (1, 0x0800, 1, 1, 3, 4, 0)
    assert pktsz == len(data) == 20 + 8 + 12 + 12 + 4 + 4
    assert extoff == 20 + 8 + 12 + 12
    assert codec.checksum_ok(data)


def test_encode_refuses_what_has_no_wire_form() -> None:
    with pytest.raises(codec.EncodeError, match="src_proto"):
        codec.encode(Packet(1, "172.16.0.1", "fe80::1", "10.0.0.1"))
    with pytest.raises(codec.EncodeError):
        codec.encode(Packet(1, "172.16.0.1", "10.0.0.1", "10.0.0.2", request_id=1 << 32))


def _valid() -> bytes:
    return codec.encode(Packet(codec.Op.RESOLUTION_REQUEST, "172.16.0.11", "10.255.0.11", "10.1.2.10",
                               0x8800, 9, (codec.Cie(0, 32, 0, 60),),
                               (codec.ForwardTransit(), codec.VendorPrivate(9, b"v"), codec.End())))


def _patch(data: bytes, at: int, fmt: str, value: int) -> bytes:
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt):]


VALID = _valid()
EXTOFF = codec.decode(VALID).extoff


@pytest.mark.parametrize(("data", "field", "offset"), [
    (VALID[:19], "fixed header", 19),
    (_patch(VALID, 0, "!H", 2), "ar$afn", 0),
    (_patch(VALID, 2, "!H", 0x0806), "ar$pro.type", 2),
    (_patch(VALID, 2, "!H", 0x86DD), "src_proto_len", 20),      # IPv4 addresses in an IPv6 packet
    (_patch(VALID, 10, "!H", 24), "ar$pktsz", 10),
    (_patch(VALID, 10, "!H", len(VALID) + 1), "ar$pktsz", 10),
    (VALID[:40], "ar$pktsz", 10),
    (_patch(VALID, 16, "B", 2), "ar$op.version", 16),
    (_patch(VALID, 17, "B", 9), "ar$op.type", 17),
    (_patch(VALID, 18, "B", 16), "ar$shtl", 18),
    (_patch(VALID, 19, "B", 2), "ar$sstl", 19),
    (_patch(VALID, 20, "B", 16), "src_proto_len", 20),
    (_patch(VALID, 21, "B", 3), "dst_proto_len", 21),
    (_patch(VALID, 14, "!H", len(VALID) + 4), "ar$extoff", 14),
    (_patch(VALID, 14, "!H", 30), "ar$extoff", 14),
    (_patch(VALID, 14, "!H", EXTOFF - 1), "cies[0]", 40),
    (_patch(VALID, 40 + 8, "B", 16), "cies[0].cli_addr_tl", 48),
    (_patch(VALID, 40 + 9, "B", 1), "cies[0].cli_saddr_tl", 49),
    (_patch(VALID, EXTOFF + 2, "!H", 200), "extensions[0].len", EXTOFF + 2),
    (_patch(VALID, EXTOFF + 2, "!H", 5), "extensions[0].cies[0]", EXTOFF + 4),
], ids=lambda v: v if isinstance(v, str) else None)
def test_refusals_name_field_and_offset(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(CodecError) as e:
        codec.decode(data)
    assert (e.value.field, e.value.offset) == (field, offset), e.value


def test_short_vendor_and_auth_and_long_end() -> None:
    base = Packet(codec.Op.PURGE_REQUEST, "1.1.1.1", "10.0.0.1", "10.0.0.2", request_id=1)
    for ext, field in ((codec.UnknownExtension(8, b"ab"), "extensions[0].vendor_id"),
                       (codec.UnknownExtension(7, b"abc"), "extensions[0].spi"),
                       (codec.UnknownExtension(0, b"x", True), "extensions[0].len")):
        with pytest.raises(CodecError) as e:
            codec.decode(codec.encode(Packet(**{**_fields(base), "extensions": (ext,)})))
        assert e.value.field == field


def _fields(p: Packet) -> dict:
    return {f: getattr(p, f) for f in ("op_type", "src_nbma", "src_proto", "dst_proto", "request_id")}


def test_trailing_bytes_after_pktsz_are_ignored_and_bad_checksum_is_reported() -> None:
    assert codec.decode(VALID + b"\x00\x01") == codec.decode(VALID)
    bad = _patch(VALID, 12, "!H", codec.decode(VALID).chksum ^ 1)
    assert not codec.decode(bad).chksum_ok


def test_peek_reads_what_it_can() -> None:
    h = codec.peek(_patch(VALID, 16, "B", 9))
    assert h is not None and (h.version, h.src_nbma, h.src_proto, h.dst_proto, h.request_id) == \
        (9, "172.16.0.11", "10.255.0.11", "10.1.2.10", 9)
    assert codec.peek(VALID[:19]) is None
    assert codec.peek(VALID[:30]).src_proto == ""


def test_ipv6_protocol_addresses_over_ipv4_nbma() -> None:
    """ar$pro.type 0x86DD: 16-byte protocol addresses in the header and in every CIE
    (FRR's `ipv6 nhrp`, Cisco's IPv6 DMVPN); the NBMA addresses stay IPv4."""
    p = Packet(codec.Op.REGISTRATION_REQUEST, "172.16.0.11", "fd00:255::11", "fd00:255::1", 0x8002, 7,
               (codec.Cie(0, 128, 1400, 60, 0, "", ""),),
               (codec.ResponderAddress((codec.Cie(0, 128, 0, 60, 0, "172.16.0.2", "fd00:255::1"),)), codec.End()),
               pro_type=codec.PRO_IPV6)
    data = codec.encode(p)
    assert data[2:4] == b"\x86\xdd" and (data[18], data[20], data[21]) == (4, 16, 16)
    assert data[32:48] == bytes.fromhex("fd000255000000000000000000000011")
    assert codec.decode(data) == p
    h = codec.peek(data)
    assert h is not None and (h.src_proto, h.dst_proto) == ("fd00:255::11", "fd00:255::1")
    with pytest.raises(codec.EncodeError, match="src_proto"):
        codec.encode(Packet(**{**_fields(p), "src_proto": "10.255.0.11"}, pro_type=codec.PRO_IPV6))
    with pytest.raises(codec.EncodeError, match="client_nbma"):
        codec.encode(Packet(codec.Op.REGISTRATION_REQUEST, cies=(codec.Cie(client_nbma="fd00::1"),),
                            pro_type=codec.PRO_IPV6))
    cie = 28 + 4 + 16 + 16          # the CIE after the header, mandatory part and addresses
    with pytest.raises(CodecError) as e:
        codec.decode(_patch(data, cie + 10, "B", 4))
    assert (e.value.field, e.value.offset) == ("cies[0].cli_proto_len", cie + 10), e.value
