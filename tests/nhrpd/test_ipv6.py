"""An engine whose protocol addresses are IPv6 (a dual-stack node's IPv6 side): NHRP
with ar$pro.type 0x86DD over the IPv4 NBMA, registration, the phase 3 redirect and
resolution, every packet read the same by the judge's model."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.codec import Op
from dmvpnkit.nhrpd.config import Config, ConfigError
from dmvpnkit.nhrpd.events import AddRoute, Hairpin, MapNeighbor

from .differential import assert_same
from .harness import HUB, SPOKES, Net, hub_config, spoke_config

HUB6 = "fd00:255::1"
SPOKE6 = {"spoke1": ("fd00:255::11", "fd00:10:0:101::/64"), "spoke2": ("fd00:255::12", "fd00:10:0:102::/64")}
PING6 = bytes(IPv6(src="fd00:10:0:101::10", dst="fd00:10:0:102::10") / ICMPv6EchoRequest() / (b"x" * 100))


def hub6(**kw: Any) -> dict[str, Any]:
    return hub_config(**{"protocol_address": f"{HUB6}/128",
                         "routes": [{"prefix": lan, "via": proto} for proto, lan in SPOKE6.values()], **kw})


def spoke6(name: str, **kw: Any) -> dict[str, Any]:
    proto, lan = SPOKE6[name]
    return spoke_config(name, protocol_address=f"{proto}/128", lan_prefixes=[lan], **kw)


@pytest.fixture
def net6() -> Net:
    net = Net()
    net.add("hub1", hub6())
    for name in SPOKE6:
        net.add(name, spoke6(name))
    net.start()
    return net


def test_registration_is_ipv6_over_the_ipv4_nbma(net6: Net) -> None:
    req = net6.sent("spoke1", Op.REGISTRATION_REQUEST)[0].pkt
    assert (req.pro_type, req.src_nbma, req.src_proto) == (codec.PRO_IPV6, SPOKES["spoke1"]["nbma"], SPOKE6["spoke1"][0])
    assert req.cies[0].prefix_length == 128
    nat = req.extension(codec.NatAddress)
    assert nat is not None and nat.cies[0].client_proto == "::"      # the NHS's address, not known yet
    reply = net6.sent("hub1", Op.REGISTRATION_REPLY, to="spoke1")[0].pkt
    assert reply.pro_type == codec.PRO_IPV6 and reply.cies[0].code == 0
    assert {b["protocol"] for b in net6.engine("hub1").views()["cache"]} == {HUB6, *(p for p, _ in SPOKE6.values())}
    assert net6.engine("spoke1").views()["nhs"][0]["protocol"] == HUB6


def test_redirect_resolution_and_shortcut_for_ipv6_traffic(net6: Net) -> None:
    net6.handle("hub1", Hairpin(PING6))
    ti = net6.sent("hub1", Op.TRAFFIC_INDICATION)[0]
    assert ti.dst == "spoke1" and ti.pkt.pro_type == codec.PRO_IPV6 and ti.pkt.payload == PING6[:128]
    req = net6.sent("spoke1", Op.RESOLUTION_REQUEST)[0].pkt
    assert (req.pro_type, req.dst_proto) == (codec.PRO_IPV6, "fd00:10:0:102::10")
    reply = net6.sent("hub1", Op.RESOLUTION_REPLY, to="spoke1")[0].pkt
    assert reply.cies[0].prefix_length == 64 and reply.cies[0].client_proto == SPOKE6["spoke2"][0]
    s1 = net6.nodes["spoke1"]
    assert MapNeighbor(SPOKE6["spoke2"][0], SPOKES["spoke2"]["nbma"]) in s1.of(MapNeighbor)
    assert s1.of(AddRoute) == [AddRoute("fd00:10:0:102::/64", SPOKE6["spoke2"][0])]


def test_every_ipv6_packet_reads_the_same_in_the_judges_model(net6: Net) -> None:
    net6.handle("hub1", Hairpin(PING6))
    net6.run_for(70)
    assert {w.data[17] for w in net6.wire} >= {Op.REGISTRATION_REQUEST, Op.REGISTRATION_REPLY,
                                                Op.TRAFFIC_INDICATION, Op.RESOLUTION_REQUEST,
                                                Op.RESOLUTION_REPLY}
    for w in net6.wire:
        assert w.data[2:4] == b"\x86\xdd"
        assert_same(w.data)


def test_an_ipv4_hairpin_at_an_ipv6_engine_is_ignored(net6: Net) -> None:
    from scapy.layers.inet import ICMP, IP
    net6.handle("hub1", Hairpin(bytes(IP(src="10.1.1.10", dst="10.1.2.10") / ICMP())))
    assert not net6.sent("hub1", Op.TRAFFIC_INDICATION)


def test_the_ipv6_side_of_a_dual_stack_config() -> None:
    d = spoke_config("spoke1", ipv6={"protocol_address": "fd00:255::11/128", "nhs": [HUB6],
                                     "lan_prefixes": ["fd00:10:0:101::/64"]})
    c = Config.from_dict(d)
    assert c.pro_type == codec.PRO_IPV4 and c.ipv6 is not None
    six = c.ipv6
    assert (six.pro_type, six.protocol_address, six.nhs[0].nbma, six.nhs[0].protocol) == \
        (codec.PRO_IPV6, "fd00:255::11", HUB["nbma"], HUB6)
    assert six.holdtime == c.holdtime and six.shortcut and six.ipv6 is None


@pytest.mark.parametrize(("six", "key"), [
    ({"nhs": [HUB6]}, "ipv6.protocol_address"),
    ({"protocol_address": "10.255.0.11"}, "ipv6.protocol_address"),
    ({"protocol_address": "fd00:255::11", "lan_prefixes": ["10.1.1.0/24"]}, "ipv6.lan_prefixes[0]"),
    ({"protocol_address": "fd00:255::11", "nhs": ["10.255.0.1"]}, "ipv6.nhs[0].protocol"),
    ({"protocol_address": "fd00:255::11", "nhs": [HUB6, HUB6]}, "ipv6.nhs"),
    ({"protocol_address": "fd00:255::11", "colour": "blue"}, "ipv6.colour"),
])
def test_a_bad_ipv6_side_names_its_key(six: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_dict(spoke_config("spoke1", ipv6=six))
    assert e.value.key == key, e.value


def test_an_ipv6_config_takes_no_ipv4_route() -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_dict(hub6(routes=[{"prefix": "10.1.1.0/24", "via": SPOKES["spoke1"]["proto"]}]))
    assert e.value.key == "routes[0].prefix"
