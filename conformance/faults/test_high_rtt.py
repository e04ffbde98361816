"""Fault: a slow underlay. Phase 3 over a 150 ms round trip between any two sites (the
topology's own link impairment: 37.5 ms each way on every DMVPN node's uplink)."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_reply

from ..conftest import bringup, expect_direct, hairpin

DELAY = 37.5                # ms each way per uplink: 4 x 37.5 = 150 ms round trip
# A spoke's capture sees its own packets after its netem delay: a round trip it sees
# is at least three of the four delays.
SEEN_RTT = 3 * DELAY / 1000
pytestmark = [pytest.mark.topology("hub_2spoke", delay=DELAY), pytest.mark.phases(3)]


@pytest.fixture(scope="module")
def slow(lab):
    # The premise, from the spokes' registrations at bring-up: a case that passes
    # because the delay was never applied proves nothing.
    up = bringup(lab)
    rtts = [p.rtt for p in up.pairs() if p.rtt is not None and p.request.node in ("spoke1", "spoke2")]
    if not rtts or min(rtts) < SEEN_RTT * 0.9:
        raise RuntimeError(f"registration round trips {rtts} s: the underlay is not {4 * DELAY:.0f} ms slow; "
                           f"the topology's link impairment did not take effect\n{up.format()}")
    return hairpin(lab, "high_rtt")


@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_shortcut_forms_over_a_slow_underlay(slow, lab, measure) -> None:
    """With a 150 ms round trip the phase 3 exchange still completes: the hub redirects,
    spoke1's Resolution Request is answered, and spoke1 installs the shortcut (a
    request timer shorter than the round trip would throw every reply away)."""
    tl = slow["timeline"]
    ti = expect(tl, "a Traffic Indication at spoke1", node="spoke1", op="traffic-indication")
    req = expect(tl, "spoke1's Resolution Request after the indication", node="spoke1", op="resolution-request",
                 direction="out", after=ti.ts)
    reply = expect_reply(tl, req)
    measure("resolution_rtt_s", round(reply.ts - req.ts, 3))
    cuts = lab.driver.shortcuts("spoke1")
    assert any(c.prefix == "10.1.2.0/24" and c.via == str(lab.topo.nodes["spoke2"].tunnel) for c in cuts), (
        f"spoke1 got a Resolution Reply {reply.ts - req.ts:.3f} s after asking but installed no shortcut to "
        f"spoke2's LAN: {cuts}")


@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_traffic_goes_direct_over_a_slow_underlay(slow, lab) -> None:
    """Once resolved, the slow underlay's traffic flows spoke to spoke: the later burst
    arrives without loss, straight from spoke1, and none of it crosses the hub."""
    assert slow["later"].lossless, slow["later"]
    expect_direct(lab, slow["timeline"])
