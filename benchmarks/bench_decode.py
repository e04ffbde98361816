"""Build a large Ethernet/IP/GRE pcap of mixed NHRP (plus GRE-carried data) and time
decoding it: ``dmvpnkit.nhrp.decode`` alone, and the whole capture into a timeline.

    .venv/bin/python benchmarks/bench_decode.py [--count 100000] [--pcap FILE]

Prints packets/s for decode() alone (NHRP bytes already cut out of the frames), for
scapy's RawPcapReader + locating NHRP + decode(), and for `Timeline.from_pcaps` (our
pcap reader, every frame an event, sorted): what `dmvpnkit decode` and the suite do.

Then the same frames as pcapng (`editcap -F pcapng`): frames/s read by our reader and
by the pcapng readers on PyPI that are installed (scapy's RawPcapNgReader; dpkt and
python-pcapng when present: `pip install dpkt python-pcapng`), and the timeline from it.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from scapy.layers.inet import ICMP, IP
from scapy.utils import RawPcapReader, RawPcapWriter, checksum

from dmvpnkit.capture import Timeline
from dmvpnkit.capture.pcap import read
from dmvpnkit.nhrp import (
    NHRPExtAuthentication,
    NHRPExtForwardTransit,
    NHRPExtNATAddress,
    NHRPExtResponderAddress,
    NHRPExtReverseTransit,
    cie,
    decode,
    encapsulate,
    error_indication,
    purge_request,
    registration_reply,
    registration_request,
    resolution_reply,
    resolution_request,
    traffic_indication,
)

ETH, GRE_NHRP = 14, 0x2001


def templates() -> list[bytes]:
    """Ethernet frames: the DMVPN mix (registrations dominate), and GRE data."""
    exts = [NHRPExtForwardTransit(compulsory=1), NHRPExtReverseTransit(compulsory=1),
            NHRPExtResponderAddress(compulsory=1),
            NHRPExtNATAddress(cies=[cie("192.0.2.1", "198.51.100.1")]),
            NHRPExtAuthentication(compulsory=1, auth_data=b"secret\x00\x00")]
    reg = registration_request("192.0.2.11", "198.51.100.11", "198.51.100.1", 1, extensions=exts)
    nhrp = [
        reg, reg,
        registration_reply("192.0.2.11", "198.51.100.11", "198.51.100.1", 1, extensions=exts),
        resolution_request("192.0.2.11", "198.51.100.11", "198.51.100.12", 2, extensions=exts),
        resolution_reply("192.0.2.11", "198.51.100.11", "198.51.100.12", 2, "192.0.2.12",
                         "198.51.100.12", extensions=exts),
        purge_request("192.0.2.1", "198.51.100.1", "198.51.100.11", 3, ["198.51.100.12"]),
        error_indication(reg, "192.0.2.1", "198.51.100.1", "198.51.100.11", 3, 60),
        traffic_indication(IP(src="198.51.100.11", dst="198.51.100.12") / ICMP() / (b"x" * 56),
                           "192.0.2.1", "198.51.100.1"),
    ]
    frames = [bytes(encapsulate(p, "192.0.2.11", "192.0.2.1", key=42)) for p in nhrp]
    data = IP(src="198.51.100.11", dst="198.51.100.12") / ICMP() / (b"d" * 56)
    frames.append(bytes(encapsulate(data, "192.0.2.11", "192.0.2.12", key=42)))
    return frames


def nhrp_offset(frame: bytes) -> int | None:
    """Where NHRP starts behind Ether/IPv4/GRE, or None for anything else."""
    if frame[12:14] != b"\x08\x00" or frame[ETH + 9] != 47:
        return None
    gre = ETH + (frame[ETH] & 0x0F) * 4
    flags, proto = struct.unpack_from("!HH", frame, gre)
    if proto != GRE_NHRP:
        return None
    # checksum/routing, key and sequence number each add 4 bytes
    return gre + 4 + 4 * (bool(flags & 0xC000) + bool(flags & 0x2000) + bool(flags & 0x1000))


def with_request_id(frame: bytes, at: int, request_id: int) -> bytes:
    """Give each copy its own request ID (types 1-6) and a correct checksum again."""
    if not 1 <= frame[at + 17] <= 6:
        return frame
    body = bytearray(frame[at:])
    body[24:28] = struct.pack("!I", request_id)
    body[12:14] = b"\x00\x00"
    size = struct.unpack_from("!H", body, 10)[0]
    body[12:14] = struct.pack("!H", checksum(bytes(body[:size])))
    return frame[:at] + bytes(body)


def write_pcap(path: Path, count: int) -> None:
    writer = RawPcapWriter(str(path), linktype=1)
    for n, frame in zip(range(count), itertools.cycle(templates())):
        at = nhrp_offset(frame)
        writer.write(with_request_id(frame, at, n) if at is not None else frame)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--pcap", type=Path, help="keep the pcap here (default: a temp file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = args.pcap or Path(tmp) / "spoke1__inet.pcap"
        t0 = time.perf_counter()
        write_pcap(pcap, args.count)
        print(f"built {args.count} frames in {time.perf_counter() - t0:.1f}s -> {pcap}")

        t0 = time.perf_counter()
        frames = [data for data, _meta in RawPcapReader(str(pcap))]
        read = time.perf_counter() - t0
        nhrp = [f[at:] for f in frames if (at := nhrp_offset(f)) is not None]

        t0 = time.perf_counter()
        for b in nhrp:
            decode(b)
        alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        for data, _meta in RawPcapReader(str(pcap)):
            at = nhrp_offset(data)
            if at is not None:
                decode(data[at:])
        whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        tl = Timeline.from_pcaps([pcap])
        timeline = time.perf_counter() - t0

        pcapng = pcapng_figures(pcap)

    assert all(decode(b).chksum_ok for b in nhrp[:1000])
    print(f"{len(nhrp)} NHRP of {len(frames)} frames; reading the pcap: {read:.2f}s")
    print(f"decode() alone:            {len(nhrp) / alone:,.0f} NHRP packets/s")
    print(f"read + locate + decode():  {len(frames) / whole:,.0f} frames/s")
    print(f"capture -> timeline:       {len(tl) / timeline:,.0f} frames/s ({len(tl)} events in {timeline:.2f}s)")
    for name, rate in pcapng:
        print(f"{name + ':':<27}{rate:>8,.0f} frames/s")


def _rate(count: Callable[[], int]) -> float:
    t0 = time.perf_counter()
    n = count()
    return n / (time.perf_counter() - t0)


def pcapng_figures(pcap: Path) -> list[tuple[str, float]]:
    """Frames/s of each reader over the pcap and its pcapng copy (needs editcap)."""
    editcap = shutil.which("editcap")
    if editcap is None:
        return [("pcapng (no editcap to make one)", 0.0)]
    ng = pcap.with_suffix(".pcapng")
    subprocess.run([editcap, "-F", "pcapng", str(pcap), str(ng)], check=True)
    out = [("read pcap, ours", _rate(lambda: sum(1 for _r in read(pcap)))),
           ("read pcapng, ours", _rate(lambda: sum(1 for _r in read(ng))))]
    from scapy.utils import RawPcapNgReader
    out.append(("read pcapng, scapy", _rate(lambda: sum(1 for _r in RawPcapNgReader(str(ng))))))
    try:
        import dpkt
    except ImportError:
        pass
    else:           # reads only the first interface's link type and resolution
        def by_dpkt() -> int:
            with ng.open("rb") as f:
                return sum(1 for _r in dpkt.pcapng.Reader(f))
        out.append(("read pcapng, dpkt", _rate(by_dpkt)))
    try:
        from pcapng import FileScanner
        from pcapng.blocks import EnhancedPacket
    except ImportError:
        pass
    else:
        def by_python_pcapng() -> int:
            with ng.open("rb") as f:
                return sum(1 for b in FileScanner(f) if isinstance(b, EnhancedPacket) and b.packet_data)
        out.append(("read pcapng, python-pcapng", _rate(by_python_pcapng)))
    tl_rate = _rate(lambda: len(Timeline.from_pcaps([ng])))
    out.append(("pcapng -> timeline", tl_rate))
    return out


if __name__ == "__main__":
    main()
