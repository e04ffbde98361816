"""RFC 2332 5.3: extensions on a resolution that crosses the hub (a transit NHS)."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect
from dmvpnkit.rules import Context, enforce, exchanges

from ..conftest import hairpin, nbma, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(3)]
RESPONDER, FORWARD_TRANSIT, REVERSE_TRANSIT = 3, 4, 5


@pytest.fixture(scope="module")
def resolved(lab):
    tl = hairpin(lab, "s5_3_traffic")["timeline"]
    req_in = expect(tl, "spoke1's Resolution Request arriving at hub1", node="hub1", op="resolution-request",
                    direction="in", src=nbma(lab, "spoke1"), dst_proto="10.1.2.10")
    req_out = expect(tl, "hub1 forwarding that Resolution Request", node="hub1", op="resolution-request",
                     direction="out", request_id=req_in.nhrp.request_id, src_proto=tunnel(lab, "spoke1"))
    reply = expect(tl, "the Resolution Reply arriving at spoke1", node="spoke1", op="resolution-reply",
                   direction="in", request_id=req_in.nhrp.request_id)
    return {"timeline": tl, "req_in": req_in, "req_out": req_out, "reply": reply}


def ext(event, kind: int):
    return next((x for x in event.nhrp.extensions if x.type == kind), None)


@pytest.mark.spec("rfc2332", "5.3.1", "MUST")
def test_responder_address_names_the_responder(resolved, lab) -> None:
    """"If a "requester" desires this information, the "requester" SHALL include this
    extension with a value of zero." "If an NHS is generating a "reply" ... the NHS SHALL
    include this extension, containing its protocol address" (5.3.1): spoke1 asks,
    spoke2 answers, so the extension in the reply holds spoke2."""
    assert ext(resolved["req_in"], RESPONDER) is not None, "spoke1 did not ask for the Responder Address"
    got = ext(resolved["reply"], RESPONDER)
    assert got is not None and got.cies, f"no Responder Address in the reply:\n{resolved['reply']}"
    assert (got.cies[0].client_proto, got.cies[0].client_nbma) == (tunnel(lab, "spoke2"), nbma(lab, "spoke2")), \
        got.cies


@pytest.mark.spec("rfc2332", "5.3.2", "MUST")
def test_transit_nhs_records_itself_on_the_request(resolved, lab) -> None:
    """"Each NHS SHALL append to the extension a Forward Transit NHS element ...
    containing its Protocol address" (5.3.2): hub1 relays spoke1's request."""
    got = ext(resolved["req_out"], FORWARD_TRANSIT)
    assert got is not None, f"hub1 dropped the Forward Transit NHS Record:\n{resolved['req_out']}"
    assert any(c.client_proto == tunnel(lab, "hub1") for c in got.cies), \
        f"hub1 not in the Forward Transit NHS Record: {got.cies}"


@pytest.mark.spec("rfc2332", "5.3.3", "MUST")
def test_transit_nhs_records_itself_on_the_reply(resolved, lab) -> None:
    """The Reverse Transit NHS Record is built like the forward one, on the way back:
    each NHS relaying the "reply" SHALL append its own element (5.3.3); hub1 relays
    spoke2's reply to spoke1."""
    got = ext(resolved["reply"], REVERSE_TRANSIT)
    assert got is not None, f"no Reverse Transit NHS Record in the reply:\n{resolved['reply']}"
    assert any(c.client_proto == tunnel(lab, "hub1") for c in got.cies), \
        f"hub1 not in the Reverse Transit NHS Record of the reply it relayed: {got.cies}\n{resolved['reply']}"


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_transit_nhs_decrements_the_hop_count(resolved, lab) -> None:
    """"Each NHS decrements the TTL as the NHRP packet transits the NHS." (5.1, ar$hopcnt):
    on spoke1's Resolution Request and on every other packet hub1 relays."""
    enforce(exchanges.transit_hop_count, resolved["timeline"], Context(station=nbma(lab, "hub1"), name="hub1"))
