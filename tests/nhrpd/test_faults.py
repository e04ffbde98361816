"""Every Fault switch, and what it visibly breaks (the suite's mutation matrix rests
on these effects). Each test runs the same scenario with and without the fault."""

from __future__ import annotations

from dataclasses import replace

from scapy.layers.inet import ICMP, IP

from dmvpnkit.nhrp import build
from dmvpnkit.nhrp.build import Malformation, malform
from dmvpnkit.nhrp.model import DecodeError
from dmvpnkit.nhrp.model import decode as model_decode
from dmvpnkit.nhrpd import codec, defects
from dmvpnkit.nhrpd.codec import FLAG_U_REGISTRATION, CieCode, ErrorCode, Op
from dmvpnkit.nhrpd.config import Config
from dmvpnkit.nhrpd.events import (AddRoute, DelRoute, FlushRoutes, Hairpin, Multicast, NbmaChanged, PacketIn,
                                   Resolve, Send, SendData, Start, Stop)
from dmvpnkit.nhrpd.faults import Fault
from dmvpnkit.nhrpd.ipsec import IpsecConfig, Protection, for_node, went_down
from dmvpnkit.nhrpd.nflog import NFULA_CFG_QTHRESH, nflog_config

from .harness import HOLD, HUB, SPOKES, Net, hub_config, spoke_config

S1, S2 = SPOKES["spoke1"], SPOKES["spoke2"]
PEER = "172.16.0.99"
PING = bytes(IP(src="10.1.1.10", dst="10.1.2.10") / ICMP())


def lab(hub: tuple[Fault, ...] = (), spoke: tuple[Fault, ...] = (), cut: tuple[str, ...] = (), **spoke_kw) -> Net:
    net = Net()
    net.add("hub1", hub_config(faults=[f.value for f in hub]))
    for name in ("spoke1", "spoke2"):
        net.add(name, spoke_config(name, faults=[f.value for f in spoke], **spoke_kw))
    net.cut.update(cut)
    net.start()
    return net


def probe(net: Net, data: bytes, node: str = "hub1") -> list[codec.Packet]:
    return [codec.decode(a.data) for a in net.engine(node).handle(PacketIn(PEER, data)) if isinstance(a, Send)]


def cache(net: Net, node: str = "hub1") -> dict[str, dict]:
    """`node`'s cache view, by protocol address."""
    return {e["protocol"]: e for e in net.engine(node).views()["cache"]}


def test_every_fault_has_a_test() -> None:
    names = {name for name in globals() if name.startswith("test_")}
    for fault in Fault:
        assert f"test_{fault.name.lower()}" in names, fault


def test_skip_traffic_indication() -> None:
    for faults, count in (((), 1), ((Fault.SKIP_TRAFFIC_INDICATION,), 0)):
        net = lab(hub=faults)
        net.handle("hub1", Hairpin(PING))
        assert len(net.sent("hub1", Op.TRAFFIC_INDICATION)) == count


def test_traffic_indication_zero_source() -> None:
    """The carried packet loses its source address, only that: spoke1 still resolves
    its destination."""
    for faults, source in (((), "10.1.1.10"), ((Fault.TRAFFIC_INDICATION_ZERO_SOURCE,), "0.0.0.0")):
        net = lab(hub=faults)
        net.handle("hub1", Hairpin(PING))
        [ti] = [w.pkt for w in net.sent("hub1", Op.TRAFFIC_INDICATION)]
        inner = IP(ti.payload)
        assert (inner.src, inner.dst, bytes(inner.payload)) == (source, "10.1.2.10", bytes(IP(PING).payload))
        assert [w.pkt.dst_proto for w in net.sent("spoke1", Op.RESOLUTION_REQUEST)] == ["10.1.2.10"]


def test_ignore_traffic_indication() -> None:
    for faults, count in (((), 1), ((Fault.IGNORE_TRAFFIC_INDICATION,), 0)):
        net = lab(spoke=faults)
        net.handle("hub1", Hairpin(PING))
        assert len(net.nodes["spoke1"].of(AddRoute)) == count


def test_bad_checksum() -> None:
    net = lab(spoke=(Fault.BAD_CHECKSUM,))
    assert all(not w.pkt.chksum_ok for w in net.sent("spoke1"))
    assert S1["proto"] not in cache(net)          # the hub drops them
    assert all(w.pkt.chksum_ok for w in net.sent("hub1"))


def test_accept_bad_checksum() -> None:
    data = malform(build.registration_request(PEER, "10.255.0.99", "10.255.0.99", 1, HOLD),
                   Malformation.BAD_CHECKSUM)
    assert probe(lab(), data) == []
    assert [p.op_type for p in probe(lab(hub=(Fault.ACCEPT_BAD_CHECKSUM,)), data)] == [Op.REGISTRATION_REPLY]


def test_accept_any_version() -> None:
    data = malform(build.registration_request(PEER, "10.255.0.99", "10.255.0.99", 1, HOLD),
                   Malformation.WRONG_VERSION)
    assert [p.op_type for p in probe(lab(), data)] == [Op.ERROR_INDICATION]
    assert [p.op_type for p in probe(lab(hub=(Fault.ACCEPT_ANY_VERSION,)), data)] == [Op.REGISTRATION_REPLY]


def test_ignore_holdtime() -> None:
    for faults, kept in (((), False), ((Fault.IGNORE_HOLDTIME,), True)):
        net = lab(hub=faults, spoke=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        net.cut.add("spoke2")
        net.run_for(3 * HOLD)
        assert (S2["proto"] in cache(net)) is kept
        assert bool(net.engine("spoke1").views()["shortcuts"]) is kept


def test_wrong_request_id() -> None:
    net = lab(hub=(Fault.WRONG_REQUEST_ID,))
    req, reply = net.sent("spoke1", Op.REGISTRATION_REQUEST)[0].pkt, net.sent("hub1", to="spoke1")[0].pkt
    assert reply.request_id == req.request_id + 1
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == ""       # not matched: not registered


def test_no_error_indication() -> None:
    data = malform(build.resolution_request(PEER, "10.255.0.99", "10.1.2.10", 5), Malformation.HOPCNT_ZERO)
    assert [p.error_code for p in probe(lab(), data)] == [ErrorCode.HOP_COUNT_EXCEEDED]
    assert probe(lab(hub=(Fault.NO_ERROR_INDICATION,)), data) == []


def test_drop_nat_extension() -> None:
    for faults, present in (((), True), ((Fault.DROP_NAT_EXTENSION,), False)):
        net = lab(hub=faults, spoke=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        for w in net.sent("spoke1", Op.REGISTRATION_REQUEST) + net.sent("hub1", Op.REGISTRATION_REPLY) \
                + net.sent("spoke1", Op.RESOLUTION_REQUEST) + net.sent("spoke2", Op.RESOLUTION_REPLY):
            assert (w.pkt.extension(codec.NatAddress) is not None) is present


def test_bind_claimed_nbma() -> None:
    for faults, seen in (((), "198.51.100.2"), ((Fault.BIND_CLAIMED_NBMA,), S2["nbma"])):
        net = Net()
        net.nat[S2["nbma"]] = "198.51.100.2"
        net.add("hub1", hub_config(faults=[f.value for f in faults]))
        net.add("spoke2", spoke_config("spoke2"))
        net.start()
        assert cache(net)[S2["proto"]]["nbma"] == seen


def test_register_unique() -> None:
    for faults, flag in (((), 0), ((Fault.REGISTER_UNIQUE,), FLAG_U_REGISTRATION)):
        net = lab(spoke=faults)
        assert net.sent("spoke1", Op.REGISTRATION_REQUEST)[0].pkt.flags & FLAG_U_REGISTRATION == flag


def test_no_renewal() -> None:
    for faults, count in (((), 4), ((Fault.NO_RENEWAL,), 1)):
        net = lab(spoke=faults)
        net.run_for(HOLD + 1)
        assert len(net.sent("spoke1", Op.REGISTRATION_REQUEST)) == count
        assert (S1["proto"] in cache(net)) is (count > 1)


def test_no_purge_reply() -> None:
    for faults, replies in (((), 1), ((Fault.NO_PURGE_REPLY,), 0)):
        net = lab(hub=faults)
        net.handle("spoke1", Stop())
        assert len(net.sent("hub1", Op.PURGE_REPLY)) == replies
        assert S1["proto"] not in cache(net)


def test_ignore_purge() -> None:
    net = lab(hub=(Fault.IGNORE_PURGE,))
    net.handle("spoke1", Stop())
    assert net.sent("hub1", Op.PURGE_REPLY) == [] and S1["proto"] in cache(net)


def test_no_hopcnt_decrement() -> None:
    for faults, drop in (((), 1), ((Fault.NO_HOPCNT_DECREMENT,), 0)):
        net = lab(hub=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        before = net.sent("spoke1", Op.RESOLUTION_REQUEST)[0].pkt.hopcnt
        assert net.sent("hub1", Op.RESOLUTION_REQUEST)[0].pkt.hopcnt == before - drop


def test_no_transit_record() -> None:
    for faults, record in (((), [HUB["proto"]]), ((Fault.NO_TRANSIT_RECORD,), [])):
        net = lab(hub=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        fwd = net.sent("hub1", Op.RESOLUTION_REQUEST)[0].pkt.extension(codec.ForwardTransit)
        rev = net.sent("hub1", Op.RESOLUTION_REPLY)[0].pkt.extension(codec.ReverseTransit)
        assert [c.client_proto for c in fwd.cies] == record
        assert [c.client_proto for c in rev.cies] == record


def test_accept_unique_conflict() -> None:
    thief = bytes(build.registration_request(PEER, S1["proto"], S1["proto"], 9, HOLD, unique=True))
    for faults, code, nbma in (((), CieCode.UNIQUE_ALREADY_REGISTERED, S1["nbma"]),
                               ((Fault.ACCEPT_UNIQUE_CONFLICT,), CieCode.SUCCESS, PEER)):
        net = lab(hub=faults, unique=True)
        assert [c.code for c in probe(net, thief)[0].cies] == [code]
        assert cache(net)[S1["proto"]]["nbma"] == nbma


def test_no_responder_extension() -> None:
    for faults, filled in (((), True), ((Fault.NO_RESPONDER_EXTENSION,), False)):
        net = lab(hub=faults, spoke=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        for w in (net.sent("hub1", Op.REGISTRATION_REPLY)[0], net.sent("spoke2", Op.RESOLUTION_REPLY)[0]):
            assert bool(w.pkt.extension(codec.ResponderAddress).cies) is filled


def test_drop_unknown_extension() -> None:
    data = malform(build.registration_request(PEER, "10.255.0.99", "10.255.0.99", 1, HOLD),
                   Malformation.UNKNOWN_NONCOMPULSORY_EXT)
    for faults, back in (((), True), ((Fault.DROP_UNKNOWN_EXTENSION,), False)):
        reply = probe(lab(hub=faults), data)[0]
        assert any(isinstance(e, codec.UnknownExtension) for e in reply.extensions) is back


def test_zero_hopcnt() -> None:
    net = lab(hub=(Fault.ZERO_HOPCNT,), spoke=(Fault.ZERO_HOPCNT,))
    net.handle("spoke1", Resolve("10.1.2.10"))
    assert {w.pkt.hopcnt for w in net.sent("spoke1")} == {0}
    assert {w.pkt.hopcnt for w in net.sent("hub1", Op.REGISTRATION_REPLY)} == {0}
    # The hub, as a transit NHS, refuses to forward a request with hop count 0.
    assert [w.pkt.error_code for w in net.sent("hub1", Op.ERROR_INDICATION)] == [ErrorCode.HOP_COUNT_EXCEEDED]


# The IPsec switches act in the Linux node (nhrpd/ipsec.py), not in the engine: the lab
# catches them (tests/fixtures/test_mutations.py::test_ipsec_fault_switches_are_caught).
# Here: what each sets, and that NHRP itself stays the same.
def _spoke_protection(*faults: Fault) -> Protection | None:
    cfg = Config.from_dict({**spoke_config("spoke1"), "faults": [f.value for f in faults]})
    return for_node(cfg, IpsecConfig(vici="/run/charon.vici", identity=S1["proto"]))


def _ipsec_effects(fault: Fault) -> tuple[Protection | None, list]:
    net = lab(spoke=(fault,))
    net.handle("spoke1", Resolve("10.1.2.10"))
    return _spoke_protection(fault), [w.pkt for w in net.sent("spoke1")]


def _clean_spoke_packets() -> list:
    net = lab()
    net.handle("spoke1", Resolve("10.1.2.10"))
    return [w.pkt for w in net.sent("spoke1")]


def test_ipsec_keep_sa() -> None:
    prot, sent = _ipsec_effects(Fault.IPSEC_KEEP_SA)
    assert prot is not None and not prot.release_shortcuts and prot.wait and prot.protect_neighbours
    assert sent == _clean_spoke_packets()


def test_ipsec_cleartext_first() -> None:
    prot, sent = _ipsec_effects(Fault.IPSEC_CLEARTEXT_FIRST)
    assert prot is not None and not prot.wait and prot.release_shortcuts and prot.protect_neighbours
    assert sent == _clean_spoke_packets()


def test_ipsec_register_in_clear_once() -> None:
    """Nothing drops unprotected GRE; a spoke's first Registration Request (resends too,
    until answered) and a hub's first Registration Reply skip the SA, nothing else."""
    prot, sent = _ipsec_effects(Fault.IPSEC_REGISTER_IN_CLEAR_ONCE)
    assert prot is not None and not prot.closed and prot.wait and prot.release_shortcuts and prot.protect_neighbours
    assert sent == _clean_spoke_packets()
    hub = for_node(Config.from_dict({**hub_config(), "faults": [Fault.IPSEC_REGISTER_IN_CLEAR_ONCE.value]}),
                   IpsecConfig(vici="/run/charon.vici", identity=HUB["proto"]))
    assert hub is not None and not hub.closed and not hub.protect_neighbours     # binding a spoke waits for no SA
    net = lab(hub=(Fault.IPSEC_REGISTER_IN_CLEAR_ONCE,), spoke=(Fault.IPSEC_REGISTER_IN_CLEAR_ONCE,),
              cut=("hub1",))
    net.run_for(1.5)                    # spoke1's first request, unanswered, and its resend
    net.cut.clear()
    net.run_for(HOLD / 3 + 3)           # answered (at the third), then refreshed
    for name, op in (("spoke1", Op.REGISTRATION_REQUEST), ("hub1", Op.REGISTRATION_REPLY)):
        sends = [codec.decode(a.data) for a in net.nodes[name].of(Send) if a.clear]
        assert sends and {p.op_type for p in sends} == {op}, (name, sends)
    requests = [a for a in net.nodes["spoke1"].of(Send) if codec.decode(a.data).op_type == Op.REGISTRATION_REQUEST]
    assert [a.clear for a in requests][:3] == [True, True, True] and not requests[-1].clear, requests
    replies = [a.clear for a in net.nodes["hub1"].of(Send) if codec.decode(a.data).op_type == Op.REGISTRATION_REPLY]
    assert replies[0] and not any(replies[1:]), replies
    assert all(not a.clear for a in lab().nodes["hub1"].of(Send))


def test_ipsec_no_shortcut_sa() -> None:
    prot, sent = _ipsec_effects(Fault.IPSEC_NO_SHORTCUT_SA)
    assert prot is not None and not prot.protect_neighbours and prot.wait and prot.release_shortcuts
    assert sent == _clean_spoke_packets()


def test_new_request_id_on_resend() -> None:
    for faults, fresh in (((), False), ((Fault.NEW_REQUEST_ID_ON_RESEND,), True)):
        net = lab(spoke=faults, cut=("hub1",))      # nothing is answered: spoke1 resends
        net.run_for(10)
        ids = [w.pkt.request_id for w in net.sent("spoke1", Op.REGISTRATION_REQUEST)][-4:]
        assert len(ids) == 4 and (len(set(ids)) == 4) is fresh, ids
        net = lab(spoke=faults)
        net.cut.add("spoke2")               # the Resolution Request is forwarded, never answered
        net.handle("spoke1", Resolve("10.1.2.10"))
        net.run_for(4)
        ids = [w.pkt.request_id for w in net.sent("spoke1", Op.RESOLUTION_REQUEST)]
        assert len(ids) == 3 and (len(set(ids)) == 3) is fresh, ids


def test_no_registration_retry() -> None:
    for faults, count in (((), 5), ((Fault.NO_REGISTRATION_RETRY,), 1)):
        net = lab(spoke=faults, cut=("hub1",))
        net.run_for(HOLD / 3 - 1)           # attempts at +0, +1, +3, +7, +15 s; the refresh would be at +20
        assert len(net.sent("spoke1", Op.REGISTRATION_REQUEST)) == count


def test_impatient_resolution() -> None:
    for faults, installed in (((), True), ((Fault.IMPATIENT_RESOLUTION,), False)):
        net = lab(spoke=faults)
        net.cut.add("spoke1")               # the request is lost: the reply comes by hand, late
        net.handle("spoke1", Resolve("10.1.2.10"))
        req = net.sent("spoke1", Op.RESOLUTION_REQUEST)[-1].pkt
        net.run_for(0.3)
        reply = codec.Packet(Op.RESOLUTION_REPLY, HUB["nbma"], S1["proto"], "10.1.2.10", req.flags, req.request_id,
                             (codec.Cie(0, 24, 1500, HOLD, 0, S2["nbma"], S2["proto"]),))
        net.cut.discard("spoke1")
        net.handle("spoke1", PacketIn(HUB["nbma"], codec.encode(reply)))
        assert bool(net.engine("spoke1").views()["shortcuts"]) is installed


def test_shortcut_ignores_holdtime() -> None:
    for faults, kept in (((), False), ((Fault.SHORTCUT_IGNORES_HOLDTIME,), True)):
        net = lab(spoke=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        assert net.engine("spoke1").views()["shortcuts"]
        net.cut.add("spoke2")
        net.run_for(3 * HOLD)
        assert S2["proto"] not in cache(net)          # bindings still expire
        assert bool(net.engine("spoke1").views()["shortcuts"]) is kept


# -- the *-once switches: only the first Registration Reply the hub sends is spoiled ------
# Every node has the switch (as in the mutation matrix); what the suite's capture makes
# of each packet is judged with its own decoder, by the checks of its 5.1 cases.
def _header_defects(w) -> set[str]:
    try:
        m = model_decode(w.data)
    except DecodeError:
        return {"decodes"}
    checks = {"checksum": m.chksum_ok, "pktsz": m.pktsz == len(w.data), "version": m.version == 1,
              "afn": (m.afn, m.pro_type, m.shtl & 0x3F) == (1, 0x0800, 4), "hopcnt": m.hopcnt > 0,
              "source": w.src_nbma == net_nbma(w.src)}
    return {name for name, ok in checks.items() if not ok}


def net_nbma(node: str) -> str:
    return HUB["nbma"] if node == "hub1" else SPOKES[node]["nbma"]


def _once(fault: Fault | None) -> Net:
    """Bring-up (spoke1 registers first), two seconds for resends, then a resolution."""
    net = lab(hub=(fault,) if fault else (), spoke=(fault,) if fault else ())
    net.run_for(2.5)
    net.handle("spoke1", Resolve("10.1.2.10"))
    assert {S1["proto"], S2["proto"]} <= set(cache(net))
    for name in ("spoke1", "spoke2"):
        assert net.engine(name).views()["nhs"][0]["protocol"] == HUB["proto"], name
    assert [s["via"] for s in net.engine("spoke1").views()["shortcuts"]] == [S2["proto"]]
    return net


def _spoiled(fault: Fault, defect: str | None) -> Net:
    """Of every packet any node sent, exactly the hub's first Registration Reply (to
    spoke1) has ``defect``, and nothing else is wrong with it or any other."""
    assert not any(_header_defects(w) for w in _once(None).wire)
    net = _once(fault)
    first = net.sent("hub1", Op.REGISTRATION_REPLY)[0]
    assert first.dst == "spoke1"
    bad = [(w, _header_defects(w)) for w in net.wire if _header_defects(w)]
    assert bad == ([(first, {defect})] if defect else []), bad
    return net


def _resent(net: Net) -> list[int]:
    """spoke1's Registration Request IDs over the bring-up."""
    return [w.pkt.request_id for w in net.sent("spoke1", Op.REGISTRATION_REQUEST)]


def _dropped_and_resent(net: Net, error_indication: bool) -> None:
    """spoke1 dropped the spoiled reply and resent the same request a second later."""
    ids = _resent(net)
    assert len(ids) == 2 and ids[0] == ids[1], ids
    eis = [w.pkt.error_code for w in net.sent("spoke1", Op.ERROR_INDICATION)]
    assert eis == ([ErrorCode.PROTOCOL_ERROR] if error_indication else []), eis


def test_bad_checksum_once() -> None:
    net = _spoiled(Fault.BAD_CHECKSUM_ONCE, "checksum")
    _dropped_and_resent(net, error_indication=False)


def test_garbled_once() -> None:
    net = _spoiled(Fault.GARBLED_ONCE, "decodes")
    first = net.sent("hub1", Op.REGISTRATION_REPLY)[0].data
    assert codec.checksum_ok(first) and first[-4:] == b"\x80\x00\x00\x04"    # End claims 4 octets
    _dropped_and_resent(net, error_indication=True)


def test_pktsz_padding_once() -> None:
    net = _spoiled(Fault.PKTSZ_PADDING_ONCE, "pktsz")
    first = net.sent("hub1", Op.REGISTRATION_REPLY)[0].data
    assert len(first) == int.from_bytes(first[10:12], "big") + 4 and first.endswith(b"\x00" * 4)
    assert len(_resent(net)) == 1           # accepted as it is: ar$pktsz says where it ends


def test_wrong_version_once() -> None:
    net = _spoiled(Fault.WRONG_VERSION_ONCE, "version")
    assert model_decode(net.sent("hub1", Op.REGISTRATION_REPLY)[0].data).version == 2
    _dropped_and_resent(net, error_indication=True)


def test_wrong_afn_once() -> None:
    net = _spoiled(Fault.WRONG_AFN_ONCE, "afn")
    assert model_decode(net.sent("hub1", Op.REGISTRATION_REPLY)[0].data).afn == 2
    _dropped_and_resent(net, error_indication=True)


def test_wrong_pro_type_once() -> None:
    net = _spoiled(Fault.WRONG_PRO_TYPE_ONCE, "afn")    # the family fields: ar$pro.type 0x86DD, IPv4 addresses
    assert net.sent("hub1", Op.REGISTRATION_REPLY)[0].data[2:4] == b"\x86\xdd"
    _dropped_and_resent(net, error_indication=True)


def test_zero_hopcnt_once() -> None:
    net = _spoiled(Fault.ZERO_HOPCNT_ONCE, "hopcnt")
    assert len(_resent(net)) == 1           # a reply that ends here is not forwarded: accepted


def test_refuse_registration_once() -> None:
    net = _spoiled(Fault.REFUSE_REGISTRATION_ONCE, None)
    replies = [w.pkt for w in net.sent("hub1", Op.REGISTRATION_REPLY)]
    assert [[(c.code, c.holding_time) for c in r.cies] for r in replies[:2]] == \
        [[(CieCode.INSUFFICIENT_RESOURCES, 0)], [(CieCode.SUCCESS, HOLD)]]
    assert all(c.code == CieCode.SUCCESS for r in replies[1:] for c in r.cies)
    ids = _resent(net)                      # the NAK answered the first: the next one is new
    assert len(ids) == 2 and ids[0] != ids[1] and replies[0].request_id == ids[0], ids
    # Refused means not bound: the hub's cache had no spoke1 until the second request.
    net = lab(hub=(Fault.REFUSE_REGISTRATION_ONCE,))
    assert S1["proto"] not in cache(net) and S2["proto"] in cache(net)


def test_reply_from_tunnel_address_once() -> None:
    net = _spoiled(Fault.REPLY_FROM_TUNNEL_ADDRESS_ONCE, "source")
    first = net.sent("hub1", Op.REGISTRATION_REPLY)[0]
    assert first.src_nbma == HUB["proto"] and first.dst_nbma == S1["nbma"]
    assert [a.src for a in net.nodes["hub1"].of(Send) if a.src] == [HUB["proto"]]    # one Send from elsewhere
    assert len(_resent(net)) == 1           # accepted: the NHS is bound at its configured NBMA address
    assert cache(net, "spoke1")[HUB["proto"]]["nbma"] == HUB["nbma"]
    # Under IPsec the fail-closed rule drops that reply (no ESP policy covers its source):
    # the matrix leaves the switch out there.
    assert Fault.REPLY_FROM_TUNNEL_ADDRESS_ONCE.acts(ipsec=False)
    assert not Fault.REPLY_FROM_TUNNEL_ADDRESS_ONCE.acts(ipsec=True)


def test_reply_to_another_spoke_once() -> None:
    """spoke2's first reply (spoke1 is bound by then) goes to spoke1, which drops it;
    spoke2 resends the same request and is answered at home. One reply goes astray."""
    net = _once(Fault.REPLY_TO_ANOTHER_SPOKE_ONCE)
    ids = [w.pkt.request_id for w in net.sent("spoke2", Op.REGISTRATION_REQUEST)]
    assert len(ids) == 2 and ids[0] == ids[1], ids
    assert [w.dst for w in net.sent("hub1", Op.REGISTRATION_REPLY) if w.pkt.src_proto == S2["proto"]] == \
        ["spoke1", "spoke2"]
    assert all(w.dst == "spoke1" for w in net.sent("hub1", Op.REGISTRATION_REPLY) if w.pkt.src_proto == S1["proto"])


def test_once_switches_spoil_one_reply_per_run() -> None:
    """On a spoke the switches do nothing; a restarted hub (a fresh daemon) spoils its
    own first reply again, and the spokes' next refresh recovers from it as well."""
    for fault in defects.ONCE:
        net = lab(spoke=(fault,))
        net.run_for(2.5)
        assert not any(_header_defects(w) for w in net.wire), fault
        assert all(c.code == 0 for w in net.sent("hub1", Op.REGISTRATION_REPLY) for c in w.pkt.cies)
    net = _spoiled(Fault.WRONG_VERSION_ONCE, "version")
    net.add("hub1", hub_config(faults=[Fault.WRONG_VERSION_ONCE.value])).engine.handle(Start())
    mark = len(net.wire)
    net.run_for(HOLD / 3 + 3)           # both spokes refresh; the first refresh answered is spoiled
    bad = [w for w in net.wire[mark:] if _header_defects(w)]
    assert [(w.src, w.data[17], _header_defects(w)) for w in bad] == [("hub1", Op.REGISTRATION_REPLY, {"version"})]
    assert {S1["proto"], S2["proto"]} <= set(cache(net))


# -- the first-request switches: only the first Registration Request a spoke sends -------
def _requests(net: Net, name: str) -> list[codec.Packet]:
    return [w.pkt for w in net.sent(name, Op.REGISTRATION_REQUEST)]


def test_zero_holdtime_once() -> None:
    net = _spoiled(Fault.ZERO_HOLDTIME_ONCE, None)      # no header defect anywhere
    for name in ("spoke1", "spoke2"):                  # each spoke's own first request
        assert [[c.holding_time for c in p.cies] for p in _requests(net, name)] == [[0]], name
    assert len(_resent(net)) == 1                       # answered and accepted at once
    assert [(c.code, c.holding_time) for c in net.sent("hub1", Op.REGISTRATION_REPLY)[0].pkt.cies] == \
        [(CieCode.SUCCESS, 0)]                          # the CIE, echoed
    net.run_for(HOLD / 3)                               # the refresh holds the hold time again
    assert [[c.holding_time for c in p.cies] for p in _requests(net, "spoke1")] == [[0], [HOLD]]
    # The hub took 0 for its own default: the binding lives a hold time, not no time.
    net = lab(hub=(Fault.ZERO_HOLDTIME_ONCE,), spoke=(Fault.ZERO_HOLDTIME_ONCE,))
    net.cut.add("spoke1")
    net.run_for(HOLD - 1)
    assert S1["proto"] in cache(net)
    net.run_for(2)
    assert S1["proto"] not in cache(net)


def test_nbma_as_protocol_once() -> None:
    net = _spoiled(Fault.NBMA_AS_PROTOCOL_ONCE, None)
    _dropped_and_resent(net, error_indication=False)
    for name, s in (("spoke1", S1), ("spoke2", S2)):
        first, resent = _requests(net, name)[:2]
        assert (first.src_proto, resent.src_proto) == (s["nbma"], s["proto"]), name
        assert replace(first, src_proto=s["proto"]) == resent     # else the same request, ID and all
    replies = [w.pkt for w in net.sent("hub1", Op.REGISTRATION_REPLY, to="spoke1")]
    assert [(r.src_proto, [c.code for c in r.cies]) for r in replies[:2]] == \
        [(S1["nbma"], [CieCode.SUCCESS]), (S1["proto"], [CieCode.SUCCESS])]     # both answered
    # The hub bound what the first one claimed; never refreshed, it expires.
    assert cache(net)[S1["nbma"]]["nbma"] == S1["nbma"]
    net.run_for(HOLD + 1)
    assert S1["nbma"] not in cache(net) and S1["proto"] in cache(net)
    # A hub not yet listening (bring-up): resent spoiled, one request, until answered; then clean.
    net = lab(hub=(Fault.NBMA_AS_PROTOCOL_ONCE,), spoke=(Fault.NBMA_AS_PROTOCOL_ONCE,), cut=("hub1",))
    net.run_for(1.5)                    # sent at +0 and +1, both lost
    net.cut.discard("hub1")
    net.run_for(6)                      # +3: answered and dropped; +7: clean
    reqs = _requests(net, "spoke1")
    assert [p.src_proto for p in reqs] == [S1["nbma"]] * 3 + [S1["proto"]]
    assert len({p.request_id for p in reqs}) == 1
    assert net.engine("spoke1").views()["nhs"][0]["protocol"] == HUB["proto"]


# -- the other targeted switches -----------------------------------------------------------
NEW_NBMA = "172.16.0.21"
HUB2 = {"proto": "10.255.0.2", "nbma": "172.16.0.2"}
RUNT = b"\x00\x01\x08\x00garbage"      # the suite's runt (robustness/test_malformed.py)


def test_keep_first_nbma() -> None:
    for faults, bound in (((), NEW_NBMA), ((Fault.KEEP_FIRST_NBMA,), S1["nbma"])):
        net = lab(hub=faults, spoke=faults)
        mark = len(net.wire)
        net.handle("spoke1", NbmaChanged(NEW_NBMA))
        # spoke1 purged its registration and registered from the new address; answered there.
        assert [w.data[17] for w in net.wire[mark:] if w.src == "spoke1"] == [Op.PURGE_REQUEST,
                                                                             Op.REGISTRATION_REQUEST]
        reply = net.sent("hub1", Op.REGISTRATION_REPLY)[-1]
        assert (reply.dst_nbma, [c.code for c in reply.pkt.cies]) == (NEW_NBMA, [CieCode.SUCCESS])
        entry = cache(net)[S1["proto"]]
        assert (entry["nbma"], entry["claimed_nbma"]) == (bound, NEW_NBMA)
        assert cache(net)[S2["proto"]]["nbma"] == S2["nbma"]


def test_stale_source_nbma() -> None:
    for faults, claimed in (((), NEW_NBMA), ((Fault.STALE_SOURCE_NBMA,), S1["nbma"])):
        net = lab(spoke=faults)
        mark = len(net.wire)
        net.handle("spoke1", NbmaChanged(NEW_NBMA))
        req = [codec.decode(w.data) for w in net.wire[mark:] if w.src == "spoke1"][-1]
        assert (req.op_type, req.src_nbma) == (Op.REGISTRATION_REQUEST, claimed)
        # The hub binds where it sees the request come from, and accepts it either way.
        entry = cache(net)[S1["proto"]]
        assert (entry["nbma"], entry["claimed_nbma"]) == (NEW_NBMA, claimed)
        reply = net.sent("hub1", Op.REGISTRATION_REPLY)[-1]
        assert [c.code for c in reply.pkt.cies] == [CieCode.SUCCESS]


def test_multicast_first_only() -> None:
    hello = bytes(IP(src=HUB["proto"], dst="224.0.0.5") / ICMP())
    for faults, count in (((), 2), ((Fault.MULTICAST_FIRST_ONLY,), 1)):
        net = Net()
        net.add("hub1", hub_config(multicast=True, faults=[f.value for f in faults]))
        for name in ("spoke1", "spoke2"):
            net.add(name, spoke_config(name))
        net.start()
        sent = [a for a in net.engine("hub1").handle(Multicast(hello)) if isinstance(a, SendData)]
        assert len(sent) == count


def test_shortcut_host_route() -> None:
    for faults, route in (((), "10.1.2.0/24"), ((Fault.SHORTCUT_HOST_ROUTE,), "10.1.2.10/32")):
        net = lab(spoke=faults)
        net.handle("hub1", Hairpin(PING))
        assert net.nodes["spoke1"].of(AddRoute) == [AddRoute(route, SPOKES["spoke2"]["proto"])]
        # What the node says it has is the reply's prefix either way.
        assert [c["prefix"] for c in net.engine("spoke1").views()["shortcuts"]] == ["10.1.2.0/24"]
        net.run_for(HOLD)       # the shortcut expires, and its route with it
        assert net.nodes["spoke1"].of(DelRoute) == [DelRoute(route)]
    assert Fault.SHORTCUT_HOST_ROUTE.acts(ipsec=False) and Fault.SHORTCUT_HOST_ROUTE.acts(ipsec=True)
    assert not Fault.IPSEC_KEEP_SA.acts(ipsec=False) and Fault.IPSEC_KEEP_SA.acts(ipsec=True)


def test_resolve_indicated_network() -> None:
    """The Traffic Indication makes spoke1 resolve 10.1.2.0, not 10.1.2.10; spoke2 answers
    for its /24 all the same, so the shortcut is the one it should be."""
    for faults, target in (((), "10.1.2.10"), ((Fault.RESOLVE_INDICATED_NETWORK,), "10.1.2.0")):
        net = lab(spoke=faults)
        net.handle("hub1", Hairpin(PING))
        assert [w.pkt.dst_proto for w in net.sent("spoke1", Op.RESOLUTION_REQUEST)] == [target]
        assert net.nodes["spoke1"].of(AddRoute) == [AddRoute("10.1.2.0/24", S2["proto"])]


def test_reply_cie_without_nbma() -> None:
    """spoke2's Resolution Reply CIE loses its Client NBMA Address, only that: spoke1
    takes spoke2's NBMA address from the Responder Address and binds it."""
    for faults, cie_nbma in (((), S2["nbma"]), ((Fault.REPLY_CIE_WITHOUT_NBMA,), "")):
        net = lab(spoke=faults)
        net.handle("spoke1", Resolve("10.1.2.10"))
        [reply] = net.sent("spoke2", Op.RESOLUTION_REPLY)
        assert (reply.pkt.cies[0].client_nbma, reply.pkt.cies[0].client_proto) == (cie_nbma, S2["proto"])
        assert reply.pkt.extension(codec.ResponderAddress).cies[0].client_nbma == S2["nbma"]
        assert cache(net, "spoke1")[S2["proto"]]["nbma"] == S2["nbma"]


def test_reply_to_claimed_nbma() -> None:
    public = "198.51.100.2"
    for faults, nat_ext, to in (((), True, public), ((Fault.REPLY_TO_CLAIMED_NBMA,), True, S2["nbma"]),
                                ((Fault.REPLY_TO_CLAIMED_NBMA,), False, public)):
        net = Net()
        net.nat[S2["nbma"]] = public
        net.add("hub1", hub_config(faults=[f.value for f in faults]))
        for name in ("spoke1", "spoke2"):
            net.add(name, spoke_config(name, faults=[f.value for f in faults], nat_extension=nat_ext))
        net.start()
        replies = net.sent("hub1", Op.REGISTRATION_REPLY)
        assert {w.dst_nbma for w in replies if w.pkt.src_proto == S2["proto"]} == {to}
        assert [w.dst for w in replies if w.pkt.src_proto == S1["proto"]] == ["spoke1"]   # not NATed
        assert cache(net)[S2["proto"]]["nbma"] == public        # bound where seen all the same
        registered = net.engine("spoke2").views()["nhs"][0]["protocol"] == HUB["proto"]
        assert registered is (to == public)


def test_register_first_nhs_only() -> None:
    nhs = [{"nbma": HUB["nbma"], "protocol": None}, {"nbma": HUB2["nbma"], "protocol": None}]
    for faults, hubs in (((), {"hub1", "hub2"}), ((Fault.REGISTER_FIRST_NHS_ONLY,), {"hub1"})):
        names = [f.value for f in faults]
        net = Net()
        net.add("hub1", hub_config(faults=names))
        net.add("hub2", hub_config(faults=names, protocol_address=HUB2["proto"] + "/24",
                                   nbma_address=HUB2["nbma"]))
        net.add("spoke1", spoke_config("spoke1", faults=names, nhs=nhs))
        net.start()
        net.run_for(HOLD)
        assert {w.dst for w in net.sent("spoke1", Op.REGISTRATION_REQUEST)} == hubs
        for hub in ("hub1", "hub2"):
            cached = S1["proto"] in cache(net, hub)
            assert cached is (hub in hubs), hub
        assert net.engine("spoke1").views()["nhs"][0]["protocol"] == HUB["proto"]


def test_accept_extoff_past_pktsz() -> None:
    data = malform(build.registration_request(PEER, "10.255.0.99", "10.255.0.99", 1, HOLD),
                   Malformation.EXTOFF_PAST_PKTSZ)
    assert codec.checksum_ok(data) and int.from_bytes(data[14:16], "big") == len(data) + 4
    assert [(p.op_type, p.error_code) for p in probe(lab(), data)] == [(Op.ERROR_INDICATION, ErrorCode.PROTOCOL_ERROR)]
    reply = probe(lab(hub=(Fault.ACCEPT_EXTOFF_PAST_PKTSZ,)), data)
    assert [(p.op_type, [c.code for c in p.cies]) for p in reply] == [(Op.REGISTRATION_REPLY, [CieCode.SUCCESS])]


def test_runt_prefixes_next() -> None:
    req = bytes(build.registration_request(PEER, "10.255.0.99", "10.255.0.99", 1, HOLD))
    other = bytes(build.registration_request("172.16.0.98", "10.255.0.98", "10.255.0.98", 1, HOLD))
    for faults, answer in (((), (Op.REGISTRATION_REPLY, 0)), ((Fault.RUNT_PREFIXES_NEXT,),
                                                               (Op.ERROR_INDICATION, ErrorCode.PROTOCOL_ERROR))):
        net = lab(hub=faults)
        assert probe(net, RUNT) == []                   # the runt itself: dropped, unanswered
        sent = [a for a in net.engine("hub1").handle(PacketIn("172.16.0.98", other)) if isinstance(a, Send)]
        assert [codec.decode(a.data).op_type for a in sent] == [Op.REGISTRATION_REPLY]     # another sender
        assert [(p.op_type, p.error_code) for p in probe(net, req)] == [answer]     # its sender's next
        assert [p.op_type for p in probe(net, req)] == [Op.REGISTRATION_REPLY]        # and the one after


def test_cache_unsolicited_reply() -> None:
    bogus = bytes(build.resolution_reply(PEER, HUB["proto"], "10.9.9.9", 77, client_nbma=PEER,
                                         client_proto="10.9.9.9"))
    for faults, cached in (((), False), ((Fault.CACHE_UNSOLICITED_REPLY,), True)):
        net = lab(hub=faults)
        assert [(p.op_type, p.error_code) for p in probe(net, bogus)] == [
            (Op.ERROR_INDICATION, ErrorCode.INVALID_RESOLUTION_REPLY)]
        assert ("10.9.9.9" in cache(net)) is cached


def test_traffic_indication_from_tunnel_address() -> None:
    for faults, src in (((), ""), ((Fault.TRAFFIC_INDICATION_FROM_TUNNEL_ADDRESS,), HUB["proto"])):
        net = lab(hub=faults)
        acts = net.handle("hub1", Hairpin(PING))
        assert [a.src for a in acts if isinstance(a, Send)] == [src]
        assert len(net.nodes["spoke1"].of(AddRoute)) == 1      # the spoke still acts on it


# -- the restart switches: only a daemon started again (Start(restarted=True)) -----------
def _restart(net: Net, name: str, faults: tuple[Fault, ...]) -> list:
    net.add(name, spoke_config(name, faults=[f.value for f in faults]))
    return net.handle(name, Start(restarted=True))


def test_trust_saved_registration() -> None:
    net = lab(spoke=(Fault.TRUST_SAVED_REGISTRATION,))
    assert S1["proto"] in cache(net)            # a first start registers as ever
    for faults, count in (((), 1), ((Fault.TRUST_SAVED_REGISTRATION,), 0)):
        net = lab()
        mark = len(net.sent("spoke1", Op.REGISTRATION_REQUEST))
        _restart(net, "spoke1", faults)
        net.run_for(HOLD)               # nor a refresh later
        assert bool(net.sent("spoke1", Op.REGISTRATION_REQUEST)[mark:]) is bool(count)


def test_flush_tunnel_routes_on_restart() -> None:
    assert lab(spoke=(Fault.FLUSH_TUNNEL_ROUTES_ON_RESTART,)).nodes["spoke1"].of(FlushRoutes) == []  # first start
    for faults, count in (((), 0), ((Fault.FLUSH_TUNNEL_ROUTES_ON_RESTART,), 1)):
        acts = _restart(lab(), "spoke1", faults)
        assert sum(isinstance(a, FlushRoutes) for a in acts) == count
        assert any(isinstance(a, Send) for a in acts)   # and it registers as ever


def test_no_ipv6_resolution() -> None:
    """An IPv6 spoke with the switch sends no Resolution Request for an IPv6 destination."""
    for faults, count in (((), 1), ((Fault.NO_IPV6_RESOLUTION,), 0)):
        net = Net()
        net.add("hub1", hub_config(protocol_address="fd00:255::1/64", routes=[]))
        net.add("spoke1", spoke_config("spoke1", protocol_address="fd00:255::11/64",
                                       nhs=[{"nbma": HUB["nbma"], "protocol": "fd00:255::1"}],
                                       lan_prefixes=["fd00:10:0:101::/64"], faults=[f.value for f in faults]))
        net.start()
        net.run_for(2)                  # registered with the hub
        net.handle("spoke1", Resolve("fd00:10:0:102::10"))
        assert len(net.sent("spoke1", Op.RESOLUTION_REQUEST)) == count, faults


def test_ipsec_down_drops_connection() -> None:
    """Only the switch starts the ike-updown listener, and only at a hub; a spoke with the
    switch sends what a clean one does. The listener acts on SAs going down, by unique ID
    (charon's events as the `vici` package decodes them)."""
    prot, sent = _ipsec_effects(Fault.IPSEC_DOWN_DROPS_CONNECTION)
    assert prot is not None and not prot.drop_connection_on_down and prot.wait and prot.closed
    assert sent == _clean_spoke_packets()
    ipsec = IpsecConfig(vici="/run/charon.vici", identity=HUB["proto"])
    for faults, drops in (([], False), ([Fault.IPSEC_DOWN_DROPS_CONNECTION.value], True)):
        hub = for_node(Config.from_dict({**hub_config(), "faults": faults}), ipsec)
        assert hub is not None and hub.drop_connection_on_down == drops
    assert went_down({"dmvpn": {"uniqueid": b"3", "state": b"DESTROYING"}}) == {"3"}
    assert went_down({"up": b"yes", "dmvpn": {"uniqueid": b"4", "state": b"ESTABLISHED"}}) == set()


def test_multicast_batched() -> None:
    """The switch leaves NFLOG's queue threshold at the kernel's default (batches flushed
    once a second); without it, each logged packet is delivered as it comes."""
    for batched, want in ((False, True), (True, False)):
        sets = [attrs for _, _, attrs, _ in nflog_config(2, 0xFFFF, batched)]
        assert any(a[2:4] == NFULA_CFG_QTHRESH.to_bytes(2, "little") and a[4:8] == (1).to_bytes(4, "big")
                   for a in sets) == want, sets
