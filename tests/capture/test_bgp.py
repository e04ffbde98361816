"""BGP UPDATEs read from GRE in a capture: reassembled per stream, each counted once."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

from scapy.contrib.bgp import BGPHeader, BGPNLRI_IPv4, BGPPANextHop, BGPPathAttr, BGPUpdate
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from dmvpnkit.capture import Timeline
from dmvpnkit.capture.bgp import updates

HUB, SPOKE = "172.16.0.2", "172.16.0.6"         # NBMA
HUB_T, SPOKE_T = "10.255.0.1", "10.255.0.11"    # tunnel


def update(prefixes: list[str], next_hop: str, withdrawn: tuple[str, ...] = ()) -> bytes:
    attrs = [BGPPathAttr(type_flags=0x40, type_code=3, attribute=BGPPANextHop(next_hop=next_hop))]
    return bytes(BGPHeader(type=2) / BGPUpdate(withdrawn_routes=[BGPNLRI_IPv4(prefix=w) for w in withdrawn],
                                               path_attr=attrs, nlri=[BGPNLRI_IPv4(prefix=p) for p in prefixes]))


def segment(payload: bytes, seq: int, t: float) -> Packet:
    p = Ether() / IP(src=HUB, dst=SPOKE) / GRE(key_present=1, key=42) / \
        IP(src=HUB_T, dst=SPOKE_T) / TCP(sport=179, dport=40000, seq=seq, flags="PA") / payload
    p.time = t
    return p


def test_updates_are_reassembled_and_counted_once(tmp_path: Path) -> None:
    first = update(["10.0.0.0/12"], HUB_T)
    second = update(["10.1.2.0/24", "10.1.3.0/24"], HUB_T, withdrawn=("10.9.0.0/16",))
    keepalive = bytes(BGPHeader(type=4))
    stream = first + keepalive + second
    cut = len(first) + len(keepalive) + 10            # the second UPDATE split over two segments
    hub = [segment(stream[:cut], 1000, 1.0), segment(stream[:cut], 1000, 1.2),     # a retransmission
           segment(stream[cut:], 1000 + cut, 1.3)]
    wrpcap(str(tmp_path / "hub1__inet.pcap"), hub)
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [segment(s[IP].payload[IP].payload.load, s[TCP].seq, s.time + 0.001)
                                                  for s in hub])    # the same stream, seen at the other end
    got = updates(Timeline.from_dir(tmp_path))
    assert [(u.src, u.dst, u.nlri, u.next_hop, u.withdrawn) for u in got] == [
        (HUB_T, SPOKE_T, (IPv4Network("10.0.0.0/12"),), HUB_T, ()),
        (HUB_T, SPOKE_T, (IPv4Network("10.1.2.0/24"), IPv4Network("10.1.3.0/24")), HUB_T, (IPv4Network("10.9.0.0/16"),))]
    assert {u.event.node for u in got} == {"hub1"}


def test_a_missed_segment_resumes_at_the_next_message(tmp_path: Path) -> None:
    a, b, c = update(["10.1.1.0/24"], HUB_T), update(["10.1.2.0/24"], HUB_T), update(["10.1.3.0/24"], HUB_T)
    half = len(b) // 2
    frames = [segment(a, 1, 1.0), segment(b[half:] + c, 1 + len(a) + half, 1.2)]    # b's first half never captured
    wrpcap(str(tmp_path / "hub1__inet.pcap"), frames)
    assert [u.nlri for u in updates(Timeline.from_dir(tmp_path))] == [(IPv4Network("10.1.1.0/24"),),
                                                                       (IPv4Network("10.1.3.0/24"),)]
