"""decode() against Wireshark's NHRP dissector, field by field.

Builder packets (every type and extension, IPv4/IPv6) and every Malformation go
into one Ethernet/IP/GRE pcap; tshark dissects it; each frame's NHRP bytes (as
Wireshark delimited them) are decoded and must give exactly Wireshark's fields.
The last tests pin down where Wireshark 4.0 and RFC 2332 part ways.
"""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import PcapWriter, wrpcap

from dmvpnkit.nhrp import (
    NHRP,
    NHRPCIE,
    DecodeError,
    Malformation,
    NHRPExtension,
    NHRPExtVendorPrivate,
    cie,
    decode,
    encapsulate,
    malform,
    resolution_reply,
)
from dmvpnkit.capture import Timeline
from tests.nhrp import cases, oracle

pytestmark = pytest.mark.skipif(oracle.TSHARK is None,
                                reason="tshark not installed (./scripts/bootstrap installs it)")

CASES = cases.builder_cases()
MALFORMED = cases.malformed_cases()
RAISES = {Malformation.EXTOFF_PAST_PKTSZ, Malformation.TRUNCATED_CIE}


def _frame(nhrp: bytes) -> Packet:
    return encapsulate(NHRP(nhrp), cases.SPOKE_NBMA, cases.HUB_NBMA, key=42)


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> dict[object, oracle.Frame]:
    keys = [*CASES, *MALFORMED]
    data = [bytes(p) for p in CASES.values()] + list(MALFORMED.values())
    pcap = tmp_path_factory.mktemp("oracle") / "builders.pcap"
    wrpcap(str(pcap), [_frame(b) for b in data])
    frames = oracle.run_tshark(pcap)
    assert [f.number for f in frames] == list(range(1, len(keys) + 1))
    for f, b in zip(frames, data, strict=True):
        assert f.nhrp == b, f"Wireshark delimited frame {f.number} differently"
    return dict(zip(keys, frames, strict=True))


MERGECAP = shutil.which("mergecap")


@pytest.mark.skipif(MERGECAP is None, reason="mergecap not installed (./scripts/bootstrap installs it)")
def test_a_pcapng_of_two_interfaces_reads_as_wireshark_dissects_it(tmp_path: Path) -> None:
    """The builder frames, alternately on an Ethernet interface in µs and one in ns, in
    one pcapng as mergecap writes it: each frame our reader gives is the frame tshark
    numbers so, with the NHRP bytes Wireshark delimits, decoding to Wireshark's fields."""
    frames = [_frame(bytes(p)) for p in CASES.values()]
    for i, f in enumerate(frames):
        f.time = Decimal(1_000 + i) + (Decimal("0.000000123") if i % 2 else Decimal("0.000001"))
    wrpcap(str(tmp_path / "us.pcap"), frames[0::2])
    with PcapWriter(str(tmp_path / "ns.pcap"), nano=True) as w:
        for f in frames[1::2]:
            w.write(f)
    merged = tmp_path / "spoke1__inet.pcapng"
    subprocess.run([MERGECAP, "-F", "pcapng", "-w", str(merged), str(tmp_path / "us.pcap"),
                    str(tmp_path / "ns.pcap")], check=True, timeout=60)
    theirs = oracle.run_tshark(merged)
    ours = list(Timeline.from_pcaps([merged]))
    assert [(e.frame, e.raw) for e in ours] == [(f.number, f.nhrp) for f in theirs]
    assert len(ours) == len(CASES)
    assert ours[1].ts - ours[0].ts == pytest.approx(1 - 877e-9, abs=1e-9)    # the ns interface kept its ns
    for f in theirs:
        _compare(f)


def _compare(frame: oracle.Frame) -> None:
    msg = decode(frame.nhrp)
    problem = oracle.diff(frame.items, oracle.expected(msg, decode))
    assert not problem, f"frame {frame.number} ({msg.summary()}): {problem}"


@pytest.mark.parametrize("name", CASES)
def test_builder_packet_matches_wireshark(dissected: dict[object, oracle.Frame], name: str) -> None:
    frame = dissected[name]
    assert not frame.malformed
    _compare(frame)


def test_traffic_indication_carries_the_packet_wireshark_sees(
        dissected: dict[object, oracle.Frame]) -> None:
    for name, layer, fields in (
            ("traffic-indication", "ip", (("src", "src"), ("dst", "dst"), ("len", "len"),
                                          ("proto", "proto"))),
            ("traffic-indication-ipv6", "ipv6", (("src", "src"), ("dst", "dst"),
                                                 ("plen", "plen"), ("nxt", "nh")))):
        inner = decode(dissected[name].nhrp).inner
        pkt = IP(inner) if layer == "ip" else IPv6(inner)
        seen = dissected[name].inner_layers[layer]
        for ws, ours in fields:
            assert seen[f"{layer}.{ws}"] == str(pkt.getfieldval(ours)), (name, ws)


@pytest.mark.parametrize("m", [m for m in Malformation if m not in RAISES], ids=lambda m: m.name)
def test_malformation_decodes_like_wireshark(dissected: dict[object, oracle.Frame],
                                             m: Malformation) -> None:
    _compare(dissected[m])


def test_bad_checksum_seen_by_both(dissected: dict[object, oracle.Frame]) -> None:
    frame = dissected[Malformation.BAD_CHECKSUM]
    assert not decode(frame.nhrp).chksum_ok
    assert ("nhrp.hdr.chksum.status", 0) in frame.items
    assert ("expert", "nhrp.hdr.bad_checksum") in frame.items


@pytest.mark.parametrize("m, field, value", [
    (Malformation.HOPCNT_ZERO, "nhrp.hdr.hopcnt", 0),
    (Malformation.WRONG_VERSION, "nhrp.hdr.version", 2),
])
def test_header_defect_seen_by_both(dissected: dict[object, oracle.Frame], m: Malformation,
                                    field: str, value: int) -> None:
    assert (field, value) in dissected[m].items
    assert getattr(decode(dissected[m].nhrp), field.rsplit(".", 1)[1]) == value


@pytest.mark.parametrize("m, compulsory", [(Malformation.UNKNOWN_COMPULSORY_EXT, 1),
                                           (Malformation.UNKNOWN_NONCOMPULSORY_EXT, 0)])
def test_unknown_extension_seen_by_both(dissected: dict[object, oracle.Frame], m: Malformation,
                                        compulsory: int) -> None:
    items = dissected[m].items
    at = items.index(("nhrp.ext.type", 0x3800))
    assert items[at - 1] == ("nhrp.ext.c", compulsory)
    assert items[at + 2][0] == "nhrp.unknown_ext.value"
    ext = next(e for e in decode(dissected[m].nhrp).extensions if e.type == 0x3800)
    assert ext.compulsory == bool(compulsory)


def test_transit_loop_seen_by_both(dissected: dict[object, oracle.Frame]) -> None:
    frame = dissected[Malformation.TRANSIT_LOOP]
    items = frame.items
    fwd = items.index(("nhrp.ext.type", 4))
    assert ("nhrp.client.prot.addr", cases.HUB) in items[fwd:items.index(("ext",), fwd)]
    ext = next(e for e in decode(frame.nhrp).extensions if e.type == 4)
    assert cases.HUB in {c.client_proto for c in ext.cies}


def test_extoff_past_pktsz_seen_by_both(dissected: dict[object, oracle.Frame]) -> None:
    frame = dissected[Malformation.EXTOFF_PAST_PKTSZ]
    with pytest.raises(DecodeError) as err:
        decode(frame.nhrp)
    assert (err.value.field, err.value.offset) == ("extoff", 14)
    assert ("expert", "nhrp.hdr.extoff.invalid") in frame.items


def test_truncated_cie_seen_by_both(dissected: dict[object, oracle.Frame]) -> None:
    frame = dissected[Malformation.TRUNCATED_CIE]
    with pytest.raises(DecodeError) as err:
        decode(frame.nhrp)
    assert err.value.field == "cies[0].client_proto"
    assert frame.malformed


# Where Wireshark 4.0 and RFC 2332 disagree. Each test shows the Wireshark reading
# and that decode() follows the RFC; if Wireshark gets fixed, the test says so.

def _one(tmp_path: Path, nhrp: bytes) -> oracle.Frame:
    pcap = tmp_path / "one.pcap"
    wrpcap(str(pcap), [_frame(nhrp)])
    (frame,) = oracle.run_tshark(pcap)
    return frame


def _reply_with(entry: NHRPCIE) -> bytes:
    pkt = resolution_reply(cases.SPOKE_NBMA, cases.SPOKE, cases.SPOKE2, 9, "", "")
    pkt.payload.cies = [entry]
    return bytes(pkt)


def test_wireshark_reads_client_protocol_address_from_the_subaddress(tmp_path: Path) -> None:
    """packet-nhrp.c does not step over the Client NBMA Subaddress (5.2.0.1)."""
    entry = cie(cases.SPOKE2_NBMA, cases.SPOKE2, client_nbma_sub=b"\x01\x02")
    frame = _one(tmp_path, _reply_with(entry))
    assert decode(frame.nhrp).cies[0].client_proto == cases.SPOKE2
    assert ("nhrp.client.prot.addr", "1.2.198.51") in frame.items


def test_wireshark_takes_the_e164_bit_for_length_in_cies(tmp_path: Path) -> None:
    """Cli Addr T/L: bit 6 is the type, bits 0-5 the length (5.2.0.1); Wireshark
    masks ar$shtl but not the CIE's T/L, so 0x44 reads as a 68-byte address."""
    entry = cie(cases.SPOKE2_NBMA, cases.SPOKE2)
    entry.cli_addr_tl = 0x44
    frame = _one(tmp_path, _reply_with(entry))
    got = decode(frame.nhrp).cies[0]
    assert (got.client_nbma, got.cli_addr_tl, got.client_proto) == (cases.SPOKE2_NBMA, 0x44, cases.SPOKE2)
    assert ("cie",) not in frame.items and frame.malformed    # threw on the CIE's length


def test_wireshark_ignores_a_cie_list_remnant(tmp_path: Path) -> None:
    """11 bytes where a CIE should be: decode() refuses, Wireshark shows nothing."""
    reply = resolution_reply(cases.SPOKE_NBMA, cases.SPOKE, cases.SPOKE2, 9, "", "",
                             extensions=[NHRPExtVendorPrivate(vendor_id=9)])
    frame = _one(tmp_path, malform(reply, Malformation.TRUNCATED_CIE))
    with pytest.raises(DecodeError, match=r"cies\[0\]"):
        decode(frame.nhrp)
    assert ("cie",) not in frame.items and not frame.malformed


def test_wireshark_reads_an_8_byte_nat_extension_as_device_capabilities(tmp_path: Path) -> None:
    """Type 9 is Cisco's NAT extension (a CIE list) and RFC 2735's Device
    Capabilities; Wireshark picks by length 8, decode() insists on CIEs."""
    devcap = NHRPExtension(type=9, value=bytes.fromhex("0000000100000000"))
    reply = resolution_reply(cases.SPOKE_NBMA, cases.SPOKE, cases.SPOKE2, 9, "", "",
                             extensions=[devcap])
    frame = _one(tmp_path, bytes(reply))
    with pytest.raises(DecodeError, match=r"extensions\[0\]\.cies\[0\]"):
        decode(frame.nhrp)
    assert ("nhrp.devcap_ext.srccap.V", 1) in frame.items
