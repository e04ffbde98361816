"""Captures for the audit tests, written with scapy and the nhrp builders: a DMVPN
exchange between a hub and two spokes, each defect of it on request."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from dmvpnkit.nhrp import build
from dmvpnkit.nhrp.build import Malformation, cie, encapsulate, malform
from dmvpnkit.nhrp.layer import NHRPExtNATAddress

HUB, S1, S2, S3_PRIVATE, NAT = "192.0.2.1", "192.0.2.11", "192.0.2.12", "10.9.0.3", "198.51.100.7"
T_HUB, T1, T2, T3 = "10.255.0.1", "10.255.0.11", "10.255.0.12", "10.255.0.13"
HOLD = 60
NAMES = {HUB: "hub1", S1: "spoke1", S2: "spoke2", NAT: "spoke3"}
Frame = tuple[float, Packet]


def wire(nhrp: Packet | bytes, src: str, dst: str) -> Packet:
    """NHRP (a builder's layer, or malformed bytes) in Ether/IP/GRE."""
    if isinstance(nhrp, bytes):
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst) / \
            GRE(proto=0x2001) / Raw(nhrp)
    return encapsulate(nhrp, src, dst)


def registrations(defects: set[str]) -> list[Frame]:
    """spoke1 and spoke2 register at 0, 20 and 40 s (a third of a 60 s hold), answered."""
    out: list[Frame] = []
    for n, t in enumerate((0.0, 20.0, 40.0)):
        for k, (nbma, proto) in enumerate(((S1, T1), (S2, T2))):
            rid = 1 + n * 2 + k
            hold = 0 if "hold-zero" in defects and nbma == S1 else HOLD
            req = build.registration_request(nbma, proto, T_HUB, rid, holding_time=hold)
            if nbma == S1 and n == 1:
                for m in (Malformation.BAD_CHECKSUM, Malformation.WRONG_VERSION, Malformation.HOPCNT_ZERO,
                          Malformation.EXTOFF_PAST_PKTSZ):
                    if m.value in defects:
                        req = malform(req, m)       # type: ignore[assignment]
            at = (t / 4 if "refresh-fast" in defects else t) + 0.01 * k
            if "pktsz" in defects and nbma == S2 and n == 0:   # 4 bytes on the wire beyond ar$pktsz
                out.append((at, wire(bytes(req) + b"\0" * 4, nbma, HUB)))
            else:
                out.append((at, wire(req, nbma, HUB)))
            rid_back = rid + (100 if "wrong-id" in defects and nbma == S2 else 0)
            to = S1 if "reply-elsewhere" in defects and nbma == S2 else nbma
            rep = build.registration_reply(nbma, proto, T_HUB, rid_back, holding_time=HOLD)
            out.append((at + 0.005, wire(rep, HUB, to)))
    return out


def natted(defects: set[str]) -> list[Frame]:
    """spoke3 behind a NAT registers with a NAT extension; the hub names its public address."""
    req = build.registration_request(S3_PRIVATE, T3, T_HUB, 50, holding_time=HOLD,
                                     extensions=[NHRPExtNATAddress(cies=[cie(HUB, T_HUB)])])
    told = S3_PRIVATE if "nat-wrong" in defects else NAT
    rep = build.registration_reply(S3_PRIVATE, T3, T_HUB, 50, holding_time=HOLD,
                                   extensions=[NHRPExtNATAddress(cies=[cie(HUB, T_HUB), cie(told, T3)])])
    return [(1.0, wire(req, NAT, HUB)), (1.005, wire(rep, HUB, NAT))]


def redirect(defects: set[str]) -> list[Frame]:
    """A hairpinned ping, the hub's Traffic Indication, the resolution through the hub."""
    ping = IP(src="10.1.1.10", dst="10.1.2.10") / ICMP()
    data = Ether() / IP(src=S1, dst=HUB) / GRE(proto=0x0800) / ping
    out: list[Frame] = [(41.0, data)]
    inner = IP(src="10.7.7.7", dst="10.8.8.8") / ICMP() if "ti-foreign" in defects else ping
    out.append((41.1, wire(build.traffic_indication(inner, HUB, T_HUB, "10.1.1.10"), HUB, S1)))
    if "ti-flood" in defects:
        out.append((41.3, wire(build.traffic_indication(ping, HUB, T_HUB, "10.1.1.10"), HUB, S1)))
    req = build.resolution_request(S1, T1, "10.1.2.10", 9, hopcnt=64)
    fwd = build.resolution_request(S1, T1, "10.1.2.10", 9, hopcnt=64 if "no-decrement" in defects else 63)
    rep = build.resolution_reply(S1, T1, "10.1.2.10", 9, S2, T2, prefix_len=24, hopcnt=64)
    back = build.resolution_reply(S1, T1, "10.1.2.10", 9, S2, T2, prefix_len=24, hopcnt=63)
    out += [(42.0, wire(req, S1, HUB)), (42.01, wire(fwd, HUB, S2)), (42.02, wire(rep, S2, HUB)),
            (42.03, wire(back, HUB, S1))]
    return out


def errors(defects: set[str]) -> list[Frame]:
    """spoke2 sends an unknown compulsory extension; the hub answers with an Error Indication."""
    bad = build.resolution_request(S2, T2, "10.1.1.10", 11)
    bad_bytes = malform(bad, Malformation.UNKNOWN_COMPULSORY_EXT)
    errored = bad_bytes
    if "ei-about-ei" in defects:
        errored = bytes(build.error_indication(bad_bytes, S2, T2, T_HUB, 1, 40))
    code = 99 if "ei-code" in defects else 1
    ei = build.error_indication(errored, HUB, T_HUB, T2, code, 40)
    return [(43.0, wire(bad_bytes, S2, HUB)), (43.01, wire(ei, HUB, S2))]


def resends(defects: set[str]) -> list[Frame]:
    """spoke1 resolves a host nobody answers for, twice (the resend), then the capture goes on."""
    first = build.resolution_request(S1, T1, "10.1.9.9", 20)
    again = build.resolution_request(S1, T1, "10.1.9.9", 21 if "resend-new-id" in defects else 20)
    out: list[Frame] = [(44.0, wire(first, S1, HUB))]
    if "no-resend" not in defects:
        out.append((46.0, wire(again, S1, HUB)))
    return out + [(60.0, wire(build.registration_request(S1, T1, T_HUB, 30, holding_time=HOLD), S1, HUB)),
                  (60.005, wire(build.registration_reply(S1, T1, T_HUB, 30, holding_time=HOLD), HUB, S1))]


def esp(defects: set[str]) -> list[Frame]:
    """With `ipsec`: ESP between the hub and spoke1 (no keys given), GRE in the clear with `cleartext`."""
    out: list[Frame] = []
    if "ipsec" in defects:
        out = [(0.5, Ether() / IP(src=S1, dst=HUB, proto=50) / Raw(struct.pack(">II", 0x1234, 1) + b"\0" * 40)),
               (0.6, Ether() / IP(src=HUB, dst=S1, proto=50) / Raw(struct.pack(">II", 0x5678, 1) + b"\0" * 40))]
    return out


def scenario(*defects: str) -> list[Frame]:
    d = set(defects)
    frames = registrations(d) + natted(d) + redirect(d) + errors(d) + resends(d) + esp(d)
    if "ipsec" in d and "cleartext" not in d:
        frames = [f for f in frames if not (GRE in f[1] and f[1][IP].src == S1)] + \
            [(f[0], Ether() / IP(src=S1, dst=HUB, proto=50) / Raw(struct.pack(">II", 0x1234, 2) + b"\0" * 40))
             for f in frames if GRE in f[1] and f[1][IP].src == S1]
    return sorted(frames, key=lambda f: f[0])


def write(path: Path, frames: Iterable[Frame], t0: float = 1_700_000_000.0) -> Path:
    pkts = []
    for ts, p in frames:
        p.time = t0 + ts
        pkts.append(p)
    wrpcap(str(path), pkts)
    return path


def pcapng(path: Path, frames: Iterable[Frame], t0: float = 1_700_000_000.0, linktype: int = 1) -> Path:
    """The frames as pcapng: a section header, one interface, an enhanced packet block each."""
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for ts, p in frames:
        raw = bytes(p)
        us = int((t0 + ts) * 1e6)
        out += block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(raw), len(raw)) + raw)
    path.write_bytes(out)
    return path
