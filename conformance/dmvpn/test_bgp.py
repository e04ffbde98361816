"""DMVPN with BGP over the overlay (`--routing bgp`): iBGP, the hub a route reflector.
Phase 1: every route a spoke learns points at the hub. Phase 2: a far spoke's LAN keeps
the far spoke as next hop (phase 2's resolution cases then run over these routes).
Phase 3: the hub sends only the summary, and NHRP's shortcut, the more specific route,
takes spoke traffic past it.
From the UPDATEs on the wire first (the bring-up capture), the kernels' routes second."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from dmvpnkit.capture import Timeline
from dmvpnkit.capture.bgp import Update, updates

from ..conftest import bringup, expect_direct, hairpin, lan_host, route_via, traffic, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.routing("bgp")]


def from_hub(lab: Any, tl: Timeline, spoke: str) -> list[Update]:
    """The UPDATEs hub1 sent `spoke` over the tunnel."""
    return [u for u in updates(tl) if u.src == tunnel(lab, "hub1") and u.dst == tunnel(lab, spoke)]


def reflected(lab: Any, spoke: str, far: str) -> list[Update]:
    """The UPDATEs in which hub1 announced `far`'s LAN to `spoke`."""
    far_lan = lab.topo.nodes[far].lan
    got = [u for u in from_hub(lab, bringup(lab), spoke) if far_lan in u.nlri]
    assert got, f"hub1 did not announce {far}'s LAN {far_lan} to {spoke}"
    return got


def announced(got: list[Update]) -> set[IPv4Network]:
    return {p for u in got for p in u.nlri}


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "routing", "MUST")
def test_hub_advertises_only_the_summary(lab) -> None:
    """Phase 3 lets the hub summarise: each spoke learns the LANs as the one summary
    prefix, never another spoke's LAN, from hub1's UPDATEs."""
    summary = lab.topo.lan_summary
    for spoke in ("spoke1", "spoke2"):
        got = from_hub(lab, bringup(lab), spoke)
        assert got, f"no BGP UPDATE from hub1 to {spoke} in the bring-up capture"
        assert announced(got) == {summary}, \
            f"hub1 announced {sorted(map(str, announced(got)))} to {spoke}, not only {summary}:\n" + \
            "\n".join(map(str, got))


@pytest.fixture(scope="module")
def redirected(lab):
    return hairpin(lab, "bgp_redirect")


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_shortcut_overrides_the_summary(redirected, lab) -> None:
    """With only the summary from BGP, the spoke still gets a shortcut: NHRP's route for
    the far LAN, more specific than the summary, sends the later traffic spoke to spoke."""
    assert redirected["later"].lossless, redirected["later"]
    expect_direct(lab, redirected["timeline"])
    far_lan = str(lab.topo.nodes["spoke2"].lan)
    cuts = lab.driver.shortcuts("spoke1")
    assert any(c.prefix == far_lan and c.via == tunnel(lab, "spoke2") for c in cuts), cuts
    via = route_via(lab, "spoke1", lan_host(lab, "spoke2"))
    assert via != tunnel(lab, "hub1"), f"spoke1 still routes {lan_host(lab, 'spoke2')} via the hub's summary"
    assert route_via(lab, "spoke1", str(next(lab.topo.nodes["hub1"].lan.hosts()))) == tunnel(lab, "hub1"), \
        "spoke1 lost the summary via hub1"


@pytest.mark.phases(1)
@pytest.mark.spec("dmvpn-phase1", "routing", "MUST")
def test_spoke_routes_point_at_the_hub(lab) -> None:
    """Phase 1: the hub reflects every spoke's LAN with itself as the next hop, so each
    spoke learns the other's LAN via hub1."""
    for spoke, far in (("spoke1", "spoke2"), ("spoke2", "spoke1")):
        wrong = [u for u in reflected(lab, spoke, far) if u.next_hop != tunnel(lab, "hub1")]
        assert not wrong, f"{far}'s LAN announced to {spoke} with another next hop than hub1:\n" + \
            "\n".join(map(str, wrong))


@pytest.mark.phases(2)
@pytest.mark.spec("dmvpn-phase2", "routing", "MUST")
def test_far_spoke_stays_the_next_hop(lab) -> None:
    """Phase 2: the hub reflects each spoke's LAN with the next hop unchanged, the far
    spoke's tunnel address, from hub1's UPDATEs; and the spoke's kernel routes the far
    LAN to that address, which is what makes its first packet resolve it."""
    for spoke, far in (("spoke1", "spoke2"), ("spoke2", "spoke1")):
        wrong = [u for u in reflected(lab, spoke, far) if u.next_hop != tunnel(lab, far)]
        assert not wrong, f"{far}'s LAN announced to {spoke} with another next hop than {far}:\n" + \
            "\n".join(map(str, wrong))
        via = route_via(lab, spoke, lan_host(lab, far))
        assert via == tunnel(lab, far), f"{spoke} routes {far}'s LAN via {via}, not {far} ({tunnel(lab, far)})"


@pytest.mark.phases(1)
@pytest.mark.spec("dmvpn-phase1", "hub-and-spoke", "MUST")
def test_spoke_to_spoke_data_crosses_the_hub(lab) -> None:
    """Phase 1 over BGP: data between the spokes' LANs goes through the hub, every packet."""
    burst = traffic(lab, "bgp_hub_only", 10, 0.1)
    assert burst["ping"].lossless, burst["ping"]
    at_hub = burst["timeline"].where(node="hub1", data="icmp type 8", direction="in")
    assert len(at_hub) >= 10, f"{len(at_hub)} of 10 echo requests crossed hub1:\n{burst['timeline'].format()}"
