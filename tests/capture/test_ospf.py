"""OSPF read from GRE in a capture: Hellos (who is DR) and the Router-LSAs of LS Updates
(each link's type, ID and data), what the phase 2 OSPF case asserts on."""

from __future__ import annotations

from pathlib import Path

from scapy.contrib.ospf import OSPF_Hdr, OSPF_Hello, OSPF_Link, OSPF_LSUpd, OSPF_Network_LSA, OSPF_Router_LSA
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from dmvpnkit.capture import Timeline
from dmvpnkit.capture.ospf import STUB, TRANSIT, Link, hellos, router_lsas

HUB, SPOKE = "172.16.0.2", "172.16.0.6"         # NBMA
HUB_T, SPOKE2_T = "10.255.0.1", "10.255.0.12"   # tunnel


def gre(inner: Packet, t: float) -> Packet:
    p = Ether() / IP(src=HUB, dst=SPOKE) / GRE(key_present=1, key=42) / inner
    p.time = t
    return p


def test_hello_and_router_lsa_decode(tmp_path: Path) -> None:
    hello = IP(src=HUB_T, dst="224.0.0.5", proto=89) / OSPF_Hdr(src=HUB_T) / \
        OSPF_Hello(mask="255.255.0.0", prio=255, router=HUB_T, backup="0.0.0.0")
    lsa = OSPF_Router_LSA(adrouter=SPOKE2_T, id=SPOKE2_T, linklist=[
        OSPF_Link(type=TRANSIT, id=HUB_T, data=SPOKE2_T), OSPF_Link(type=STUB, id="10.1.2.0", data="255.255.255.0")])
    network = OSPF_Network_LSA(adrouter=HUB_T, id=HUB_T, mask="255.255.0.0", routerlist=[HUB_T, SPOKE2_T])
    update = IP(src=HUB_T, dst="224.0.0.5", proto=89) / OSPF_Hdr(src=HUB_T) / OSPF_LSUpd(lsalist=[network, lsa])
    data = IP(src="10.1.1.10", dst="10.1.2.10") / ICMP()     # overlay data: neither
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [gre(hello, 1.0), gre(data, 1.05), gre(update, 1.1)])
    tl = Timeline.from_dir(tmp_path)
    [h] = hellos(tl)
    assert (h.src, h.router, h.mask, h.priority, h.dr, h.bdr) == (HUB_T, HUB_T, "255.255.0.0", 255, HUB_T, "0.0.0.0")
    [r] = router_lsas(tl)          # the Network-LSA beside it is not a Router-LSA
    assert (r.src, r.dst, r.router, r.event.node) == (HUB_T, "224.0.0.5", SPOKE2_T, "spoke1")
    assert r.links == (Link(TRANSIT, HUB_T, SPOKE2_T), Link(STUB, "10.1.2.0", "255.255.255.0"))
