"""DMVPN phase 2: a spoke resolves the far spoke its route points at, then goes direct."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_all

from ..conftest import lan_host, nbma, ping, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(2)]


@pytest.fixture(scope="module")
def traffic(lab):
    from dmvpnkit.labs.tap import LabCapture
    cap = LabCapture(lab, lab.lab_dir / "pcaps" / "phase2_traffic")
    cap.start()
    result = ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 10, 0.3)
    return {"ping": result, "timeline": cap.timeline()}


@pytest.mark.spec("dmvpn-phase2", "next-hop-resolution", "MUST")
def test_spoke_resolves_its_route_next_hop(traffic, lab) -> None:
    """In phase 2 the route to the far spoke's LAN keeps the far spoke as next hop; the
    spoke resolves that next hop with a Resolution Request."""
    expect(traffic["timeline"], f"spoke1 resolving its next hop {tunnel(lab, 'spoke2')} (ping: "
           f"{traffic['ping'].received}/{traffic['ping'].sent})", node="spoke1", op="resolution-request",
           direction="out", dst_proto=tunnel(lab, "spoke2"))


@pytest.mark.spec("dmvpn-phase2", "next-hop-resolution", "MUST")
def test_data_goes_spoke_to_spoke(traffic, lab) -> None:
    """Once resolved, data to the far spoke's LAN is sent to the far spoke's NBMA
    address, not through the hub."""
    expect_all(traffic["timeline"], "echo requests arriving at spoke2 straight from spoke1", node="spoke2",
               data="icmp type 8", src=nbma(lab, "spoke1"))
