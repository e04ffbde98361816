"""Malformed and hostile input: the right Error Indication (RFC 2332 5.2.7) with the
right code and offset, or a silent drop, and never an exception."""

from __future__ import annotations

import struct

import pytest

from dmvpnkit.nhrp import build
from dmvpnkit.nhrp.build import Malformation, malform
from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.codec import ErrorCode, Op
from dmvpnkit.nhrpd.config import Config
from dmvpnkit.nhrpd.engine import Engine
from dmvpnkit.nhrpd.events import Action, PacketIn, Send, Start

from .harness import HOLD, HUB, SPOKES, Net, hub_config, rechecksum, spoke_config

PEER_NBMA, PEER_PROTO = "172.16.0.99", "10.255.0.99"
S1, S2 = SPOKES["spoke1"], SPOKES["spoke2"]


def sends(acts: list[Action]) -> list[tuple[str, codec.Packet]]:
    return [(a.dst_nbma, codec.decode(a.data)) for a in acts if isinstance(a, Send)]


def probe(net: Net, data: bytes, node: str = "hub1", src: str = PEER_NBMA) -> list[tuple[str, codec.Packet]]:
    return sends(net.engine(node).handle(PacketIn(src, data)))


def the_ei(out: list[tuple[str, codec.Packet]], data: bytes) -> codec.Packet:
    assert [(dst, p.op_type) for dst, p in out] == [(PEER_NBMA, Op.ERROR_INDICATION)], out
    ei = out[0][1]
    assert ei.payload == data[:len(ei.payload)] and len(ei.payload) >= 20   # the errored packet
    assert ei.extensions == ()                                # 5.2.7: no extensions
    assert (ei.src_nbma, ei.src_proto) == (HUB["nbma"], HUB["proto"])
    return ei


def registration(rid: int = 50) -> build.Packet:
    return build.registration_request(PEER_NBMA, PEER_PROTO, PEER_PROTO, rid, HOLD, unique=True)


def resolution(target: str = "10.1.2.10", **kw) -> build.Packet:
    return build.resolution_request(PEER_NBMA, PEER_PROTO, target, 60, **kw)


def test_bad_checksum_is_dropped_silently(net: Net) -> None:
    out = probe(net, malform(resolution(), Malformation.BAD_CHECKSUM))
    assert out == []


def test_hop_count_zero_at_a_transit_nhs(net: Net) -> None:
    data = malform(resolution(), Malformation.HOPCNT_ZERO)
    ei = the_ei(probe(net, data), data)                 # nothing forwarded to spoke2
    assert (ei.error_code, ei.error_offset) == (ErrorCode.HOP_COUNT_EXCEEDED, 9)
    assert ei.dst_proto == PEER_PROTO


def test_hop_count_zero_is_fine_for_a_request_the_hub_answers(net: Net) -> None:
    data = malform(registration(), Malformation.HOPCNT_ZERO)
    assert [p.op_type for _, p in probe(net, data)] == [Op.REGISTRATION_REPLY]


def test_unknown_compulsory_extension_in_a_request_we_answer(net: Net) -> None:
    data = malform(registration(), Malformation.UNKNOWN_COMPULSORY_EXT)
    ei = the_ei(probe(net, data), data)
    unknown = next(i for i, e in enumerate(codec.decode(data).extensions)
                   if isinstance(e, codec.UnknownExtension))
    assert (ei.error_code, ei.error_offset) == (ErrorCode.UNRECOGNIZED_EXTENSION,
                                                codec.decode(data).ext_offsets[unknown])
    assert PEER_PROTO not in {e["protocol"] for e in net.engine("hub1").views()["cache"]}


def test_unknown_compulsory_extension_is_copied_by_a_transit_nhs(net: Net) -> None:
    data = malform(resolution(), Malformation.UNKNOWN_COMPULSORY_EXT, value=b"keep")
    out = probe(net, data)
    assert [(dst, p.op_type) for dst, p in out] == [(S2["nbma"], Op.RESOLUTION_REQUEST)]
    assert any(isinstance(e, codec.UnknownExtension) and e.compulsory and e.payload == b"keep"
               for e in out[0][1].extensions)
    # ... and the responder (spoke2) refuses it with an Error Indication.
    fwd = codec.encode(out[0][1])
    back = probe(net, fwd, node="spoke2", src=HUB["nbma"])
    assert [(dst, p.op_type, p.error_code) for dst, p in back] == \
        [(HUB["nbma"], Op.ERROR_INDICATION, ErrorCode.UNRECOGNIZED_EXTENSION)]


def test_unknown_optional_extension_is_returned_unchanged(net: Net) -> None:
    data = malform(registration(), Malformation.UNKNOWN_NONCOMPULSORY_EXT, value=b"dmvpnkit")
    out = probe(net, data)
    assert [p.op_type for _, p in out] == [Op.REGISTRATION_REPLY]
    sent = {e for e in codec.decode(data).extensions if isinstance(e, codec.UnknownExtension)}
    assert sent and sent <= set(out[0][1].extensions)


def test_loop_in_the_forward_transit_record(net: Net) -> None:
    data = malform(resolution(), Malformation.TRANSIT_LOOP, receiver_proto=HUB["proto"],
                   receiver_nbma=HUB["nbma"])
    ei = the_ei(probe(net, data), data)
    pkt = codec.decode(data)
    fwd = next(i for i, e in enumerate(pkt.extensions) if isinstance(e, codec.ForwardTransit))
    assert (ei.error_code, ei.error_offset) == (ErrorCode.LOOP_DETECTED, pkt.ext_offsets[fwd])


def test_loop_in_the_reverse_transit_record_of_a_reply(net: Net) -> None:
    reply = codec.Packet(Op.RESOLUTION_REPLY, S1["nbma"], S1["proto"], "10.1.2.10", 0, 3,
                         (codec.Cie(0, 24, 0, HOLD, 0, S2["nbma"], S2["proto"]),),
                         (codec.ReverseTransit((codec.Cie(0, 32, 0, 0, 0, HUB["nbma"], HUB["proto"]),)),
                          codec.End()))
    data = codec.encode(reply)
    out = probe(net, data, src=S2["nbma"])
    assert [(d, p.error_code, p.error_offset) for d, p in out] == \
        [(S2["nbma"], ErrorCode.LOOP_DETECTED, codec.decode(data).ext_offsets[0])]


def test_wrong_version_is_a_protocol_error(net: Net) -> None:
    data = malform(registration(), Malformation.WRONG_VERSION)
    ei = the_ei(probe(net, data), data)
    assert (ei.error_code, ei.error_offset) == (ErrorCode.PROTOCOL_ERROR, 16)
    assert PEER_PROTO not in {e["protocol"] for e in net.engine("hub1").views()["cache"]}


def test_extoff_past_pktsz_is_a_protocol_error(net: Net) -> None:
    data = malform(registration(), Malformation.EXTOFF_PAST_PKTSZ)
    ei = the_ei(probe(net, data), data)
    assert (ei.error_code, ei.error_offset) == (ErrorCode.PROTOCOL_ERROR, 14)


def test_truncated_cie_is_a_protocol_error_at_the_decoders_offset(net: Net) -> None:
    data = malform(registration(), Malformation.TRUNCATED_CIE)
    with pytest.raises(codec.CodecError) as e:
        codec.decode(data)
    ei = the_ei(probe(net, data), data)
    assert (ei.error_code, ei.error_offset) == (ErrorCode.PROTOCOL_ERROR, e.value.offset)


def test_truncated_packet_is_a_protocol_error_at_pktsz(net: Net) -> None:
    data = bytes(registration())[:-6]
    ei = the_ei(probe(net, data), data)
    assert (ei.error_code, ei.error_offset) == (ErrorCode.PROTOCOL_ERROR, 10)


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x08\x00garbage", b"\x00" * 19])
def test_runt_packets_are_dropped(net: Net, data: bytes) -> None:
    assert probe(net, data) == []


def test_unsolicited_resolution_reply(net: Net) -> None:
    bogus = bytes(build.resolution_reply(PEER_NBMA, HUB["proto"], "10.9.9.9", 70,
                                         client_nbma=PEER_NBMA, client_proto="10.9.9.9"))
    ei = the_ei(probe(net, bogus), bogus)
    assert (ei.error_code, ei.error_offset) == (ErrorCode.INVALID_RESOLUTION_REPLY, 24)
    assert "10.9.9.9" not in {e["protocol"] for e in net.engine("hub1").views()["cache"]}
    # A spoke does the same for a reply it did not ask for.
    bogus2 = bytes(build.resolution_reply(PEER_NBMA, S1["proto"], "10.9.9.9", 71,
                                          client_nbma=PEER_NBMA, client_proto="10.9.9.9"))
    out = probe(net, bogus2, node="spoke1")
    assert [(p.error_code, p.error_offset) for _, p in out] == [(ErrorCode.INVALID_RESOLUTION_REPLY, 24)]


def test_reply_for_an_unreachable_requester(net: Net) -> None:
    reply = bytes(build.resolution_reply(S2["nbma"], "10.255.0.77", "10.1.2.10", 3, S2["nbma"], S2["proto"]))
    out = probe(net, reply, src=S2["nbma"])
    assert [(p.op_type, p.error_code) for _, p in out] == \
        [(Op.ERROR_INDICATION, ErrorCode.PROTOCOL_ADDRESS_UNREACHABLE)]


def test_never_an_error_indication_for_an_error_indication(net: Net) -> None:
    ei = build.error_indication(resolution(), PEER_NBMA, PEER_PROTO, HUB["proto"], 7, 0)
    good = bytes(ei)
    assert probe(net, good) == []
    for bad in (good[:-3], malform(ei, Malformation.WRONG_VERSION), malform(ei, Malformation.EXTOFF_PAST_PKTSZ),
                good[:16] + b"\x02" + good[17:]):
        assert probe(net, bad) == [], bad.hex()


def test_error_indication_for_our_request_is_taken_into_account() -> None:
    net = Net()
    e = net.add("spoke1", spoke_config("spoke1")).engine
    req = sends(net.handle("spoke1", Start()))[0][1]
    ei = codec.Packet(Op.ERROR_INDICATION, HUB["nbma"], HUB["proto"], S1["proto"], error_code=11,
                      payload=codec.encode(req))
    acts = e.handle(PacketIn(HUB["nbma"], codec.encode(ei)))
    assert sends(acts) == []
    net.run_for(1.5)
    again = net.sent("spoke1", Op.REGISTRATION_REQUEST)
    assert again[-1].pkt.request_id != req.request_id      # a new request after the failure


def test_authentication_failure() -> None:
    net = Net()
    net.add("hub1", hub_config(auth="cisco"))
    net.add("spoke1", spoke_config("spoke1", auth="cisco"))
    net.add("spoke2", spoke_config("spoke2", auth="wrong"))
    net.start()
    cache = {e["protocol"] for e in net.engine("hub1").views()["cache"]}
    assert S1["proto"] in cache and S2["proto"] not in cache
    eis = [w.pkt for w in net.sent("hub1", Op.ERROR_INDICATION)]
    assert eis and {(p.error_code, p.dst_proto) for p in eis} == {(ErrorCode.AUTHENTICATION_FAILURE, S2["proto"])}
    req = net.sent("spoke2", Op.REGISTRATION_REQUEST)[0].pkt
    assert eis[0].error_offset == req.ext_offsets[[type(e) for e in req.extensions].index(codec.Authentication)]
    # Every packet the authenticated nodes send carries the password, regenerated per hop.
    for w in net.sent("spoke1") + net.sent("hub1", Op.REGISTRATION_REPLY):
        assert w.pkt.extension(codec.Authentication) == codec.Authentication(b"cisco")
    # Missing altogether: offset 14 (ar$extoff).
    out = probe(net, bytes(registration()))
    assert [(p.error_code, p.error_offset) for _, p in out] == [(ErrorCode.AUTHENTICATION_FAILURE, 14)]


def test_unsupported_address_family_is_a_protocol_error(net: Net) -> None:
    raw = bytes(registration())
    data = rechecksum(struct.pack("!H", 2) + raw[2:])
    ei = the_ei(probe(net, data), data)
    assert (ei.error_code, ei.error_offset) == (ErrorCode.PROTOCOL_ERROR, 0)


def test_spoke_ignores_registrations_and_indications_it_cannot_use() -> None:
    e = Engine(Config.from_dict(spoke_config("spoke1")), 0)
    e.handle(Start())
    assert sends(e.handle(PacketIn(PEER_NBMA, bytes(registration())))) == []


def test_error_indication_is_relayed_to_the_requester(net: Net) -> None:
    req = build.resolution_request(S1["nbma"], S1["proto"], "10.1.2.10", 61)
    net.handle("hub1", PacketIn(S1["nbma"], malform(req, Malformation.UNKNOWN_COMPULSORY_EXT)))
    from_spoke2 = net.sent("spoke2", Op.ERROR_INDICATION)
    relayed = net.sent("hub1", Op.ERROR_INDICATION)
    assert [w.dst for w in from_spoke2] == ["hub1"] and [w.dst for w in relayed] == ["spoke1"]
    ei = relayed[0].pkt
    assert (ei.src_proto, ei.dst_proto, ei.error_code) == (S2["proto"], S1["proto"],
                                                           ErrorCode.UNRECOGNIZED_EXTENSION)
    assert ei.hopcnt == from_spoke2[0].pkt.hopcnt - 1
    assert any(log.message == "Error Indication received" for log in net.nodes["spoke1"].logs())


def test_own_error_indication_coming_back_is_dropped(net: Net) -> None:
    ei = codec.Packet(Op.ERROR_INDICATION, HUB["nbma"], HUB["proto"], S1["proto"], error_code=7,
                      payload=bytes(resolution()))
    assert probe(net, codec.encode(ei), src=S2["nbma"]) == []
