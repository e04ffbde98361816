"""DMVPN with OSPF over the overlay (`--routing ospf`): one area. Phases 1 and 3: the
hub point-to-multipoint and each spoke point-to-point to it, so every spoke learns every
LAN via the hub; phase 3: NHRP's shortcut route for the far LAN overrides OSPF's.
Phase 2: the tunnel is one broadcast network with the hub its DR, so a far spoke's LAN
is routed via the far spoke (phase 2's resolution cases then run over these routes)."""

from __future__ import annotations

import pytest

from dmvpnkit.capture.ospf import TRANSIT, hellos, router_lsas

from ..conftest import bringup, expect_direct, hairpin, lan_host, route_via, tunnel

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


@pytest.mark.phases(2)
@pytest.mark.spec("dmvpn-phase2", "routing", "MUST")
def test_far_spoke_is_the_next_hop_on_one_broadcast_network(lab) -> None:
    """Phase 2 over OSPF: hub1 is the DR of the tunnel's broadcast network (its Hellos
    name it), and each spoke's Router-LSA, as it reaches the other spoke, attaches the
    spoke to that transit network by its own tunnel address: so the other spoke routes the
    far LAN via the far spoke, which its first packet resolves; from the bring-up capture,
    then the kernel's route."""
    tl = bringup(lab)
    hub = tunnel(lab, "hub1")
    named = [h for h in hellos(tl) if h.src == hub]
    assert named, "no OSPF Hello from hub1 in the bring-up capture"
    assert any(h.dr == hub for h in named), \
        "hub1's Hellos never name it the DR:\n" + "\n".join(map(str, named[-3:]))
    for spoke, far in (("spoke1", "spoke2"), ("spoke2", "spoke1")):
        got = [lsa for lsa in router_lsas(tl) if lsa.router == tunnel(lab, far) and lsa.event.node == spoke
               and lsa.event.direction == "in"]
        assert got, f"no Router-LSA of {far} reached {spoke} in the bring-up capture"
        last = got[-1]
        assert any(lk.type == TRANSIT and lk.id == hub and lk.data == tunnel(lab, far) for lk in last.links), \
            f"{far}'s Router-LSA does not attach it to hub1's transit network by {tunnel(lab, far)}: {last}"
        via = route_via(lab, spoke, lan_host(lab, far))
        assert via == tunnel(lab, far), f"{spoke} routes {far}'s LAN via {via}, not {far} ({tunnel(lab, far)})"
