"""DMVPN phase 1: spokes reach each other only through the hub."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect_all, expect_none

from ..conftest import traffic

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(1)]


@pytest.fixture(scope="module")
def burst(lab):
    return traffic(lab, "phase1_traffic", 10, 0.2)


@pytest.mark.spec("dmvpn-phase1", "hub-and-spoke", "MUST")
def test_spoke_to_spoke_traffic_crosses_the_hub(burst) -> None:
    """In phase 1 every spoke-to-spoke packet is relayed by the hub."""
    assert burst["ping"].lossless, burst["ping"]
    expect_all(burst["timeline"], "every echo request in and out of the hub", at_least=20, node="hub1",
               data="icmp type 8")


@pytest.mark.spec("dmvpn-phase1", "hub-and-spoke", "MUST")
def test_hub_sends_no_traffic_indication(burst) -> None:
    """Phase 1 hubs do not redirect: no Traffic Indication for hairpinned traffic."""
    expect_none(burst["timeline"], "a Traffic Indication", op="traffic-indication")


@pytest.mark.spec("dmvpn-phase1", "hub-and-spoke", "MUST")
def test_spokes_neither_resolve_nor_install_shortcuts(burst, lab) -> None:
    """Phase 1 spokes only register: no Resolution Request, no shortcut route."""
    expect_none(burst["timeline"], "a Resolution Request", op="resolution-request")
    for spoke in lab.topo.spokes:
        assert not lab.driver.shortcuts(spoke.name), (spoke.name, lab.driver.shortcuts(spoke.name))
