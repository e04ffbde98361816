"""Multicast into the tunnel: copied as unicast GRE to each registered spoke (hub) or
to the NHSs (spoke), as FRR's `ip nhrp map multicast dynamic|NBMA` does."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP

from dmvpnkit.nhrpd.events import Multicast, SendData

from .harness import HUB, SPOKES, Net, hub_config, spoke_config

HELLO = bytes(IP(src=HUB["proto"], dst="224.0.0.5", ttl=1) / ICMP())


def lab(multicast: bool = True, spokes: tuple[str, ...] = ("spoke1", "spoke2")) -> Net:
    net = Net()
    net.add("hub1", hub_config(multicast=multicast))
    for name in spokes:
        net.add(name, spoke_config(name, multicast=multicast))
    net.start()
    return net


def copies(net: Net, node: str, packet: bytes = HELLO) -> list[SendData]:
    return [a for a in net.engine(node).handle(Multicast(packet)) if isinstance(a, SendData)]


def test_hub_copies_to_every_registered_spoke() -> None:
    got = copies(lab(), "hub1")
    assert sorted(c.dst_nbma for c in got) == [SPOKES[n]["nbma"] for n in ("spoke1", "spoke2")]
    assert {c.packet for c in got} == {HELLO}


def test_hub_copies_only_to_spokes_that_registered() -> None:
    got = copies(lab(spokes=("spoke1",)), "hub1")
    assert [c.dst_nbma for c in got] == [SPOKES["spoke1"]["nbma"]]


def test_spoke_copies_to_its_nhs() -> None:
    spoke_hello = bytes(IP(src=SPOKES["spoke1"]["proto"], dst="224.0.0.5") / ICMP())
    assert [c.dst_nbma for c in copies(lab(), "spoke1", spoke_hello)] == [HUB["nbma"]]


def test_nothing_is_copied_with_multicast_off_or_for_unicast() -> None:
    assert copies(lab(multicast=False), "hub1") == []
    unicast = bytes(IP(src=HUB["proto"], dst=SPOKES["spoke1"]["proto"]) / ICMP())
    net = lab()
    assert copies(net, "hub1", unicast) == [] and copies(net, "hub1", b"\x45garbage") == []
