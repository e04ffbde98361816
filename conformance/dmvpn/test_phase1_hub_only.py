"""DMVPN phase 1: spokes reach each other only through the hub."""

from __future__ import annotations

import pytest

from ..conftest import seen
from ..wire import show

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(1)]


@pytest.mark.spec("dmvpn-phase1", "hub-and-spoke", "MUST")
def test_spoke_to_spoke_traffic_crosses_the_hub(lab, capture) -> None:
    """In phase 1 every spoke-to-spoke packet is relayed by the hub; no spoke resolves
    another spoke and the hub sends no Traffic Indication."""
    out = lab.net.run("spoke1_h", ["ping", "-n", "-c", "10", "-i", "0.2", "10.1.2.10"], check=False).stdout
    fs = seen(capture)
    assert " 0% packet loss" in out, out
    at_hub = [f for f in fs if f.node == "hub1" and f.data.startswith("icmp type 8")]
    assert len(at_hub) >= 20, f"echo requests did not all pass the hub (in and out):\n{show(fs)}"
    signalling = [f for f in fs if f.nhrp and f.nhrp.op in ("traffic-indication", "resolution-request")]
    assert not signalling, f"phase 1 must not redirect or resolve:\n{show(signalling)}"
