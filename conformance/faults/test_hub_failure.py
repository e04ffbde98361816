"""Fault: one of two hubs fails (its uplink is cut) and later recovers."""

from __future__ import annotations


import pytest

from dmvpnkit.labs.faults import Faults

from ..conftest import lan_host, ping, wait_quietly

HOLD = 15
pytestmark = pytest.mark.topology("dual_hub", holdtime=HOLD)


def registered_at(tl, hub: str, spoke_nbma: str, after: float) -> list:
    """Successful registrations of a spoke that `hub` answered after `after`."""
    return [p for p in tl.pairs() if p.request.node == hub and p.request.direction == "in"
            and p.request.nhrp.op == "registration-request" and p.request.src == spoke_nbma
            and p.request.ts > after and p.reply is not None and p.reply.nhrp.cies
            and p.reply.nhrp.cies[0].code == 0]


@pytest.fixture(scope="module")
def outage(lab, scenario_capture):
    """hub1 is cut off until every spoke has renewed with hub2, then restored; the
    capture runs until hub1 has every spoke registered again (or a hold time passed)."""
    spokes = {s.name: str(s.nbma) for s in lab.topo.spokes}
    if lab.phase == 3:
        ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 5, 0.5)       # a shortcut to live through
    cap = scenario_capture("hub_failure")
    out: dict = {}
    with Faults(lab).link_loss("hub1") as cut:
        out["t_fail"] = cut.mark
        if lab.phase == 3:
            out["during"] = ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 20, 0.2)
        # one renewal period (hold/3) plus a retry's worth of slack
        wait_quietly("every spoke to renew with hub2", lambda: all(
            registered_at(cap.timeline(stop=False), "hub2", a, out["t_fail"]) for a in spokes.values()),
            HOLD / 3 * 1.5 + 5, interval=1.0)
    out["t_restore"] = cut.lifted       # a spoke may register the moment hub1 is back
    wait_quietly("every spoke to register with hub1 again", lambda: all(
        registered_at(cap.timeline(stop=False), "hub1", a, out["t_restore"]) for a in spokes.values()),
        HOLD + 5, interval=1.0)
    out["timeline"] = cap.timeline()
    out["spokes"] = spokes
    return out


@pytest.mark.spec("dmvpn-phase1", "nhs-redundancy", "MUST")
def test_spokes_stay_registered_with_the_surviving_hub(outage) -> None:
    """While hub1 is unreachable, every spoke keeps renewing its registration with hub2
    and hub2 keeps accepting it."""
    tl = outage["timeline"]
    missing = [s for s, a in outage["spokes"].items() if not registered_at(tl, "hub2", a, outage["t_fail"])]
    assert not missing, (f"{missing} did not renew with hub2 within {HOLD / 3 * 1.5 + 5:.0f} s of hub1 "
                         f"failing:\n{tl.around(outage['t_fail']).format()}")


@pytest.mark.spec("dmvpn-phase1", "nhs-redundancy", "MUST")
def test_recovered_hub_gets_registrations_again(outage, measure) -> None:
    """Once hub1 is reachable again every spoke registers with it within a hold time;
    the recovery time is measured from the capture."""
    tl = outage["timeline"]
    firsts = {}
    for s, a in outage["spokes"].items():
        got = registered_at(tl, "hub1", a, outage["t_restore"])
        assert got, (f"{s} did not register with hub1 within {HOLD + 5} s of its recovery:\n"
                     f"{tl.around(outage['t_restore']).format()}")
        firsts[s] = got[0].reply.ts - outage["t_restore"]
    measure("hub1_recovery_s", round(max(firsts.values()), 2))


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "shortcut", "SHOULD")
def test_shortcut_traffic_survives_hub_failure(outage) -> None:
    """Spoke-to-spoke traffic over an established shortcut does not need the hub: it
    keeps flowing while hub1 is down."""
    assert outage["during"].lossless, outage["during"]
