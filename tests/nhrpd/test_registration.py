"""Registration (RFC 2332 5.2.3/5.2.4) and purge (5.2.5/5.2.6) between engines."""

from __future__ import annotations

import itertools

import pytest

from dmvpnkit.nhrp import build
from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.codec import FLAG_N, FLAG_NAT, FLAG_U_REGISTRATION, CieCode, Op
from dmvpnkit.nhrpd.events import (
    MapNeighbor,
    NbmaChanged,
    PacketIn,
    Resolve,
    Send,
    Start,
    Stop,
    UnmapNeighbor,
)

from .harness import HOLD, HUB, SPOKES, T0, Net, hub_config, spoke_config

S1, S2 = SPOKES["spoke1"], SPOKES["spoke2"]


def test_spoke_registers_and_maps_the_nhs(net: Net) -> None:
    req, reply = net.sent("spoke1", Op.REGISTRATION_REQUEST)[0].pkt, net.sent("hub1", to="spoke1")[0].pkt
    assert (req.src_nbma, req.src_proto, req.hopcnt) == (S1["nbma"], S1["proto"], 1)
    assert req.flags == FLAG_NAT                       # unique off; Cisco NAT bit on
    assert req.cies == (codec.Cie(0, 32, 0, HOLD),)    # 5.2.3: the holding time in the CIE
    assert [type(e) for e in req.extensions] == [codec.ForwardTransit, codec.ReverseTransit,
                                                 codec.ResponderAddress, codec.NatAddress, codec.End]
    assert reply.op_type == Op.REGISTRATION_REPLY and reply.request_id == req.request_id
    assert [c.code for c in reply.cies] == [0]
    responder = reply.extension(codec.ResponderAddress)
    assert responder is not None and (responder.cies[0].client_proto, responder.cies[0].client_nbma) == \
        (HUB["proto"], HUB["nbma"])
    assert MapNeighbor(HUB["proto"], HUB["nbma"]) in net.nodes["spoke1"].of(MapNeighbor)
    assert MapNeighbor(S1["proto"], S1["nbma"]) in net.nodes["hub1"].of(MapNeighbor)
    assert net.engine("spoke1").views()["nhs"] == [
        {"interface": "gre1", "fqdn": HUB["nbma"], "nbma": HUB["nbma"], "protocol": HUB["proto"]}]
    hub_cache = {e["protocol"]: e for e in net.engine("hub1").views()["cache"]}
    assert hub_cache[S1["proto"]] == {"protocol": S1["proto"], "nbma": S1["nbma"], "claimed_nbma": S1["nbma"],
                                      "type": "dynamic", "used": False, "interface": "gre1"}
    assert hub_cache[HUB["proto"]]["type"] == "local"


def test_renewal_every_third_of_the_holding_time(net: Net) -> None:
    net.run_for(3 * HOLD + 1)
    times = [w.time for w in net.sent("spoke1", Op.REGISTRATION_REQUEST)]
    assert times == [T0 + k * HOLD / 3 for k in range(10)]
    ids = [w.pkt.request_id for w in net.sent("spoke1", Op.REGISTRATION_REQUEST)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)    # a new request each time
    assert S1["proto"] in {e["protocol"] for e in net.engine("hub1").views()["cache"]}


def test_hub_expires_a_silent_spoke(net: Net) -> None:
    net.cut.add("spoke2")
    net.run_for(HOLD - 1)
    assert S2["proto"] in {e["protocol"] for e in net.engine("hub1").views()["cache"]}
    net.run_for(1)
    # 5.2.0.1: "Cached information SHALL be discarded when the holding time expires."
    assert S2["proto"] not in {e["protocol"] for e in net.engine("hub1").views()["cache"]}
    assert net.nodes["hub1"].of(UnmapNeighbor) == [UnmapNeighbor(S2["proto"])]
    assert S1["proto"] in {e["protocol"] for e in net.engine("hub1").views()["cache"]}
    net.cut.clear()
    net.run_for(70)
    assert S2["proto"] in {e["protocol"] for e in net.engine("hub1").views()["cache"]}


def test_retries_back_off_with_the_same_request_id() -> None:
    net = Net()
    net.add("spoke1", spoke_config("spoke1"))        # no hub: nobody answers
    net.start()
    net.run_for(300)
    sent = net.sent("spoke1", Op.REGISTRATION_REQUEST)
    gaps = [b.time - a.time for a, b in itertools.pairwise(sent)]
    assert gaps[:8] == [1, 2, 4, 8, 16, 32, 64, 64]
    assert {w.pkt.request_id for w in sent} == {sent[0].pkt.request_id}    # 5.2.0.1
    assert all(w.data == sent[0].data for w in sent)


def test_nhs_goes_down_and_comes_back(net: Net) -> None:
    net.cut.add("hub1")
    net.run_for(HOLD / 3 + 16)
    assert UnmapNeighbor(HUB["proto"]) in net.nodes["spoke1"].of(UnmapNeighbor)
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == ""
    net.cut.clear()
    net.run_for(64)
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == HUB["proto"]


def test_configured_nhs_protocol_is_the_destination() -> None:
    net = Net()
    net.add("hub1", hub_config())
    net.add("spoke1", spoke_config("spoke1", nhs=[{"nbma": HUB["nbma"], "protocol": HUB["proto"]}],
                                   unique=True))
    net.start()
    req = net.sent("spoke1", Op.REGISTRATION_REQUEST)[0].pkt
    assert req.dst_proto == HUB["proto"]
    assert req.flags & FLAG_U_REGISTRATION and req.cies[0].prefix_length == 0xFF   # 5.2.3


def test_configured_nhs_shows_its_protocol_only_once_registered() -> None:
    """The NHS view's protocol means "registered" even where it is configured: the lab
    waits on it before it judges bring-up complete."""
    net = Net()
    net.add("hub1", hub_config())
    net.add("spoke1", spoke_config("spoke1", nhs=[{"nbma": HUB["nbma"], "protocol": HUB["proto"]}]))
    net.cut.add("hub1")
    net.start()
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == ""
    net.cut.clear()
    net.run_for(64)
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == HUB["proto"]


def test_unique_conflict_is_refused_with_code_14() -> None:
    net = Net()
    net.add("hub1", hub_config())
    net.add("spoke1", spoke_config("spoke1", unique=True))
    net.start()
    thief = build.registration_request("172.16.99.99", S1["proto"], S1["proto"], 77, HOLD, unique=True)
    acts = net.handle("hub1", PacketIn("172.16.99.99", bytes(thief)))
    reply = codec.decode(next(a for a in acts if isinstance(a, Send)).data)
    assert reply.request_id == 77 and [c.code for c in reply.cies] == [CieCode.UNIQUE_ALREADY_REGISTERED]
    assert reply.cies[0].holding_time == 0         # 5.2.0.1: 0 on a NAK
    entry = next(e for e in net.engine("hub1").views()["cache"] if e["protocol"] == S1["proto"])
    assert (entry["nbma"], entry["claimed_nbma"]) == (S1["nbma"], S1["nbma"])
    # The owner renews without trouble.
    net.run_for(HOLD / 3)
    assert [c.code for c in net.sent("hub1", Op.REGISTRATION_REPLY, to="spoke1")[-1].pkt.cies] == [0]


def test_non_unique_binding_moves() -> None:
    net = Net()
    net.add("hub1", hub_config())
    net.add("spoke1", spoke_config("spoke1"))
    net.start()
    other = build.registration_request("172.16.99.99", S1["proto"], S1["proto"], 77, HOLD)
    acts = net.handle("hub1", PacketIn("172.16.99.99", bytes(other)))
    assert [c.code for c in codec.decode(acts[-1].data).cies] == [0]
    assert MapNeighbor(S1["proto"], "172.16.99.99") in acts


def test_nat_registration_binds_the_post_nat_address() -> None:
    net = Net()
    net.nat[S2["nbma"]] = "198.51.100.2"
    net.add("hub1", hub_config())
    net.add("spoke2", spoke_config("spoke2"))
    net.start()
    entry = next(e for e in net.engine("hub1").views()["cache"] if e["protocol"] == S2["proto"])
    assert (entry["nbma"], entry["claimed_nbma"]) == ("198.51.100.2", S2["nbma"])
    reply = net.sent("hub1", Op.REGISTRATION_REPLY)[0]
    assert reply.dst_nbma == "198.51.100.2"
    nat = reply.pkt.extension(codec.NatAddress)
    assert nat is not None and codec.Cie(0, 32, 0, 0, 0, "198.51.100.2", S2["proto"]) in nat.cies
    # The spoke learns its post-NAT address and offers it when resolving.
    net.handle("spoke2", Resolve("10.1.1.10"))
    res = net.sent("spoke2", Op.RESOLUTION_REQUEST)[0].pkt
    assert res.extension(codec.NatAddress).cies[0].client_nbma == "198.51.100.2"


def test_purge_at_stop_removes_the_binding(net: Net) -> None:
    net.handle("spoke1", Stop())
    purge = net.sent("spoke1", Op.PURGE_REQUEST)[0].pkt
    assert not purge.flags & FLAG_N and purge.cies[0].client_proto == S1["proto"]
    reply = net.sent("hub1", Op.PURGE_REPLY)[0].pkt
    assert reply.request_id == purge.request_id and reply.cies == purge.cies     # 5.2.6
    assert S1["proto"] not in {e["protocol"] for e in net.engine("hub1").views()["cache"]}
    assert UnmapNeighbor(HUB["proto"]) in net.nodes["spoke1"].of(UnmapNeighbor)
    assert any(log.message == "purge acknowledged" for log in net.nodes["spoke1"].logs())
    assert net.engine("spoke1").next_deadline() is None


@pytest.mark.parametrize("no_reply", [False, True])
def test_purge_request_from_a_peer(net: Net, no_reply: bool) -> None:
    req = build.purge_request(S2["nbma"], S2["proto"], HUB["proto"], 99, [S2["proto"]], no_reply=no_reply)
    acts = net.engine("hub1").handle(PacketIn(S2["nbma"], bytes(req)))
    sends = [a for a in acts if isinstance(a, Send)]
    assert UnmapNeighbor(S2["proto"]) in acts
    if no_reply:
        assert sends == []
    else:
        assert [codec.decode(s.data).op_type for s in sends] == [Op.PURGE_REPLY]
        assert codec.decode(sends[0].data).request_id == 99


def test_purge_reply_even_without_a_matching_entry(net: Net) -> None:
    req = build.purge_request(S2["nbma"], S2["proto"], HUB["proto"], 5, ["10.255.0.77"])
    acts = net.engine("hub1").handle(PacketIn(S2["nbma"], bytes(req)))
    assert [codec.decode(a.data).op_type for a in acts if isinstance(a, Send)] == [Op.PURGE_REPLY]


def test_purge_of_another_stations_binding_is_ignored(net: Net) -> None:
    req = build.purge_request("172.16.99.99", "10.255.0.99", HUB["proto"], 5, [S2["proto"]])
    acts = net.engine("hub1").handle(PacketIn("172.16.99.99", bytes(req)))
    assert UnmapNeighbor(S2["proto"]) not in acts


def test_nbma_change_purges_and_reregisters() -> None:
    net = Net()
    net.add("hub1", hub_config())
    net.add("spoke1", spoke_config("spoke1", unique=True))
    net.start()
    net.handle("spoke1", NbmaChanged("172.16.0.111"))
    entry = next(e for e in net.engine("hub1").views()["cache"] if e["protocol"] == S1["proto"])
    assert entry["nbma"] == "172.16.0.111"
    last = net.sent("hub1", Op.REGISTRATION_REPLY)[-1].pkt
    assert [c.code for c in last.cies] == [0]


def test_events_before_start_and_after_stop_are_ignored() -> None:
    net = Net()
    e = net.add("spoke1", spoke_config("spoke1")).engine
    assert [type(a).__name__ for a in e.handle(NbmaChanged("1.2.3.4"))] == ["Log"]
    e.handle(Start())
    e.handle(Stop())
    assert e.next_deadline() is None
    assert all(not isinstance(a, Send) for a in e.handle(Start()))
