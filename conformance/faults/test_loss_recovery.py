"""Fault: a spoke's uplink drops everything for longer than the hold time, then recovers.
Nothing learnt before the outage may outlive it."""

from __future__ import annotations

import time

import pytest

from dmvpnkit.capture import expect
from dmvpnkit.labs.faults import Faults
from dmvpnkit.labs.lab import ConvergenceTimeout, wait_until

from ..conftest import lan_host, nbma, needs_netem, ping, tunnel, wait_quietly

HOLD = 9
OUTAGE = HOLD + HOLD / 3 + 2        # every binding and shortcut about spoke2 has expired by then
pytestmark = [pytest.mark.topology("hub_2spoke", holdtime=HOLD), pytest.mark.phases(2, 3)]


def knows(lab, spoke: str) -> bool:
    """spoke1 has resolved `spoke`: a shortcut via it (phase 3), or a cache entry for its
    tunnel address (phase 2's neighbour resolution)."""
    far = tunnel(lab, spoke)
    return any(c.via == far for c in lab.driver.shortcuts("spoke1")) or any(
        e.protocol == far and e.type not in ("nhs", "local") for e in lab.driver.cache("spoke1"))


def forgotten(lab, spoke: str) -> bool:
    """Nothing about `spoke` is left: spoke1 has not resolved it, hub1 holds no binding
    for it, and, under a routing protocol, hub1 no longer routes its LAN. NHRP's state
    may expire before the protocol's own timer does (OSPF's dead interval, BGP's hold
    time): lifted then, the loss would leave the adjacency up with its routes, and its
    late reset would drop the traffic sent after the recovery."""
    if knows(lab, spoke) or tunnel(lab, spoke) in {e.protocol for e in lab.driver.cache("hub1")}:
        return False
    return lab.topo.dmvpn.routing == "static" or str(lab.topo.nodes[spoke].lan) in lab.routed().get("hub1", [])


@pytest.fixture(scope="module")
def recovered(lab, scenario_capture):
    """spoke1 holds a shortcut to spoke2; spoke2's uplink then loses everything until
    nothing about spoke2 is left (at most OUTAGE s); after it returns and spoke2 has
    registered again, spoke1 sends to spoke2's LAN once more."""
    target = lan_host(lab, "spoke2")
    ping(lab, "spoke1_h", target, 5, 0.5)
    out: dict = {}
    try:
        wait_until("spoke1 to resolve spoke2", lambda: knows(lab, "spoke2"), timeout=10)
    except ConvergenceTimeout as e:
        out["not_resolved"] = str(e)
    cap = scenario_capture("loss_recovery")
    with needs_netem(), Faults(lab).impair("spoke2", loss=100) as cut:
        wait_quietly("hub1 and spoke1 to forget spoke2", lambda: forgotten(lab, "spoke2"), OUTAGE)
    out["t_lift"] = cut.lifted          # before the loss was lifted: spoke2 may register at once
    wait_quietly("spoke2 to register again", lambda: tunnel(lab, "spoke2") in {
        e.protocol for e in lab.driver.cache("hub1") if e.type == "dynamic"}, HOLD + 5)
    lab.wait_routed()           # the routing protocol's adjacency to spoke2 comes back
    out["t_traffic"] = time.time()
    ping(lab, "spoke1_h", target, 5, 0.5)
    out["later"] = ping(lab, "spoke1_h", target, 10, 0.1)
    out["hub_cache"] = lab.driver.cache("hub1")
    out["shortcuts"] = lab.driver.shortcuts("spoke1")
    out["timeline"] = cap.timeline()
    return out


@pytest.mark.spec("rfc2332", "5.2.0.1", "MUST")
def test_no_stale_state_after_loss(recovered, lab) -> None:
    """"Cached information SHALL be discarded when the holding time expires" (5.2.0.1):
    after an outage longer than the hold time, spoke1 does not send to spoke2 on its
    old shortcut before resolving it again, traffic to spoke2's LAN flows, and no
    duplicate binding or shortcut is left (one hub binding per spoke, at its NBMA
    address; one shortcut per prefix)."""
    tl = recovered["timeline"]
    assert "not_resolved" not in recovered, f"spoke1 never resolved spoke2 before the outage: {recovered}"
    direct = tl.where(node="spoke1", direction="out", data="icmp", dst=nbma(lab, "spoke2"),
                      after=recovered["t_traffic"])
    if direct:
        expect(tl, "a Resolution Reply at spoke1 after the outage, before it sends to spoke2 directly",
               node="spoke1", op="resolution-reply", after=recovered["t_lift"], before=direct[0].ts)
    assert recovered["later"].lossless, recovered["later"]
    cache = [e for e in recovered["hub_cache"] if e.type == "dynamic"]
    for spoke in lab.topo.spokes:
        entries = [e for e in cache if e.protocol == str(spoke.tunnel)]
        assert len(entries) == 1 and entries[0].nbma == str(spoke.nbma), \
            f"hub1's bindings for {spoke.name} after the outage: {entries} (all: {recovered['hub_cache']})"
    prefixes = [c.prefix for c in recovered["shortcuts"]]
    assert len(prefixes) == len(set(prefixes)), f"spoke1's shortcuts after the outage: {recovered['shortcuts']}"
