"""Resolution through the hub (5.2.1/5.2.2, transit records 5.3.2/5.3.3) and the
DMVPN phase 3 redirect: Traffic Indication -> Resolution -> shortcut route."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP

from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.codec import FLAG_A, FLAG_D, FLAG_Q, FLAG_S, Op
from dmvpnkit.nhrpd.events import AddRoute, DelRoute, Hairpin, MapNeighbor, Resolve, UnmapNeighbor

from .harness import HOLD, HUB, SPOKES, Net, hub_config, spoke_config

S1, S2 = SPOKES["spoke1"], SPOKES["spoke2"]
PING = bytes(IP(src="10.1.1.10", dst="10.1.2.10") / ICMP() / (b"x" * 200))


def _resolve(net: Net) -> None:
    net.handle("spoke1", Resolve("10.1.2.10"))


def test_resolution_through_the_hub(net: Net) -> None:
    _resolve(net)
    req_in = net.sent("spoke1", Op.RESOLUTION_REQUEST)[0].pkt
    req_out = net.sent("hub1", Op.RESOLUTION_REQUEST)[0]
    reply_out = net.sent("spoke2", Op.RESOLUTION_REPLY)[0]
    reply_in = net.sent("hub1", Op.RESOLUTION_REPLY)[0]
    assert req_in.flags & (FLAG_Q | FLAG_S) == FLAG_Q | FLAG_S
    assert req_in.extension(codec.ResponderAddress) == codec.ResponderAddress()   # 5.3.1: asked, empty
    # The hub forwards to the spoke whose LAN holds the target, one hop less, recorded.
    assert req_out.dst == "spoke2" and req_out.pkt.hopcnt == req_in.hopcnt - 1
    assert req_out.pkt.request_id == req_in.request_id
    fwd = req_out.pkt.extension(codec.ForwardTransit)
    assert fwd is not None and [c.client_proto for c in fwd.cies] == [HUB["proto"]]
    # spoke2 answers; the reply goes back through the hub (as FRR routes it).
    assert reply_out.dst == "hub1" and reply_in.dst == "spoke1"
    reply = reply_in.pkt
    assert reply.request_id == req_in.request_id
    assert (reply.src_proto, reply.dst_proto) == (S1["proto"], "10.1.2.10")
    assert reply.flags & (FLAG_Q | FLAG_A | FLAG_D | FLAG_S) == FLAG_Q | FLAG_A | FLAG_D | FLAG_S
    assert reply.cies == (codec.Cie(0, 24, 0, HOLD, 0, S2["nbma"], S2["proto"]),)
    assert [c.client_proto for c in reply.extension(codec.ReverseTransit).cies] == [HUB["proto"]]
    # 5.3.2: the responder does not touch the Forward record.
    assert reply.extension(codec.ForwardTransit) == fwd
    responder = reply.extension(codec.ResponderAddress)
    assert (responder.cies[0].client_proto, responder.cies[0].client_nbma) == (S2["proto"], S2["nbma"])
    assert reply.hopcnt == reply_out.pkt.hopcnt - 1
    s1 = net.nodes["spoke1"]
    assert MapNeighbor(S2["proto"], S2["nbma"]) in s1.of(MapNeighbor)
    assert s1.of(AddRoute) == [AddRoute("10.1.2.0/24", S2["proto"])]
    assert net.engine("spoke1").views()["shortcuts"] == [
        {"prefix": "10.1.2.0/24", "via": S2["proto"], "type": "dynamic", "identity": ""}]
    # spoke2 cached spoke1's stable binding (S bit).
    assert MapNeighbor(S1["proto"], S1["nbma"]) in net.nodes["spoke2"].of(MapNeighbor)


def test_shortcut_expires_at_the_holding_time(net: Net) -> None:
    _resolve(net)
    net.run_for(HOLD - 1)
    assert net.nodes["spoke1"].of(DelRoute) == []
    net.run_for(1)
    assert net.nodes["spoke1"].of(DelRoute) == [DelRoute("10.1.2.0/24")]
    assert UnmapNeighbor(S2["proto"]) in net.nodes["spoke1"].of(UnmapNeighbor)
    assert net.engine("spoke1").views()["shortcuts"] == []


def test_resolution_retries_with_the_same_request_id(net: Net) -> None:
    net.cut.add("spoke2")
    _resolve(net)
    net.run_for(40)
    sent = net.sent("spoke1", Op.RESOLUTION_REQUEST)
    assert [w.time - sent[0].time for w in sent] == [0, 1, 3, 7, 15]
    assert len({w.pkt.request_id for w in sent}) == 1
    assert any("given up" in log.message for log in net.nodes["spoke1"].logs())


def test_duplicate_resolve_is_suppressed(net: Net) -> None:
    net.cut.add("spoke2")
    _resolve(net)
    _resolve(net)
    assert len(net.sent("spoke1", Op.RESOLUTION_REQUEST)) == 1


def test_resolution_of_a_tunnel_address_maps_without_a_route(net: Net) -> None:
    net.handle("spoke1", Resolve(S2["proto"]))
    s1 = net.nodes["spoke1"]
    assert MapNeighbor(S2["proto"], S2["nbma"]) in s1.of(MapNeighbor)
    assert s1.of(AddRoute) == []
    assert net.engine("spoke1").views()["shortcuts"][0]["prefix"] == S2["proto"] + "/32"


def test_unknown_target_is_nakked_with_code_12(net: Net) -> None:
    net.handle("spoke1", Resolve("192.0.2.1"))
    reply = net.sent("hub1", Op.RESOLUTION_REPLY)[0].pkt
    assert reply.cies[0].code == codec.CieCode.NO_BINDING_EXISTS
    assert net.nodes["spoke1"].of(AddRoute) == []


def test_a_bound_address_asked_for_again_is_mapped_again(net: Net) -> None:
    """The kernel asks for the NHS's address (its neighbour entry went: another daemon
    replaced it, or it failed before we mapped it): map it again, resolve nothing."""
    s1 = net.nodes["spoke1"]
    s1.actions.clear()
    net.handle("spoke1", Resolve(HUB["proto"]))
    assert net.sent("spoke1", Op.RESOLUTION_REQUEST) == []
    assert s1.of(MapNeighbor) == [MapNeighbor(HUB["proto"], HUB["nbma"])]


def test_an_nhs_that_went_down_is_never_resolved(net: Net) -> None:
    """With its NHS unanswering, a spoke asked for the NHS's address does not resolve it
    through that NHS: the reply's binding would expire and take the NHS's neighbour with
    it (BGP over phase 2 never reconnected). Registration binds it again."""
    net.cut.add("hub1")
    net.run_for(HOLD)
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == ""      # down: not registered
    net.handle("spoke1", Resolve(HUB["proto"]))
    assert net.sent("spoke1", Op.RESOLUTION_REQUEST) == []


def test_traffic_indication_leads_to_a_shortcut(net: Net) -> None:
    net.handle("hub1", Hairpin(PING))
    ti = net.sent("hub1", Op.TRAFFIC_INDICATION)[0]
    assert ti.dst == "spoke1"                         # the spoke behind the packet's source
    assert (ti.pkt.src_nbma, ti.pkt.src_proto, ti.pkt.dst_proto) == (HUB["nbma"], HUB["proto"], "10.1.1.10")
    assert ti.pkt.hopcnt == 1 and ti.pkt.traffic_code == 0
    assert ti.pkt.payload == PING[:128]
    assert net.sent("spoke1", Op.RESOLUTION_REQUEST)[0].pkt.dst_proto == "10.1.2.10"
    assert net.nodes["spoke1"].of(AddRoute) == [AddRoute("10.1.2.0/24", S2["proto"])]


def test_traffic_indications_are_rate_limited(net: Net) -> None:
    for _ in range(5):
        net.handle("hub1", Hairpin(PING))
    other = bytes(IP(src="10.1.1.77", dst="10.1.3.1") / ICMP())
    net.handle("hub1", Hairpin(other))
    assert len(net.sent("hub1", Op.TRAFFIC_INDICATION)) == 2
    net.run_for(15)
    net.handle("hub1", Hairpin(PING))
    assert len(net.sent("hub1", Op.TRAFFIC_INDICATION)) == 3


def test_no_redirect_no_shortcut() -> None:
    net = Net()
    net.add("hub1", hub_config(redirect=False))
    net.add("spoke1", spoke_config("spoke1", shortcut=False))
    net.start()
    net.handle("hub1", Hairpin(PING))
    assert net.sent("hub1", Op.TRAFFIC_INDICATION) == []
    net2 = Net()
    net2.add("hub1", hub_config())
    net2.add("spoke1", spoke_config("spoke1", shortcut=False))
    net2.start()
    net2.handle("hub1", Hairpin(PING))
    assert len(net2.sent("hub1", Op.TRAFFIC_INDICATION)) == 1
    assert net2.sent("spoke1", Op.RESOLUTION_REQUEST) == []


def test_hairpin_from_an_unknown_source_is_ignored(net: Net) -> None:
    net.handle("hub1", Hairpin(bytes(IP(src="192.0.2.1", dst="10.1.2.10") / ICMP())))
    net.handle("hub1", Hairpin(b"\x60" + b"\x00" * 39))      # IPv6: not ours
    assert net.sent("hub1", Op.TRAFFIC_INDICATION) == []


def _natted() -> Net:
    net = Net()
    net.nat[S2["nbma"]] = "198.51.100.2"
    net.add("hub1", hub_config())
    net.add("spoke1", spoke_config("spoke1"))
    net.add("spoke2", spoke_config("spoke2"))
    net.start()
    return net


def test_shortcut_to_a_natted_spoke_uses_the_public_address() -> None:
    net = _natted()
    _resolve(net)
    reply = net.sent("hub1", Op.RESOLUTION_REPLY, to="spoke1")[0].pkt
    # The NATed responder reports where its NHS sees it (FRR's layout).
    assert reply.extension(codec.NatAddress).cies == (codec.Cie(0, 32, 0, 0, 0, "198.51.100.2", S2["proto"]),)
    assert MapNeighbor(S2["proto"], "198.51.100.2") in net.nodes["spoke1"].of(MapNeighbor)
    cache = {e["protocol"]: e for e in net.engine("spoke1").views()["cache"]}
    assert (cache[S2["proto"]]["nbma"], cache[S2["proto"]]["claimed_nbma"]) == ("198.51.100.2", S2["nbma"])


def test_hub_fills_in_the_nat_extension_of_a_natted_requester() -> None:
    net = _natted()
    net.handle("spoke2", Resolve("10.1.1.10"))
    fwd = net.sent("hub1", Op.RESOLUTION_REQUEST, to="spoke1")[0].pkt
    assert fwd.extension(codec.NatAddress).cies == (codec.Cie(0, 32, 0, 0, 0, "198.51.100.2", S2["proto"]),)
    # spoke1 caches the requester (S bit) at the address it can reach.
    assert MapNeighbor(S2["proto"], "198.51.100.2") in net.nodes["spoke1"].of(MapNeighbor)
    assert AddRoute(S1["lan"], S1["proto"]) in net.nodes["spoke2"].of(AddRoute)


def test_three_spokes_all_pairs(net: Net) -> None:
    net.add("spoke3", spoke_config("spoke3"))
    net.start("spoke3")
    for a, b in (("spoke1", "spoke3"), ("spoke3", "spoke2"), ("spoke2", "spoke1")):
        net.handle(a, Resolve(SPOKES[b]["lan"].replace("0/24", "5")))
        assert AddRoute(SPOKES[b]["lan"], SPOKES[b]["proto"]) in net.nodes[a].of(AddRoute), (a, b)
    assert all(not n.logs("error") for n in net.nodes.values())
