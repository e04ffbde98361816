"""pcapng, as Wireshark writes it and as the format allows: read like tshark reads it.

Several interfaces in one file (each with its own link type and timestamp resolution),
both byte orders, several sections, simple and obsolete packet blocks, options and
blocks that carry no frames; a file cut short anywhere keeps the packets before the
cut; a corrupt block is named with its offset.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import GRE, CookedLinux, Ether
from scapy.utils import PcapWriter, wrpcap

from dmvpnkit.capture import Timeline
from dmvpnkit.capture.pcap import ETHERNET, LINUX_SLL, RAW, PcapError, read
from dmvpnkit.nhrp import build

TSHARK, MERGECAP = shutil.which("tshark"), shutil.which("mergecap")
needs_wireshark = pytest.mark.skipif(not (TSHARK and MERGECAP),
                                     reason="tshark/mergecap not installed (./scripts/bootstrap installs them)")
HUB, SPOKE = "172.16.0.2", "172.16.0.6"


def registration(request_id: int) -> Ether:
    nhrp = build.registration_request(SPOKE, "10.255.0.11", "10.255.0.1", request_id, holding_time=60)
    return Ether(src="02:00:00:00:00:06", dst="02:00:00:00:00:02") / IP(src=SPOKE, dst=HUB) / \
        GRE(key_present=1, key=42) / nhrp


def tshark_frames(path: Path) -> list[tuple[Decimal | None, int, str, str]]:
    """(epoch time, captured length, first protocol, direction flags) of every frame, as
    tshark reads them (no time for a simple packet block: it has none)."""
    out = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len",
                          "-e", "frame.protocols", "-e", "frame.packet_flags_direction"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return [(Decimal(t) if t else None, int(n), protos.split(":")[0], d) for t, n, protos, d in rows]


@pytest.fixture
def merged(tmp_path: Path) -> Path:
    """One pcapng of three interfaces, as mergecap writes it: Ethernet in µs, Linux
    cooked in µs, Ethernet in ns, their packets interleaved in time."""
    eth = [registration(i) for i in range(3)]
    for i, p in enumerate(eth):
        p.time = Decimal("1700000000.123456") + i
    wrpcap(str(tmp_path / "eth.pcap"), eth)
    sll = [CookedLinux(pkttype=4, proto=0x800) / IP(src=SPOKE, dst=HUB) / GRE(key_present=1, key=42) /
           build.registration_request(SPOKE, "10.255.0.11", "10.255.0.1", 10 + i) for i in range(2)]
    for i, p in enumerate(sll):
        p.time = Decimal("1700000000.5") + i
    wrpcap(str(tmp_path / "sll.pcap"), sll)
    with PcapWriter(str(tmp_path / "ns.pcap"), nano=True) as w:
        for i in range(2):
            p = registration(20 + i)
            p.time = Decimal("1700000000.123456789") + i
            w.write(p)
    out = tmp_path / "spoke1__inet.pcapng"
    subprocess.run([MERGECAP, "-F", "pcapng", "-w", str(out), *(str(tmp_path / f) for f in
                                                                   ("eth.pcap", "sll.pcap", "ns.pcap"))], check=True)
    return out


@needs_wireshark
def test_several_interfaces_read_as_tshark_reads_them(merged: Path) -> None:
    ours = list(read(merged))
    theirs = tshark_frames(merged)
    assert len(ours) == len(theirs) == 7
    for r, (ts, caplen, first, _d) in zip(ours, theirs, strict=True):
        assert ts is not None and abs(Decimal(repr(r.ts)) - ts) < Decimal("1e-6"), (r.ts, ts)
        assert (len(r.data), r.linktype) == (caplen, {"eth": ETHERNET, "sll": LINUX_SLL}[first])
    # the ns interface keeps its nanoseconds: 789 ns after the µs interface's packet
    assert ours[1].ts - ours[0].ts == pytest.approx(789e-9, abs=3e-7)
    assert [r.outgoing for r in ours if r.linktype == LINUX_SLL] == [True, True]


@needs_wireshark
def test_a_pcapng_gives_the_timeline_its_pcaps_give(merged: Path) -> None:
    both = Timeline.from_dir(merged.parent)         # the three pcaps and the pcapng made of them
    only_pcapng = Timeline.from_pcaps([merged])
    only_pcaps = Timeline.from_pcaps(sorted(merged.parent.glob("*.pcap")))
    assert len(both) == 14
    assert [(e.nhrp.op, e.nhrp.request_id) for e in only_pcapng] == \
        [(e.nhrp.op, e.nhrp.request_id) for e in only_pcaps] and len(only_pcapng) == 7


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _end(order: str) -> bytes:
    return struct.pack(order + "HH", 0, 0)


def handmade(order: str) -> tuple[bytes, list[tuple[float, int, bool | None]]]:
    """A section in `order` with what Wireshark and tcpdump seldom write: 2^-20 s
    timestamps with an offset, a comment, name resolution and statistics blocks, an
    enhanced packet flagged outbound, a simple and an obsolete packet block; then a
    second, little-endian section with a raw-IP interface. And what each frame should read as."""
    frame = bytes(registration(7))
    ip = bytes(IP(src=SPOKE, dst=HUB) / ICMP())
    shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(order, 1, b"made by hand") + _end(order)
    idb = struct.pack(order + "HHI", ETHERNET, 0, 0) + _option(order, 9, bytes([0x94])) + \
        _option(order, 14, struct.pack(order + "q", 100)) + _end(order)
    ticks = 5 * 2 ** 20 + 2 ** 19              # 5.5 s in 2^-20 s units
    epb = struct.pack(order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + \
        frame + b"\0" * (-len(frame) % 4) + _option(order, 2, struct.pack(order + "I", 2)) + \
        _option(order, 1, b"a comment") + _end(order)
    spb = struct.pack(order + "I", len(frame)) + frame
    opb = struct.pack(order + "HHIIII", 0, 0, 0, 2 ** 20, len(frame), len(frame)) + frame
    nrb = struct.pack(order + "HH", 1, 8) + bytes([172, 16, 0, 2]) + b"hub\0" + _end(order)
    isb = struct.pack(order + "III", 0, 0, 0) + _end(order)
    second = _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + \
        _block("<", 1, struct.pack("<HHI", RAW, 0, 0)) + \
        _block("<", 6, struct.pack("<IIIII", 0, 0, 9_000_000, len(ip), len(ip)) + ip)
    data = b"".join([_block(order, 0x0A0D0D0A, shb), _block(order, 1, idb), _block(order, 4, nrb),
                     _block(order, 6, epb), _block(order, 3, spb), _block(order, 2, opb),
                     _block(order, 5, isb), second])
    return data, [(105.5, ETHERNET, True), (100.0, ETHERNET, None), (101.0, ETHERNET, None), (9.0, RAW, None)]


@needs_wireshark
@pytest.mark.parametrize("order", ["<", ">"])
def test_a_handmade_pcapng_reads_as_tshark_reads_it(tmp_path: Path, order: str) -> None:
    data, want = handmade(order)
    f = tmp_path / "x.pcapng"
    f.write_bytes(data)
    ours = list(read(f))
    assert [(round(r.ts, 6), r.linktype, r.outgoing) for r in ours] == want
    theirs = tshark_frames(f)
    assert [n for _t, n, _p, _d in theirs] == [len(r.data) for r in ours]
    # the simple packet block (2nd) has no time of its own: tshark shows none, we the offset
    assert [t for t, *_ in theirs] == [Decimal(f"{r.ts:.9f}") if i != 1 else None for i, r in enumerate(ours)]
    assert int(theirs[0][3], 16) & 3 == 2       # tshark: outbound, as the epb_flags say


def blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, end offset) of each block of a little-endian pcapng."""
    out, off = [], 0
    while off < len(data):
        btype, n = struct.unpack_from("<II", data, off)
        out.append((off, btype, off + n))
        off += n
    return out


def test_a_file_cut_anywhere_keeps_the_packets_before_the_cut(tmp_path: Path) -> None:
    data, want = handmade("<")
    f = tmp_path / "cut.pcapng"
    ends = [end for _off, btype, end in blocks(data) if btype in (2, 3, 6)]   # where each packet block ends
    for cut in range(len(data) + 1):
        f.write_bytes(data[:cut])
        if 0 < cut < 4:                 # not even the magic: no telling what the file was
            with pytest.raises(PcapError, match=f"{cut} bytes, shorter than"):
                list(read(f))
        else:
            assert len(list(read(f))) == sum(e <= cut for e in ends), cut




def _set(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<I", value) + data[at + 4:]


@pytest.mark.parametrize("corrupt, why", [
    (lambda d, b: d[:8] + b"\xff\xff\xff\xff" + d[12:], "section header at offset 0: byte-order magic ffffffff"),
    (lambda d, b: _set(d, b[1][0] + 4, 30), "block (type 0x1) at offset {idb}: total length 30, not a multiple of 4"),
    (lambda d, b: _set(d, b[3][0] + 20, 10_000), "packet block at offset {epb}: captured length 10000 overruns"),
])
def test_a_corrupt_block_is_named_with_its_offset(tmp_path: Path, corrupt, why: str) -> None:
    data, _want = handmade("<")
    where = blocks(data)
    assert [t for _o, t, _e in where[:4]] == [0x0A0D0D0A, 1, 4, 6]
    f = tmp_path / "bad__inet.pcapng"
    f.write_bytes(corrupt(data, where))
    with pytest.raises(PcapError) as e:
        list(read(f))
    assert str(e.value).startswith(f"{f}: pcapng ")
    assert why.format(idb=where[1][0], epb=where[3][0]) in str(e.value)


def test_a_packet_naming_an_undescribed_interface_is_named(tmp_path: Path) -> None:
    frame = bytes(registration(1))
    data = _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + \
        _block("<", 1, struct.pack("<HHI", ETHERNET, 0, 0)) + \
        _block("<", 6, struct.pack("<IIIII", 3, 0, 0, len(frame), len(frame)) + frame)
    f = tmp_path / "x.pcapng"
    f.write_bytes(data)
    with pytest.raises(PcapError, match=r"x.pcapng: pcapng packet block at offset 48 names interface 3; "
                                        r"the section describes 1"):
        list(read(f))


@needs_wireshark
def test_decode_reads_a_pcapng_and_a_directory_holding_one(merged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmvpnkit.cli.main import main
    (merged.parent / "eth.pcap").unlink()
    (merged.parent / "sll.pcap").unlink()
    (merged.parent / "ns.pcap").unlink()
    for target in (merged, merged.parent):
        assert main(["decode", str(target), "--nhrp"]) == 0
        lines = [ln for ln in capsys.readouterr().out.splitlines() if "registration-request" in ln]
        assert len(lines) == 7 and all("spoke1" in ln for ln in lines), lines


def test_epb_flags_give_the_direction_on_ethernet(tmp_path: Path) -> None:
    """An Ethernet capture has no direction of its own; the enhanced packet's flags do."""
    data, _want = handmade("<")
    f = tmp_path / "spoke1__inet.pcapng"
    f.write_bytes(data)
    tl = Timeline.from_pcaps([f])
    assert [(e.ts, e.direction) for e in tl.where(op="registration-request")] == \
        [(100.0, "?"), (101.0, "?"), (105.5, "out")]
