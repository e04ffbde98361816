"""DMVPN with OSPF over the overlay (`--routing ospf`): one area, the hub
point-to-multipoint and each spoke point-to-point to it, so every spoke learns every LAN
via the hub. Phase 3: NHRP's shortcut route for the far LAN overrides OSPF's."""

from __future__ import annotations

import pytest

from ..conftest import expect_direct, hairpin, lan_host, route_via, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.routing("ospf")]


@pytest.fixture(scope="module")
def redirected(lab):
    before = route_via(lab, "spoke1", lan_host(lab, "spoke2"))
    return {**hairpin(lab, "ospf_redirect"), "before": before}


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_shortcut_overrides_the_ospf_route(redirected, lab) -> None:
    """OSPF gives the spoke the far LAN via the hub; once the spoke has resolved it,
    NHRP's route for the same LAN (the Resolution Reply's prefix) wins over OSPF's, so
    the later traffic goes spoke to spoke, and so would traffic to any other host there."""
    far = lan_host(lab, "spoke2")
    assert redirected["before"] == tunnel(lab, "hub1"), \
        f"before the shortcut spoke1 routed {far} via {redirected['before']}, not via hub1 (OSPF's route)"
    assert redirected["later"].lossless, redirected["later"]
    expect_direct(lab, redirected["timeline"])
    # Not `far` itself: an implementation may add a host route for the resolved address.
    lan = lab.topo.nodes["spoke2"].lan
    other = str(lan.broadcast_address - 1)
    via = route_via(lab, "spoke1", other)
    assert via == tunnel(lab, "spoke2"), \
        f"spoke1 routes {other} (spoke2's LAN {lan}) via {via}, not via the shortcut to spoke2: OSPF's route won"
