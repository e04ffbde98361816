"""RFC 2332 5.2.5 / 5.2.6: Purge Request and Reply, probed from a registered peer."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect
from dmvpnkit import nhrp        # loads scapy on first use, not at collection

from ..conftest import nbma, tunnel

pytestmark = pytest.mark.topology("hub_peer")
ANSWER_WITHIN = 2.0       # no RFC bound; implementations answer in milliseconds


@pytest.fixture(scope="module")
def purged(lab, peer, scenario_capture):
    """peer1 registers with hub1, then purges its own registration (N bit clear)."""
    hub = nbma(lab, "hub1")
    reg = nhrp.registration_request(peer.nbma, peer.proto, peer.proto, peer.request_id(),
                                     holding_time=lab.topo.dmvpn.holdtime)
    reply = peer.exchange(reg, hub, ANSWER_WITHIN)
    if reply is None or not reply.cies or reply.cies[0].code != 0:
        pytest.fail(f"peer1 could not register with hub1: {reply}", pytrace=False)
    cap = scenario_capture("purge")
    before = [e for e in lab.driver.cache("hub1") if e.protocol == peer.proto]
    req = nhrp.purge_request(peer.nbma, peer.proto, tunnel(lab, "hub1"), peer.request_id(), [peer.proto])
    peer.exchange(req, hub, ANSWER_WITHIN)
    after = [e for e in lab.driver.cache("hub1") if e.protocol == peer.proto]
    return {"request": req, "before": before, "after": after, "timeline": cap.timeline()}


@pytest.mark.spec("rfc2332", "5.2.5", "MUST")
def test_purge_request_is_answered(purged, lab) -> None:
    """"An NHRP Purge Reply MUST be returned for the NHRP Purge Request even if the
    station does not have a matching cache entry assuming that the "N" bit is off" (5.2.5);
    it is "formed from an NHRP Purge Request by merely changing the type code in the
    request to 6" (5.2.6), so the Request ID is the request's."""
    expect(purged["timeline"], "a Purge Reply from hub1 to peer1", node="hub1", direction="out",
           op="purge-reply", dst=nbma(lab, "peer1"), request_id=purged["request"].payload.request_id)


@pytest.mark.spec("rfc2332", "5.2.5", "MUST")
def test_purge_removes_the_binding(purged) -> None:
    """"When a station receives an NHRP Purge Request, it MUST discard any previously
    cached information that matches" (5.2.5): peer1 purged its own registration."""
    assert purged["before"], "hub1 had no binding for peer1 to purge (set-up failed)"
    assert not purged["after"], f"hub1 still holds peer1's purged binding: {purged['after']}"
