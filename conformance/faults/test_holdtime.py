"""Hold times: registrations are refreshed before they expire, and expire when not."""

from __future__ import annotations

import time

import pytest

from dmvpnkit.capture import expect
from dmvpnkit.labs.faults import Faults
from dmvpnkit.labs.lab import ConvergenceTimeout, wait_until
from dmvpnkit.rules import Context, enforce, registration

from ..conftest import bringup, lan_host, nbma, ping, tunnel, wait_quietly

HOLD = 9
pytestmark = pytest.mark.topology("hub_2spoke", holdtime=HOLD)


@pytest.fixture(scope="module")
def renewals(lab, scenario_capture):
    """Registrations of spoke1 over 2.5 refresh periods (bring-up included)."""
    cap = scenario_capture("renewals")
    t0 = time.time()
    wait_quietly("three registrations of spoke1 after bring-up", lambda: len(
        cap.timeline(stop=False).where(node="spoke1", op="registration-request", direction="out")) >= 3,
        HOLD * 1.5 + 5, interval=0.5)
    tl = cap.timeline()
    reqs = [e.ts for e in tl.where(node="spoke1", op="registration-request", direction="out")]
    first = bringup(lab).where(node="spoke1", op="registration-request", direction="out")
    times = ([first[-1].ts] if first else []) + [t for t in reqs if t > t0]
    return {"times": sorted(set(times)), "timeline": tl}


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_registration_is_refreshed_before_it_expires(renewals) -> None:
    """"the station MUST re-send the NHRP Registration Request packet often enough to
    refresh the registration" (5.2.3): before its Holding Time runs out."""
    t = renewals["times"]
    assert len(t) >= 2, f"spoke1 did not re-register within {HOLD * 1.5 + 5} s:\n{renewals['timeline']}"
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    assert max(gaps) < HOLD, f"gaps between spoke1's registrations {gaps} reach the hold time {HOLD} s"


@pytest.mark.spec("rfc2332", "5.2.3", "SHOULD")
def test_refresh_is_about_a_third_of_the_hold_time(renewals, lab) -> None:
    """"It is recommended that the NHRP Registration Request packet be sent at an
    interval equal to one-third of the Holding Time specified therein." (5.2.3)"""
    enforce(registration.refresh_interval, renewals["timeline"],
            Context(station=nbma(lab, "spoke1"), name="spoke1", role="client"))


@pytest.fixture(scope="module")
def expiry(lab, renewals, scenario_capture):
    """spoke2's uplink is cut; the hub's binding should expire after the hold time."""
    out: dict = {}
    with Faults(lab).link_loss("spoke2") as cut:
        t0 = cut.mark
        expired = wait_quietly("hub1's binding for spoke2 to expire", lambda: tunnel(lab, "spoke2") not in {
            e.protocol for e in lab.driver.cache("hub1")}, HOLD + HOLD / 3 + 2)
        out["expired_after"] = time.time() - t0 if expired else None
        out["cache"] = lab.driver.cache("hub1")
        # And the routing protocol's adjacency to spoke2 at hub1, whose timer races the
        # binding's: so it is down, and comes back whole, before the cases send traffic.
        lab.wait_unrouted("hub1", "spoke2", since=t0)
        # Listening before the uplink returns: the spoke may register at once.
        cap = scenario_capture("after_expiry")
    out["t_restore"] = cut.lifted
    wait_quietly("spoke2 to register again", lambda: tunnel(lab, "spoke2") in {
        e.protocol for e in lab.driver.cache("hub1")}, HOLD + 5)
    lab.wait_routed()
    out["timeline"] = cap.timeline()
    return out


@pytest.mark.spec("rfc2332", "5.2.0.1", "MUST")
def test_binding_expires_after_the_hold_time(expiry, measure) -> None:
    """"Cached information SHALL be discarded when the holding time expires." (5.2.0.1):
    when spoke2 stops refreshing, hub1 drops its binding (allowing one refresh of slack)."""
    assert expiry["expired_after"] is not None, \
        f"hub1 still holds spoke2 {HOLD + HOLD / 3 + 2:.0f} s after spoke2 went silent: {expiry['cache']}"
    measure("expired_after_s", round(expiry["expired_after"], 1))


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_registers_again_after_expiry(expiry, lab) -> None:
    """When its uplink returns, the spoke registers again and the hub accepts it."""
    expect(expiry["timeline"], "spoke2 registering with hub1 after its uplink returned", node="hub1",
           op="registration-request", src=nbma(lab, "spoke2"), after=expiry["t_restore"])


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_idle_shortcut_expires(lab, expiry, capture) -> None:
    """A shortcut lives for the Holding Time of the Resolution Reply that created it;
    once traffic stops and that time passes, the spoke removes it."""
    # `capture`: the ping and the resolution it should trigger are this case's evidence
    # (the scenario's capture ends with the expiry fixture).
    ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 5, 0.5)
    wait_until("spoke1 to install a shortcut to spoke2", lambda: lab.driver.shortcuts("spoke1"), timeout=10)
    try:
        wait_until("the idle shortcut to expire", lambda: not lab.driver.shortcuts("spoke1"),
                   timeout=HOLD + HOLD / 3 + 2)
    except ConvergenceTimeout as e:
        pytest.fail(f"spoke1 still has {lab.driver.shortcuts('spoke1')} after {HOLD + HOLD / 3 + 2:.0f} s "
                    f"idle ({e})")
