"""Probes: crafted and malformed NHRP packets from a peer, and what the hub answers.

Each case sends one defective packet from `peer1` to hub1, asserts the exact answer
(an Error Indication with its code) or the silence the RFC asks for, from the
capture, and then checks that hub1 still answers a well-formed request.
"""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_none
# The package loads scapy on first use: every worker collects this module, few run it.
from dmvpnkit import nhrp
from dmvpnkit.nhrp.model import decode

from ..conftest import nbma, tunnel

pytestmark = pytest.mark.topology("hub_peer")
# No RFC bound on answer time; every implementation seen answers in milliseconds.
ANSWER_WITHIN = 2.0
UNRECOGNIZED_EXTENSION, LOOP_DETECTED, INVALID_REPLY = 1, 3, 10
UNIQUE_ALREADY_REGISTERED, HOP_COUNT_EXCEEDED = 14, 15


def registration(lab, peer, retries: int = 2):
    """peer1's registration with hub1 (a unique binding), sent (and resent up to
    `retries` times) and answered."""
    req = nhrp.registration_request(peer.nbma, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime, unique=True)
    reply = peer.exchange(req, nbma(lab, "hub1"), ANSWER_WITHIN, retries=retries)
    ok = reply is not None and reply.op == "registration-reply" and reply.cies and reply.cies[0].code == 0
    return reply, ok


def register(lab, peer) -> None:
    reply, ok = registration(lab, peer)
    if not ok:
        pytest.fail(f"peer1 could not register with hub1: {reply}", pytrace=False)


@pytest.fixture(scope="module")
def hub(lab, peer) -> str:
    register(lab, peer)
    return nbma(lab, "hub1")


def resolution_for(lab, peer, target: str, **kw):
    return nhrp.resolution_request(peer.nbma, peer.proto, target, peer.request_id(), **kw)


def still_serves(lab, peer, hub: str) -> None:
    """hub1 still answers a well-formed request of its own after the probe (peer1's
    registration refresh: a resolution would test the far spoke too)."""
    reply, ok = registration(lab, peer)
    assert ok, f"hub1 no longer answers a well-formed Registration Request after the probe: {reply}"


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_bad_checksum_is_not_acted_on(lab, peer, hub, capture) -> None:
    """ar$chksum covers "the entire NHRP packet"; a packet failing it is a Protocol
    Error (5.2.7: "failed checksum"), never answered as if it were valid."""
    probe = resolution_for(lab, peer, tunnel(lab, "spoke2"))
    peer.send(nhrp.malform(probe, nhrp.Malformation.BAD_CHECKSUM), hub)
    peer.receive(lambda m: False, ANSWER_WITHIN)
    tl = capture.timeline()
    expect_none(tl, "a Resolution Reply to a packet with a bad checksum", node="hub1",
                op="resolution-reply", dst=nbma(lab, "peer1"), request_id=probe.payload.request_id)
    expect_none(tl, "hub1 forwarding a packet with a bad checksum", node="hub1", direction="out",
                op="resolution-request", request_id=probe.payload.request_id)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_hop_count_zero_at_a_transit_nhs(lab, peer, hub, capture) -> None:
    """"If an NHS receives an NHRP packet which it would normally forward to a next hop
    and that packet contains an ar$hopcnt set to zero then the NHS sends an error
    indication message back to the source protocol address stating that the hop count
    has been exceeded ... and the NHS drops the packet in error" (5.1; code 15)."""
    probe = resolution_for(lab, peer, "10.1.2.10", hopcnt=0)
    peer.send(bytes(probe), hub)
    peer.receive(lambda m: m.op == "error-indication", ANSWER_WITHIN)
    tl = capture.timeline()
    expect_none(tl, "hub1 forwarding a request whose hop count is 0", node="hub1", direction="out",
                op="resolution-request", request_id=probe.payload.request_id)
    expect(tl, "an Error Indication 'Hop Count Exceeded' (15) to peer1", node="hub1", direction="out",
           op="error-indication", dst=nbma(lab, "peer1"), error_code=HOP_COUNT_EXCEEDED)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.3", "MUST")
def test_unknown_compulsory_extension_is_an_error(lab, peer, hub, capture) -> None:
    """"If set, and the NHS does not recognize the type code, the NHRP "request" is
    considered to be in error" and "the responder MUST return an NHRP Error Indication
    of type Unrecognized Extension" (5.3; code 1, offset at the extension)."""
    req = nhrp.registration_request(peer.nbma, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime, unique=True)
    raw = nhrp.malform(req, nhrp.Malformation.UNKNOWN_COMPULSORY_EXT)
    peer.send(raw, hub)
    peer.receive(lambda m: m.op == "error-indication", ANSWER_WITHIN)
    tl = capture.timeline()
    ei = expect(tl, "an Error Indication 'Unrecognized Extension' (1) to peer1", node="hub1", direction="out",
                op="error-indication", dst=nbma(lab, "peer1"))
    assert ei.nhrp.error_code == UNRECOGNIZED_EXTENSION, ei
    extoff = int.from_bytes(raw[14:16], "big")
    assert extoff <= ei.nhrp.error_offset < len(raw), \
        f"Error Offset {ei.nhrp.error_offset} is not inside the extensions ({extoff}..{len(raw)})"
    expect_none(tl, "a Registration Reply to the erroneous request", node="hub1", op="registration-reply",
                dst=nbma(lab, "peer1"), request_id=req.payload.request_id)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.3", "MUST")
def test_unknown_optional_extension_is_returned_unchanged(lab, peer, hub, capture) -> None:
    """"If the Compulsory bit is clear then the extension can be safely ignored; however,
    if an ignored extension is in a "request" then it MUST be returned, unchanged, in the
    corresponding "reply"" (5.3)."""
    req = nhrp.registration_request(peer.nbma, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime, unique=True)
    raw = nhrp.malform(req, nhrp.Malformation.UNKNOWN_NONCOMPULSORY_EXT, value=b"dmvpnkit")
    peer.send(raw, hub)
    peer.receive(lambda m: m.op == "registration-reply", ANSWER_WITHIN)
    tl = capture.timeline()
    reply = expect(tl, "a Registration Reply to peer1", node="hub1", op="registration-reply",
                   dst=nbma(lab, "peer1"), request_id=req.payload.request_id)
    sent = {(x.type, x.compulsory, x.payload) for x in decode(raw).extensions}
    unknown = {x for x in sent if x[0] == nhrp.EXPERIMENTAL_EXT_TYPE}
    back = {(x.type, x.compulsory, x.payload) for x in reply.nhrp.extensions}
    assert unknown <= back, f"the unknown extension {unknown} did not come back: {reply.nhrp.extensions}"
    assert reply.nhrp.cies and reply.nhrp.cies[0].code == 0, reply


@pytest.mark.spec("rfc2332", "5.3.2", "MUST")
def test_loop_in_forward_transit_record(lab, peer, hub, capture) -> None:
    """"If a "request" that is being forwarded by an NHS contains the Protocol Address of
    that NHS in one of the Forward Transit NHS elements then the NHS SHALL generate an
    NHRP Error Indication of type "NHRP Loop Detected" and discard the "request"." (5.3.2)"""
    probe = resolution_for(lab, peer, "10.1.2.10")
    raw = nhrp.malform(probe, nhrp.Malformation.TRANSIT_LOOP, receiver_proto=tunnel(lab, "hub1"),
                  receiver_nbma=nbma(lab, "hub1"))
    peer.send(raw, hub)
    peer.receive(lambda m: m.op == "error-indication", ANSWER_WITHIN)
    tl = capture.timeline()
    expect_none(tl, "hub1 forwarding a request that already passed it", node="hub1", direction="out",
                op="resolution-request", request_id=probe.payload.request_id)
    expect(tl, "an Error Indication 'NHRP Loop Detected' (3) to peer1", node="hub1", direction="out",
           op="error-indication", dst=nbma(lab, "peer1"), error_code=LOOP_DETECTED)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_unknown_version_is_not_processed(lab, peer, hub, capture) -> None:
    """ar$op.version "1 NHRP as defined in this document"; another version is not
    NHRP version 1 and is a Protocol Error (5.2.7: "invalid version number"): it must
    not be processed as a registration."""
    req = nhrp.registration_request(peer.nbma, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime, unique=True)
    peer.send(nhrp.malform(req, nhrp.Malformation.WRONG_VERSION), hub)
    peer.receive(lambda m: False, ANSWER_WITHIN)
    expect_none(capture.timeline(), "a Registration Reply to an NHRP version 2 packet", node="hub1",
                op="registration-reply", request_id=req.payload.request_id)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5", "MUST")
def test_extoff_past_pktsz_is_not_processed(lab, peer, hub, capture) -> None:
    """"The length of the Extensions Part is implied by ar$pktsz minus ar$extoff": an
    ar$extoff beyond ar$pktsz describes no packet, a Protocol Error (5.2.7), and the
    request must not be answered."""
    req = nhrp.registration_request(peer.nbma, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime, unique=True)
    peer.send(nhrp.malform(req, nhrp.Malformation.EXTOFF_PAST_PKTSZ), hub)
    peer.receive(lambda m: False, ANSWER_WITHIN)
    expect_none(capture.timeline(), "a Registration Reply to a packet with ar$extoff past ar$pktsz",
                node="hub1", op="registration-reply", request_id=req.payload.request_id)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_runt_packet_is_dropped_and_harmless(lab, peer, hub) -> None:
    """A packet too short to hold the fixed header (20 octets, 5.1) is no NHRP packet:
    it is dropped, and the node goes on serving the station that sent it, from the
    station's very next packet on: that one is answered without a resend."""
    peer.send(b"\x00\x01\x08\x00garbage", hub)
    reply, ok = registration(lab, peer, retries=0)
    assert ok, f"hub1 did not answer the first well-formed request after the runt: {reply}"


@pytest.mark.spec("rfc2332", "5.2.2", "SHOULD")
def test_unsolicited_resolution_reply_gets_an_error(lab, peer, hub, capture) -> None:
    """"If an unsolicited NHRP Resolution Reply packet is received, an Error Indication
    of type Invalid NHRP Resolution Reply Received SHOULD be sent in response." (5.2.2)"""
    bogus = nhrp.resolution_reply(peer.nbma, tunnel(lab, "hub1"), "10.9.9.9", peer.request_id(),
                                   client_nbma=peer.nbma, client_proto="10.9.9.9")
    peer.send(bytes(bogus), hub)
    peer.receive(lambda m: m.op == "error-indication", ANSWER_WITHIN)
    expect(capture.timeline(), "an Error Indication 'Invalid NHRP Resolution Reply Received' (10)",
           node="hub1", direction="out", op="error-indication", error_code=INVALID_REPLY)
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.2.0.1", "MUST")
def test_unsolicited_resolution_reply_is_not_cached(lab, peer, hub) -> None:
    """A reply is matched against the sender's "outstanding "request" list" by Request ID
    and source (5.2.0.1); one that matches nothing must not install a binding."""
    bogus = nhrp.resolution_reply(peer.nbma, tunnel(lab, "hub1"), "10.9.9.9", peer.request_id(),
                                   client_nbma=peer.nbma, client_proto="10.9.9.9")
    peer.send(bytes(bogus), hub)
    peer.receive(lambda m: False, ANSWER_WITHIN)
    cached = [e for e in lab.driver.cache("hub1") if e.protocol == "10.9.9.9"]
    assert not cached, f"hub1 cached the unsolicited reply's binding: {cached}"
    still_serves(lab, peer, hub)


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_unique_binding_is_not_overwritten(lab, peer, hub, capture) -> None:
    """"Any attempt to register a binding between the protocol address and an NBMA
    address when this bit is set MUST be rejected with a Code of "14 - Unique
    Internetworking Layer Address Already Registered" if the replying NHS already has a
    cache entry for the protocol address and the cache entry has the "uniqueness" bit
    set." (5.2.3) peer1 holds a unique binding; a second NBMA address claims it."""
    thief = "172.16.99.99"
    req = nhrp.registration_request(thief, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime, unique=True)
    peer.send(bytes(req), hub)
    peer.receive(lambda m: m.op == "registration-reply", ANSWER_WITHIN)
    entry = next((e for e in lab.driver.cache("hub1") if e.protocol == peer.proto), None)
    register(lab, peer)         # whatever happened, peer1 takes its address back
    reply = expect(capture.timeline(), "a Registration Reply to the conflicting registration",
                   node="hub1", op="registration-reply", request_id=req.payload.request_id)
    codes = [c.code for c in reply.nhrp.cies]
    assert codes == [UNIQUE_ALREADY_REGISTERED], f"CIE codes {codes}, expected [14]:\n{reply}"
    assert entry is not None and thief not in (entry.nbma, entry.claimed_nbma), \
        f"hub1's binding for {peer.proto} moved to the conflicting NBMA address: {entry}"
