"""Multicast over the DMVPN: the hub replicates it to every registered spoke."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect_all

from ..conftest import tunnel

pytestmark = pytest.mark.topology("hub_2spoke")
GROUP = "224.0.0.18"      # a link-local group, as routing protocols (VRRP here) use


@pytest.mark.feature("multicast", role="hub")
@pytest.mark.spec("dmvpn-phase1", "multicast", "MUST")
def test_hub_replicates_multicast_to_registered_spokes(lab, capture) -> None:
    """Multicast the hub sends into the tunnel reaches every registered spoke as a
    unicast GRE copy to its NBMA address (`map multicast dynamic`): how routing
    protocols run over a DMVPN."""
    lab.node("hub1").run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", "gre1", "-t", "1", GROUP],
                         check=False)
    tl = capture.timeline()
    for spoke in lab.topo.spokes:
        expect_all(tl, f"3 multicast copies delivered to {spoke.name}", at_least=3, node=spoke.name,
                   direction="in", data=f"icmp type 8 {tunnel(lab, 'hub1')}>{GROUP}")
