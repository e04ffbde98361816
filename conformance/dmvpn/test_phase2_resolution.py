"""DMVPN phase 2: a spoke resolves the far spoke its route points at, then goes direct."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_all

from ..conftest import nbma, traffic, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(2)]


@pytest.fixture(scope="module")
def burst(lab):
    return traffic(lab, "phase2_traffic", 10, 0.3)


@pytest.mark.spec("dmvpn-phase2", "next-hop-resolution", "MUST")
def test_spoke_resolves_its_route_next_hop(burst, lab) -> None:
    """In phase 2 the route to the far spoke's LAN keeps the far spoke as next hop; the
    spoke resolves that next hop with a Resolution Request."""
    expect(burst["timeline"], f"spoke1 resolving its next hop {tunnel(lab, 'spoke2')} (ping: "
           f"{burst['ping'].received}/{burst['ping'].sent})", node="spoke1", op="resolution-request",
           direction="out", dst_proto=tunnel(lab, "spoke2"))


@pytest.mark.spec("dmvpn-phase2", "next-hop-resolution", "MUST")
def test_data_goes_spoke_to_spoke(burst, lab) -> None:
    """Once resolved, data to the far spoke's LAN is sent to the far spoke's NBMA
    address, not through the hub."""
    expect_all(burst["timeline"], "echo requests arriving at spoke2 straight from spoke1", node="spoke2",
               data="icmp type 8", src=nbma(lab, "spoke1"))
