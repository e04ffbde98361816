"""The IKE daemon of a spoke stops and comes back (`--ipsec`): the node fails closed."""

from __future__ import annotations


import pytest

from dmvpnkit.capture import expect, expect_none
from dmvpnkit.labs.faults import Faults
from dmvpnkit.labs.lab import ConvergenceTimeout, wait_until

from ..conftest import cleartext_gre, nbma, ping, tunnel, wait_quietly

HOLD = 15           # registrations refreshed every 5 s: one falls into the outage
pytestmark = [pytest.mark.topology("hub_2spoke", holdtime=HOLD), pytest.mark.phases(1, 2, 3)]


@pytest.fixture(scope="module")
def outage(lab, scenario_capture):
    """spoke1's charon is stopped for one registration refresh period (with overlay
    traffic from its LAN meanwhile), then started again."""
    cap = scenario_capture("ike_daemon_down")
    out: dict = {}
    with Faults(lab).daemon_down("spoke1", "charon") as down:
        t_down = down.mark
        out["during"] = ping(lab, "spoke1_h", tunnel(lab, "hub1"), 5, 0.2)
        # what spoke1 does when it is time to refresh its registration (or it holds
        # back: what a node that fails closed may do)
        wait_quietly("spoke1 to try refreshing its registration", lambda: cap.timeline(stop=False).where(
            node="spoke1", direction="out", op="registration-request", after=t_down), HOLD / 3 + 3)
    out["t_up"] = down.lifted
    try:
        wait_until("an SA between spoke1 and hub1 again",
                   lambda: nbma(lab, "hub1") in lab.driver.ipsec.established("spoke1"), timeout=HOLD)
        wait_until("spoke1 to register with hub1 again", lambda: cap.timeline(stop=False).where(
            node="hub1", op="registration-request", src=nbma(lab, "spoke1"), after=out["t_up"]),
            timeout=HOLD / 3 + 3)
    except ConvergenceTimeout as e:
        out["error"] = str(e)
    out["after"] = ping(lab, "spoke1_h", tunnel(lab, "hub1"), 5, 0.2)
    out["timeline"] = cap.timeline()
    return out


@pytest.mark.spec("dmvpn-ipsec", "confidentiality", "MUST")
def test_nothing_in_cleartext_while_the_ike_daemon_is_down(outage) -> None:
    """Without its IKE daemon a node must not fall back to GRE in the clear: neither its
    NHRP refresh nor its LAN's traffic crosses the NBMA network unprotected."""
    expect_none(outage["timeline"], "GRE in the clear on the NBMA network", cleartext_gre)


@pytest.mark.spec("dmvpn-ipsec", "hub-spoke-sa", "MUST")
def test_protection_resumes_when_the_ike_daemon_returns(outage, lab) -> None:
    """Once the IKE daemon is back, the spoke has an SA with the hub again, registers
    inside it, and its LAN reaches the hub without loss."""
    assert "error" not in outage, outage["error"]
    expect(outage["timeline"], "spoke1's Registration Request inside ESP at hub1 after the restart", node="hub1",
           op="registration-request", src=nbma(lab, "spoke1"), esp=True, after=outage["t_up"])
    assert outage["after"].lossless, outage["after"]
