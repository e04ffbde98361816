"""Routes a routing protocol installed (BGP, OSPF beside the node): a hub without
configured routes finds the spoke behind a hairpinned packet's source by them."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP

from dmvpnkit.nhrpd.codec import Op
from dmvpnkit.nhrpd.events import Hairpin, Log, Routes

from .harness import SPOKES, Net, hub_config, spoke_config

PING = bytes(IP(src="10.1.1.10", dst="10.1.2.10") / ICMP())
S1 = SPOKES["spoke1"]


def lab() -> Net:
    net = Net()
    net.add("hub1", hub_config(routes=[]))          # as with --routing: no LAN routes configured
    for name in ("spoke1", "spoke2"):
        net.add(name, spoke_config(name))
    net.start()
    return net


def test_hub_indicates_by_learned_routes() -> None:
    net = lab()
    net.handle("hub1", Hairpin(PING))
    assert net.sent("hub1", Op.TRAFFIC_INDICATION) == []       # nobody known behind 10.1.1.10
    net.handle("hub1", Routes(((S1["lan"], S1["proto"]),)))
    net.handle("hub1", Hairpin(PING))
    [ti] = net.sent("hub1", Op.TRAFFIC_INDICATION)
    assert ti.dst_nbma == S1["nbma"]


def test_routes_replace_the_learned_set_and_reject_non_ipv4() -> None:
    net = lab()
    net.handle("hub1", Routes(((S1["lan"], S1["proto"]),)))
    acts = net.handle("hub1", Routes((("not-a-prefix", S1["proto"]),)))
    assert any(isinstance(a, Log) and a.level == "error" for a in acts)
    net.handle("hub1", Hairpin(PING))
    assert net.sent("hub1", Op.TRAFFIC_INDICATION) == []       # the first set is gone
